// The cycle model: SystemC value-mode simulation against the closed forms, timing mode against
// value mode, SCALE-Sim's formula, the memory timeline, and bit-exact results.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <random>
#include <tuple>

#include "common/error.h"
#include "tests/test_util.h"

#include "models/gemm_ref.h"
#include "models/minifloat.h"
#include "sim/array_sim.h"
#include "sim/fold_model.h"

using namespace mfsim;

namespace {

// The three arrays the tests were written for (their seeds and case counts assume them, in this
// order); every registered PE type is covered by the tests that loop over pe_types().
const PeType* const kMfMac = &pe_type("mfmac");
const PeType* const kInt8 = &pe_type("int8");
const PeType* const kFp32 = &pe_type("fp32");
const std::vector<const PeType*> kFirstThree = {kMfMac, kInt8, kFp32};

SimConfig config(const PeType* a, Dataflow d, int rows, int cols, int latency = 1) {
  SimConfig c;
  c.array = a;
  c.dataflow = d;
  c.rows = rows;
  c.cols = cols;
  c.mac_latency = latency;
  c.sram_a_bytes = c.sram_b_bytes = c.sram_c_bytes = 1 << 20;
  c.dram_bytes_per_cycle = 1e6;  // effectively no stalls unless a test says otherwise
  c.map_policy = MapPolicy::kFixed;  // the worked examples use the untiled mapping,
  c.overlap = false;                 // folds one after another
  return c;
}

struct RandomGemm {
  GemmShape shape;
  GemmOperands ops;
};

// Random operands in the array's own format (the first it holds): PoT4 codes, integers of the
// format's range, or float values of the format (FP32 ones with rounding in their sums, so the
// accumulation order is exercised).
RandomGemm random_gemm(std::mt19937& rng, const PeType* a, GemmShape s, int zero_percent) {
  RandomGemm g{s, {}};
  const NumFormat fmt = a->holds.front();
  const int qmax = static_cast<int>(format_info(fmt).max_int);
  std::uniform_int_distribution<int> code(0, 15), pct(0, 99), iv_dist(-qmax, qmax), f(-300, 300);
  auto na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  auto fill = [&](std::size_t n, std::vector<Pot4Code>& p, std::vector<int>& iv, std::vector<float>& fv) {
    for (std::size_t i = 0; i < n; ++i) {
      bool zero = pct(rng) < zero_percent;
      switch (a->holds_as) {
        case FormatKind::kPot4: p.push_back(zero ? Pot4Code{0} : static_cast<Pot4Code>(code(rng))); break;
        case FormatKind::kInt: iv.push_back(zero ? 0 : iv_dist(rng)); break;
        case FormatKind::kFloat: {
          const float v = zero ? 0.0f : static_cast<float>(f(rng)) / 7.0f;
          fv.push_back(fmt == NumFormat::kFp32   ? v
                       : fmt == NumFormat::kBf16 ? bf16_round(v)
                                                 : fp8_round(fmt, v / 8.0f));
          break;
        }
      }
    }
  };
  if (a->per_operand_registers) {  // the shift-add pair, in a random orientation: PoT4 codes and INT8 values
    const bool a_pot4 = pct(rng) < 50;
    std::uniform_int_distribution<int> i8(-127, 127);
    auto pair = [&](std::size_t n, bool pot4, std::vector<Pot4Code>& p, std::vector<int>& iv) {
      for (std::size_t i = 0; i < n; ++i) {
        const bool zero = pct(rng) < zero_percent;
        if (pot4) {
          p.push_back(zero ? Pot4Code{0} : static_cast<Pot4Code>(code(rng)));
        } else {
          iv.push_back(zero ? 0 : i8(rng));
        }
      }
    };
    pair(na, a_pot4, g.ops.a_pot4, g.ops.a_int);
    pair(nb, !a_pot4, g.ops.b_pot4, g.ops.b_int);
    return g;
  }
  fill(na, g.ops.a_pot4, g.ops.a_int, g.ops.a_f32);
  fill(nb, g.ops.b_pot4, g.ops.b_int, g.ops.b_f32);
  return g;
}

// An operand as integers: its PoT4 codes' integer images, or its integers.
std::vector<std::int8_t> as_int8(const std::vector<Pot4Code>& codes, const std::vector<int>& ints) {
  std::vector<std::int8_t> v;
  for (Pot4Code c : codes) v.push_back(static_cast<std::int8_t>(pot4_int(c)));
  for (int i : ints) v.push_back(static_cast<std::int8_t>(i));
  return v;
}

// Reference result of the array's arithmetic.
void reference(const SimConfig& cfg, const RandomGemm& g, std::vector<std::int64_t>& acc,
               std::vector<float>& f32) {
  const GemmShape& s = g.shape;
  auto n = static_cast<std::size_t>(s.m * s.n);
  if (cfg.array->holds_as == FormatKind::kPot4) {
    acc.resize(n);
    gemm_pot4_ref(s, g.ops.a_pot4.data(), g.ops.b_pot4.data(), cfg.accumulator, acc.data());
  } else if (cfg.array->holds_as == FormatKind::kInt) {
    const std::vector<std::int8_t> a = as_int8(g.ops.a_pot4, g.ops.a_int), b = as_int8(g.ops.b_pot4, g.ops.b_int);
    acc.resize(n);
    gemm_int8_ref(s, a.data(), b.data(), cfg.accumulator, acc.data());
  } else {
    f32.resize(n);
    gemm_fp32_ref(s, g.ops.a_f32.data(), g.ops.b_f32.data(), cfg.fp32_fma, f32.data());
  }
}

std::vector<ValueGemmResult> run(const SimConfig& cfg, const std::vector<RandomGemm>& gemms,
                                 const std::string& vcd = "", const ConvView& conv = {}) {
  std::vector<GemmJob> jobs;
  for (const auto& g : gemms) jobs.push_back(GemmJob{g.shape, conv, [&g]() { return g.ops; }});
  std::vector<ValueGemmResult> results(gemms.size());
  simulate_value(cfg, jobs, [&](std::size_t i, ValueGemmResult& r) { results[i] = std::move(r); }, vcd);
  return results;
}

const char* name(Dataflow d) { return to_string(d); }

// A value-mode result against the closed form of the same plan (cycles, stalls by cause, every
// counter) and its outputs against the reference GEMM. Returns the closed-form events.
EventCounts check_value_against_closed_form(const SimConfig& cfg, const FoldPlan& plan, const RandomGemm& g,
                                            const ValueGemmResult& res) {
  const GemmTiming t = analytic_timing(plan);
  CHECK(res.timing.total == t.total);
  CHECK(res.timing.compute == t.compute);
  CHECK(res.timing.stall == t.stall);
  CHECK(res.timing.folds == t.folds);
  CHECK(res.timing.stall_by_cause == t.stall_by_cause);
  const EventCounts e = analytic_events(plan, t, res.events.products_zero);
  for (const auto& c : counter_registry()) {
    INFO("counter " << c.name);
    CHECK(res.events.*c.member == e.*c.member);
  }
  CHECK(res.events.pe_ops == e.pe_ops);
  std::vector<std::int64_t> acc;
  std::vector<float> f32;
  reference(cfg, g, acc, f32);
  if (!cfg.array->integer_acc) {
    CHECK(res.out_f32 == f32);
  } else {
    CHECK(res.out_int == acc);
  }
  return e;
}

}  // namespace

TEST_CASE("first and last output cycles of a fold match the closed form", "[timing]") {
  const unsigned seed = 5;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
    for (int latency : {1, 3}) {
      for (auto [rows, cols] : {std::pair{7, 5}, std::pair{1, 1}, std::pair{4, 9}}) {
        for (auto [r, c, t] : {std::tuple{rows, cols, 33}, std::tuple{1, cols, 2}, std::tuple{rows, 1, 1},
                               std::tuple{(rows + 1) / 2, (cols + 1) / 2, 5}}) {
          // One fold with r active rows and c active columns (Sr = r, Sc = c).
          GemmShape s = d == Dataflow::kOs   ? GemmShape{r, c, t}
                        : d == Dataflow::kWs ? GemmShape{t, c, r}
                                             : GemmShape{c, t, r};
          SimConfig cfg = config(kMfMac, d, rows, cols, latency);
          auto res = run(cfg, {random_gemm(rng, cfg.array, s, 20)});
          INFO(name(d) << " L=" << latency << " array " << rows << "x" << cols << " fold r=" << r
                       << " c=" << c << " t=" << t);
          REQUIRE(res[0].fold_cycles.size() == 1);
          CHECK(res[0].first_output_cycle == first_output_cycle(d, latency, r, c, t));
          CHECK(res[0].last_output_cycle == last_output_cycle(d, latency, r, c, t));
          CHECK(res[0].fold_cycles[0] == fold_cycles(d, latency, r, c, t));
        }
      }
    }
  }
  // By hand: a 1x1 OS array with K = 1 multiplies in cycle 0 and drains in cycle 1.
  CHECK(fold_cycles(Dataflow::kOs, 1, 1, 1, 1) == 2);
  CHECK(first_output_cycle(Dataflow::kOs, 1, 1, 1, 1) == 1);
  // A 7x5 WS fold with 33 rows of A: 7 preload cycles, then the first result leaves column 0
  // after passing 7 PEs (cycle 13), the last leaves column 4 at 7 + 7 + 4 + 32 = cycle 50.
  CHECK(first_output_cycle(Dataflow::kWs, 1, 7, 5, 33) == 13);
  CHECK(last_output_cycle(Dataflow::kWs, 1, 7, 5, 33) == 49);
}

TEST_CASE("value mode equals timing mode and the reference on many shapes", "[model]") {
  const unsigned seed = 20261128;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 40), arr(1, 9), lat(1, 3), zero(0, 60);
  std::uniform_real_distribution<double> bw(0.5, 64.0);
  std::uniform_int_distribution<int> kib(0, 3);
  int cases = 0;
  for (const PeType* a : kFirstThree) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (int rep = 0; rep < 4; ++rep) {
        SimConfig cfg = config(a, d, arr(rng), arr(rng), lat(rng));
        cfg.dram_bytes_per_cycle = bw(rng);
        // Small buffers (64 B .. 512 B) force reloads and partial-sum spills.
        cfg.sram_a_bytes = 64u << kib(rng);
        cfg.sram_b_bytes = 64u << kib(rng);
        cfg.sram_c_bytes = 64u << kib(rng);
        cfg.fp32_fma = rep % 2 == 1;
        cfg.overlap = rep >= 2;
        std::vector<RandomGemm> gemms;
        for (int g = 0; g < 3; ++g) {
          gemms.push_back(random_gemm(rng, a, GemmShape{dim(rng), dim(rng), dim(rng)}, zero(rng)));
        }
        auto res = run(cfg, gemms);
        for (std::size_t g = 0; g < gemms.size(); ++g) {
          const GemmShape& s = gemms[g].shape;
          INFO(a->name << " " << name(d) << " " << cfg.rows << "x" << cfg.cols << " L=" << cfg.mac_latency
                            << " bw=" << cfg.dram_bytes_per_cycle << " sram " << cfg.sram_a_bytes << "/"
                            << cfg.sram_b_bytes << "/" << cfg.sram_c_bytes << " GEMM " << s.m << "x" << s.n
                            << "x" << s.k);
          FoldPlan plan(cfg, s);
          check_value_against_closed_form(cfg, plan, gemms[g], res[g]);
          LoopIndex idx{};
          for (std::size_t f = 0; f < res[g].fold_cycles.size(); ++f) {
            Fold fold = plan.fold_at(idx);
            CHECK(res[g].fold_cycles[f] == fold_visible_length(cfg, fold));
            plan.advance(idx);
          }
          ++cases;
        }
      }
    }
  }
  CHECK(cases == 108);
}

TEST_CASE("zero products measured by the array equal the operand count", "[model]") {
  std::mt19937 rng(3);
  SimConfig cfg = config(kMfMac, Dataflow::kWs, 5, 4);
  RandomGemm g = random_gemm(rng, cfg.array, GemmShape{9, 7, 11}, 40);
  auto res = run(cfg, {g});
  std::uint64_t zeros = 0;
  for (std::int64_t m = 0; m < 9; ++m) {
    for (std::int64_t n = 0; n < 7; ++n) {
      for (std::int64_t k = 0; k < 11; ++k) {
        zeros += (pot4_is_zero(g.ops.a_pot4[m * 11 + k]) || pot4_is_zero(g.ops.b_pot4[k * 7 + n])) ? 1 : 0;
      }
    }
  }
  CHECK(res[0].events.products_zero == zeros);
  CHECK(cfg.array->op_count(res[0].events, "mfmac_acc_add") == 9u * 7u * 11u - zeros);
}

TEST_CASE("SCALE-Sim compatible cycles follow its fold formula", "[model]") {
  // 64x64x64 on 32x32: F = 4 folds. OS per fold 32 + 32 + 64 - 2 = 126; WS/IS 64 + 32 + 64 - 2.
  CHECK(scalesim_cycles(Dataflow::kOs, 32, 32, GemmShape{64, 64, 64}) == 4 * 126 - 1);
  CHECK(scalesim_cycles(Dataflow::kWs, 32, 32, GemmShape{64, 64, 64}) == 4 * 158 - 1);
  CHECK(scalesim_cycles(Dataflow::kIs, 32, 32, GemmShape{64, 64, 64}) == 4 * 158 - 1);
  // Odd sizes: M = 100, N = 10, K = 33 on 7x5. OS: F = 15*2, per fold 7+5+33-2 = 43.
  CHECK(scalesim_cycles(Dataflow::kOs, 7, 5, GemmShape{100, 10, 33}) == 30 * 43 - 1);
  // WS maps (K, N, M) = (33, 10, 100): F = 5*2, per fold 14+5+100-2 = 117.
  CHECK(scalesim_cycles(Dataflow::kWs, 7, 5, GemmShape{100, 10, 33}) == 10 * 117 - 1);
  // IS maps (K, M, N) = (33, 100, 10): F = 5*20, per fold 14+5+10-2 = 27.
  CHECK(scalesim_cycles(Dataflow::kIs, 7, 5, GemmShape{100, 10, 33}) == 100 * 27 - 1);
  // With full folds and no stalls our OS model adds the R-cycle drain: R + F*(...) relation.
  SimConfig cfg = config(kMfMac, Dataflow::kWs, 32, 32);
  GemmTiming t = analytic_timing(FoldPlan(cfg, GemmShape{64, 64, 64}));
  CHECK(t.compute == 4 * 158);  // our full WS fold equals SCALE-Sim's per-fold figure
  CHECK(t.total == t.compute + 2);  // plus the first load and the last store, 1 cycle each here
}

TEST_CASE("memory stalls: a worked example by hand", "[model]") {
  // OS 4x4 MF-MAC array, GEMM 4x4x8, 1 byte/cycle: fold 0 loads A (4x8 PoT4 = 16 B) and
  // B (8x4 = 16 B): 32 stall cycles; the fold takes 2*4 + 4 + 8 - 2 = 18 cycles; the 4x4
  // 32-bit results (64 B) are stored in 64 cycles: total 32 + 18 + 64 = 114.
  SimConfig cfg = config(kMfMac, Dataflow::kOs, 4, 4);
  cfg.dram_bytes_per_cycle = 1.0;
  std::mt19937 rng(1);
  auto res = run(cfg, {random_gemm(rng, cfg.array, GemmShape{4, 4, 8}, 0)});
  CHECK(res[0].timing.total == 114);
  CHECK(res[0].timing.compute == 18);
  CHECK(res[0].timing.stall == 96);
  CHECK(res[0].events.dram_read_bytes == 32);
  CHECK(res[0].events.dram_write_bytes == 64);
  GemmTiming t = analytic_timing(FoldPlan(cfg, GemmShape{4, 4, 8}));
  CHECK(t.total == 114);
  // Two column folds (N = 8). Fold 0 loads A (16 B) and its B tile (16 B): [0, 32). It runs
  // [32, 50). At 32 fold 1's B tile (16 B; A is reused) is prefetched: done 48, so fold 1 runs
  // [50, 68) without a stall. Fold 0's store (64 B) is issued at 50: done 114; fold 1's at 68
  // waits for it: done 178.
  auto two = run(cfg, {random_gemm(rng, cfg.array, GemmShape{4, 8, 8}, 0)});
  CHECK(two[0].timing.total == 178);
  CHECK(two[0].timing.compute == 36);
  CHECK(two[0].timing.stall == 178 - 36);
  CHECK(two[0].events.dram_read_bytes == 48);
  CHECK(analytic_timing(FoldPlan(cfg, GemmShape{4, 8, 8})).total == 178);
}

TEST_CASE("the DRAM channel serves requests in issue order: a drain's store waits for an earlier prefetch", "[model]") {
  // FP32 OS 3x2, GEMM 7x1x1, 8 B/cycle, overlap, tiles 2x1x1:nmk (four M tiles; a fold runs 2
  // cycles and drains 2 under the next). Fold 0 loads A0 and B (12 B): [0, 2), runs [2, 4),
  // drains to 6; tile 1's A (8 B) is prefetched at 2: [2, 3). Fold 1 runs [4, 6) and prefetches
  // tile 2 at 4: [4, 5). Store 0, issued for 6: [6, 7). Fold 2 runs [6, 8); tile 3's prefetch,
  // issued at 6 after store 0: [7, 8). Store 1 at 8: [8, 9). Fold 3 (one row) runs [8, 9) and
  // drains to 10; stores 2 (8 B) and 3 (4 B) at 10: done 12. No bandwidth stall. (Serving the
  // store, issued at 4 for cycle 6, before the prefetch issued at 4 gave 14 with 2 stalls.)
  SimConfig cfg = config(kFp32, Dataflow::kOs, 3, 2);
  cfg.dram_bytes_per_cycle = 8;
  cfg.overlap = true;
  cfg.map_policy = MapPolicy::kSearch;
  cfg.map_pinned = true;
  REQUIRE(parse_tile_mapping("2x1x1:nmk", &cfg.map_tiles));
  const GemmShape s{7, 1, 1};
  std::mt19937 rng(5);
  const RandomGemm g = random_gemm(rng, cfg.array, s, 0);
  auto res = run(cfg, {g});
  FoldPlan plan(cfg, s);
  check_value_against_closed_form(cfg, plan, g, res[0]);
  const GemmTiming t = analytic_timing(plan);
  CHECK(t.total == 12);
  CHECK(t.compute == 8);
  CHECK(t.stall_by_cause[kStallFill] == 2);
  CHECK(t.stall_by_cause[kStallBandwidth] == 0);
  CHECK(t.stall_by_cause[kStallDrain] == 2);
  CHECK(analytic_timing_per_fold(plan).total == 12);
}

TEST_CASE("accumulator overflow in the array: error or saturation", "[model]") {
  // K = 8 products of the largest term (2^12) overflow a 16-bit accumulator at k = 7.
  SimConfig cfg = config(kMfMac, Dataflow::kWs, 3, 2);
  cfg.accumulator = AccumulatorSpec{16, OverflowPolicy::kError};
  RandomGemm g{GemmShape{2, 2, 8}, {}};
  g.ops.a_pot4.assign(16, pot4_encode(false, 7));
  g.ops.b_pot4.assign(16, pot4_encode(false, 7));
  auto res = run(cfg, {g});
  CHECK(res[0].overflow.find("16-bit accumulator overflow at output element (") == 0);
  cfg.accumulator.overflow = OverflowPolicy::kSaturate;
  auto sat = run(cfg, {g});
  CHECK(sat[0].overflow.empty());
  CHECK(sat[0].saturations == 4);  // one clamp per output element
  CHECK(sat[0].out_int == std::vector<std::int64_t>(4, 32767));
}

TEST_CASE("the shift-add pair on the shift and INT8 arrays: exact in both orientations and every dataflow, "
          "cycles and counters as the closed form",
          "[model]") {
  const unsigned seed = 20261202;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 15), i8(-127, 127), pct(0, 99);
  int cases = 0;
  for (const PeType* a : {&pe_type("shift"), kInt8}) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (bool a_pot4 : {true, false}) {
        // 13 x 7 x 11 on a 5 x 4 array: partial folds on every axis; small buffers force K tiles.
        for (auto [m, n, k, kib] : {std::tuple{13, 7, 11, 1 << 20}, std::tuple{9, 10, 23, 96}}) {
          SimConfig cfg = config(a, d, 5, 4, 1 + cases % 3);
          cfg.sram_a_bytes = cfg.sram_b_bytes = cfg.sram_c_bytes = static_cast<std::uint64_t>(kib);
          cfg.map_policy = kib < 1024 ? MapPolicy::kSearch : MapPolicy::kFixed;
          cfg.overlap = kib < 1024;
          RandomGemm g{GemmShape{m, n, k}, {}};
          auto operand = [&](std::size_t count, bool pot4, std::vector<Pot4Code>& codes, std::vector<int>& ints) {
            for (std::size_t i = 0; i < count; ++i) {
              const bool zero = pct(rng) < 15;
              if (pot4) {
                const auto c = zero ? Pot4Code{0} : static_cast<Pot4Code>(code(rng));
                // The INT8 array holds a PoT4 operand as its integer image.
                if (a->per_operand_registers) codes.push_back(c); else ints.push_back(pot4_int(c));
              } else {
                ints.push_back(zero ? 0 : i8(rng));
              }
            }
          };
          operand(static_cast<std::size_t>(m * k), a_pot4, g.ops.a_pot4, g.ops.a_int);
          operand(static_cast<std::size_t>(k * n), !a_pot4, g.ops.b_pot4, g.ops.b_int);
          INFO(a->name << " " << name(d) << " A " << (a_pot4 ? "pot4" : "int8") << " GEMM " << m << "x" << n << "x" << k
                       << " L=" << cfg.mac_latency << " sram " << kib);
          // The record's formats (the memory view): the shift array keeps each operand at its own
          // width in SRAM and DRAM (PoT4 4 bits, INT8 8), the INT8 array every operand at 8.
          ConvView view;
          view.a_format_bits = a_pot4 ? 4 : 8;
          view.b_format_bits = a_pot4 ? 8 : 4;
          auto res = run(cfg, {g}, "", view);
          REQUIRE(res[0].overflow.empty());
          const FoldPlan plan(cfg, g.shape, view);
          const EventCounts e = check_value_against_closed_form(cfg, plan, g, res[0]);  // outputs: the integer reference
          const int want_a = a->per_operand_registers ? view.a_format_bits : 8;
          const int want_b = a->per_operand_registers ? view.b_format_bits : 8;
          CHECK(plan.a_bits() == want_a);
          CHECK(plan.b_bits() == want_b);
          CHECK(plan.operand_bits() == 8);  // the registers: the array's operand width
          // The compulsory traffic and every A/B buffer read at those widths.
          CHECK(plan.compulsory_bytes_gemm_view() == (static_cast<std::uint64_t>(m * k) * want_a + 7) / 8 +
                                                         (static_cast<std::uint64_t>(k * n) * want_b + 7) / 8 +
                                                         static_cast<std::uint64_t>(m * n) * 4);
          CHECK(e.sram_a_read_bits % static_cast<std::uint64_t>(want_a) == 0);
          CHECK(e.sram_b_read_bits % static_cast<std::uint64_t>(want_b) == 0);
          if (kib >= 1024 && d == Dataflow::kOs) {  // untiled OS: each fold reads its r x K and K x c edges once
            std::uint64_t a_elems = 0, b_elems = 0;
            LoopIndex fi{};
            do {
              const Fold f = plan.fold_at(fi);
              a_elems += static_cast<std::uint64_t>(f.r) * static_cast<std::uint64_t>(f.t);
              b_elems += static_cast<std::uint64_t>(f.c) * static_cast<std::uint64_t>(f.t);
            } while (plan.advance(fi));
            CHECK(res[0].events.sram_a_read_bits == a_elems * static_cast<std::uint64_t>(want_a));
            CHECK(res[0].events.sram_b_read_bits == b_elems * static_cast<std::uint64_t>(want_b));
          }
          LoopIndex idx{};
          for (std::size_t f = 0; f < res[0].fold_cycles.size(); ++f) {
            CHECK(res[0].fold_cycles[f] == fold_visible_length(cfg, plan.fold_at(idx)));
            plan.advance(idx);
          }
          ++cases;
        }
      }
    }
  }
  CHECK(cases == 24);
}

TEST_CASE("accumulator overflow in the shift array: error or saturation", "[model]") {
  // K = 5 products of the largest term (127 << 6 = 8128) pass a 16-bit accumulator at k = 4.
  SimConfig cfg = config(&pe_type("shift"), Dataflow::kOs, 3, 2);
  cfg.accumulator = AccumulatorSpec{16, OverflowPolicy::kError};
  RandomGemm g{GemmShape{2, 2, 5}, {}};
  g.ops.a_int.assign(10, -127);
  g.ops.b_pot4.assign(10, pot4_encode(false, 7));
  auto res = run(cfg, {g});
  CHECK(res[0].overflow.find("16-bit accumulator overflow at output element (") == 0);
  cfg.accumulator.overflow = OverflowPolicy::kSaturate;
  auto sat = run(cfg, {g});
  CHECK(sat[0].overflow.empty());
  CHECK(sat[0].saturations == 4);  // one clamp per output element
  CHECK(sat[0].out_int == std::vector<std::int64_t>(4, -32768));
  // 32 bits hold it: -5 * 8128 each.
  cfg.accumulator = AccumulatorSpec{32, OverflowPolicy::kError};
  CHECK(run(cfg, {g})[0].out_int == std::vector<std::int64_t>(4, -40640));
}

TEST_CASE("spilled partial sums: only they wait for the store, the operands are prefetched", "[model]") {
  // WS on a 1x2 INT8 array, GEMM M=65, N=2, K=2, 1 byte/cycle, C buffer 1 KiB: two K folds of
  // r=1, c=2, T=65 (67 cycles each); the partial sums (65 x 2 x 4 B = 520 B) exceed half the C
  // buffer and spill. Fold 0 loads its operands (2 + 65 B): [0, 67); runs [67, 134). Fold 1's
  // operands (67 B) are prefetched at 67: done 134. Fold 0's store (520 B) at 134: done 654;
  // fold 1's partial sums (520 B) come back: done 1174. Fold 1 runs [1174, 1241); its store
  // is done at 1761.
  SimConfig cfg = config(kInt8, Dataflow::kWs, 1, 2);
  cfg.dram_bytes_per_cycle = 1.0;
  cfg.sram_c_bytes = 1024;
  const GemmShape s{65, 2, 2};
  GemmTiming t = analytic_timing(FoldPlan(cfg, s));
  CHECK(t.total == 1761);
  CHECK(t.compute == 134);
  CHECK(analytic_timing_per_fold(FoldPlan(cfg, s)).total == 1761);
  std::mt19937 rng(5);
  auto res = run(cfg, {random_gemm(rng, cfg.array, s, 0)});
  CHECK(res[0].timing.total == 1761);
  CHECK(res[0].timing.stall == 1761 - 134);
  CHECK(res[0].events.dram_read_bytes == 67 + 67 + 520);
  CHECK(res[0].events.dram_write_bytes == 520 + 520);
}

TEST_CASE("the per-distinct-fold timeline equals the fold-by-fold timeline: a case clang's argument order drew",
          "[model]") {
  // The random test below draws its cases in the order the compiler evaluates arguments, so the
  // clang build of the sanitizer tier sees other cases than g++: this one, fixed, is pinned here.
  SimConfig cfg = config(kFp32, Dataflow::kOs, 9, 12, 4);
  REQUIRE(std::string(cfg.array->name) == "fp32");
  cfg.dram_bytes_per_cycle = 20.865167778281336;
  cfg.overlap = true;
  cfg.sram_a_bytes = 256;
  cfg.sram_b_bytes = 1024;
  cfg.sram_c_bytes = 512;
  FoldPlan plan(cfg, GemmShape{220, 154, 198});
  const GemmTiming fast = analytic_timing(plan), slow = analytic_timing_per_fold(plan);
  CHECK(fast.total == slow.total);
  CHECK(fast.stall == slow.stall);
  CHECK(fast.stall_by_cause == slow.stall_by_cause);
}

TEST_CASE("the per-distinct-fold timeline equals the fold-by-fold timeline", "[model]") {
  const unsigned seed = 20261129;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 400), arr(1, 12), lat(1, 4), kib(0, 6), pick(0, 2);
  std::uniform_real_distribution<double> bw(0.05, 40.0);
  const auto& arrays = kFirstThree;
  const Dataflow flows[] = {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs};
  for (int i = 0; i < 1500; ++i) {
    SimConfig cfg = config(arrays[pick(rng)], flows[pick(rng)], arr(rng), arr(rng), lat(rng));
    cfg.dram_bytes_per_cycle = i % 3 == 0 ? 0.3 : bw(rng);
    cfg.overlap = i % 2 == 0;
    if (i % 4 == 1) cfg.map_policy = MapPolicy::kSearch;
    cfg.sram_a_bytes = 64u << kib(rng);
    cfg.sram_b_bytes = 64u << kib(rng);
    cfg.sram_c_bytes = 64u << kib(rng);
    const GemmShape s{dim(rng), dim(rng), dim(rng)};
    INFO("case " << i << " " << cfg.array->name << " " << name(cfg.dataflow) << " " << cfg.rows << "x" << cfg.cols
                 << " L=" << cfg.mac_latency << " bw=" << fmt::format("{}", cfg.dram_bytes_per_cycle) << " GEMM " << s.m << "x" << s.n
                 << "x" << s.k << " overlap " << cfg.overlap << " policy " << static_cast<int>(cfg.map_policy)
                 << " sram " << cfg.sram_a_bytes << "/" << cfg.sram_b_bytes << "/" << cfg.sram_c_bytes);
    FoldPlan plan(cfg, s);
    GemmTiming fast = analytic_timing(plan), slow = analytic_timing_per_fold(plan);
    REQUIRE(fast.total == slow.total);
    REQUIRE(fast.compute == slow.compute);
    REQUIRE(fast.stall == slow.stall);
    REQUIRE(fast.folds == slow.folds);
    REQUIRE(fast.stall_by_cause == slow.stall_by_cause);
    // Events per distinct fold equal the sum over every fold.
    EventCounts e = analytic_events(plan, fast, 0), sum;
    LoopIndex idx{};
    std::uint64_t folds = 0;
    do {
      Fold x = plan.fold_at(idx);
      sum.dram_read_bytes += x.load_bytes();
      sum.dram_write_bytes += x.store_c_bytes;
      sum.mac_slots += static_cast<std::uint64_t>(x.r) * x.c * x.t;
      ++folds;
    } while (plan.advance(idx));
    REQUIRE(folds == plan.count());
    REQUIRE(e.dram_read_bytes == sum.dram_read_bytes);
    REQUIRE(e.dram_write_bytes == sum.dram_write_bytes);
    REQUIRE(e.mac_slots == sum.mac_slots);
  }
}

TEST_CASE("transfers are exact for decimal bandwidths and huge sizes", "[unit]") {
  CHECK(transfer_cycles(3, Bandwidth::from_double(0.3)) == 10);
  CHECK(transfer_cycles(1, Bandwidth::from_double(0.1)) == 10);
  CHECK(transfer_cycles(4, Bandwidth::from_double(0.3)) == 14);
  CHECK(transfer_cycles(0, Bandwidth::from_double(0.001)) == 0);
  CHECK(transfer_cycles(1, Bandwidth::from_double(1e6)) == 1);
  // Past 1e12 cycles a double-based ceil loses the last cycle; the rational form does not.
  const std::uint64_t big = 3'000'000'000'000'001ull;
  CHECK(transfer_cycles(big, Bandwidth::from_double(3.0)) == 1'000'000'000'000'001ull);
  CHECK(transfer_cycles(big, Bandwidth::from_double(0.001)) == big * 1000);
  CHECK_THROWS_AS(transfer_cycles(~std::uint64_t{0}, Bandwidth::from_double(0.001)), InputError);
  Bandwidth b = Bandwidth::from_double(32.0);
  CHECK(b.num == 32);
  CHECK(b.den == 1);
}

TEST_CASE("counters never wrap: a count past 2^64 is an error", "[unit]") {
  EventCounts a, b;
  a.pe_cycles_idle = ~std::uint64_t{0} - 1;
  b.pe_cycles_idle = 2;
  CHECK_THROWS_WITH(a += b, Catch::Contains("pe_cycles_idle: exceeds 2^64 - 1"));
  CHECK_THROWS_AS(a.scaled(2), InputError);
  // 4096 x 4096 FP32 array, 1 byte per 1000 cycles: PE-cycles = 2^24 x cycles passes 2^64.
  SimConfig cfg = config(kFp32, Dataflow::kOs, 4096, 4096);
  cfg.dram_bytes_per_cycle = 0.001;
  FoldPlan plan(cfg, GemmShape{8028160, 64, 147});
  GemmTiming t = analytic_timing(plan);
  CHECK_THROWS_WITH(analytic_events(plan, t, 0), Catch::Contains("pe_cycles_idle: exceeds 2^64 - 1"));
}

TEST_CASE("zero gating is one rule for every array", "[model]") {
  std::mt19937 rng(11);
  for (const PeType* a : kFirstThree) {
    for (bool gating : {true, false}) {
      SimConfig cfg = config(a, Dataflow::kOs, 3, 4);
      cfg.zero_gating = gating;
      RandomGemm g = random_gemm(rng, a, GemmShape{7, 6, 9}, 40);
      auto res = run(cfg, {g});
      const EventCounts& e = res[0].events;
      INFO(a->name << " gating " << gating);
      REQUIRE(e.products_zero > 0);
      const std::uint64_t executed = gating ? e.mac_slots - e.products_zero : e.mac_slots;
      if (a == kMfMac) {
        CHECK(a->op_count(e, "mfmac_acc_add") == executed);
        CHECK(a->op_count(e, "mfmac_xor") == executed);
      } else if (a == kInt8) {
        CHECK(a->op_count(e, "int8_mul") == executed);
        CHECK(a->op_count(e, "int8_add") == executed);
      } else {
        CHECK(a->op_count(e, "fp32_mul") == executed);
        CHECK(a->op_count(e, "fp32_add") == executed);
      }
      FoldPlan plan(cfg, g.shape);
      EventCounts closed = analytic_events(plan, analytic_timing(plan), e.products_zero);
      CHECK(closed == e);
    }
  }
}

TEST_CASE("a VCD waveform changes no figure, on every array and dataflow", "[model]") {
  test::TempDir dir;
  std::mt19937 rng(17);
  for (const PeType* a : kFirstThree) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      SimConfig cfg = config(a, d, 4, 3);
      cfg.dram_bytes_per_cycle = 1.5;  // stalls, stores and prefetches overlap the folds
      cfg.sram_c_bytes = 128;          // and partial sums spill
      std::vector<RandomGemm> gemms;
      for (int i = 0; i < 3; ++i) gemms.push_back(random_gemm(rng, a, GemmShape{9, 7, 10}, 20));
      auto plain = run(cfg, gemms);
      auto waved = run(cfg, gemms, dir.file(std::string(a->name) + name(d) + ".vcd"));
      for (std::size_t i = 0; i < gemms.size(); ++i) {
        INFO(a->name << " " << name(d) << " GEMM " << i);
        CHECK(plain[i].timing.total == waved[i].timing.total);
        CHECK(plain[i].timing.stall == waved[i].timing.stall);
        for (const auto& c : counter_registry()) {
          INFO("counter " << c.name);
          CHECK(plain[i].events.*c.member == waved[i].events.*c.member);
        }
        CHECK(plain[i].events.pe_ops == waved[i].events.pe_ops);
        CHECK(plain[i].out_int == waved[i].out_int);
        CHECK(plain[i].out_f32 == waved[i].out_f32);
        FoldPlan plan(cfg, gemms[i].shape);
        CHECK(waved[i].timing.total == analytic_timing(plan).total);
      }
    }
  }
}

namespace {

// A random tiling of `s` that fits cfg's buffers, or false after 50 tries.
bool random_tiles(std::mt19937& rng, const SimConfig& cfg, const GemmShape& s, TileMapping* out) {
  static const char* const kOrders[] = {"mnk", "mkn", "nmk", "nkm", "kmn", "knm"};
  std::uniform_int_distribution<int> order(0, 5);
  for (int tries = 0; tries < 50; ++tries) {
    auto pick = [&](std::int64_t d) { return std::uniform_int_distribution<std::int64_t>(1, d)(rng); };
    const char* o = kOrders[order(rng)];
    TileMapping t{pick(s.m), pick(s.n), pick(s.k), {o[0], o[1], o[2]}};
    if (FoldPlan::fits(cfg, s, t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("tiled mappings: value mode equals timing mode and the reference", "[model]") {
  const unsigned seed = 20261130;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 30), arr(1, 6), lat(1, 3), zero(0, 50), kib(0, 4);
  std::uniform_real_distribution<double> bw(0.5, 40.0);
  int cases = 0;
  for (const PeType* a : kFirstThree) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (int rep = 0; rep < 6; ++rep) {
        SimConfig cfg = config(a, d, arr(rng), arr(rng), lat(rng));
        cfg.dram_bytes_per_cycle = bw(rng);
        cfg.sram_a_bytes = 256u << kib(rng);
        cfg.sram_b_bytes = 256u << kib(rng);
        cfg.sram_c_bytes = 256u << kib(rng);
        cfg.fp32_fma = rep % 2 == 1;
        cfg.zero_gating = rep % 3 != 2;
        cfg.overlap = rep % 2 == 0;
        const GemmShape s{dim(rng), dim(rng), dim(rng)};
        TileMapping t;
        if (rep < 3) {
          if (!random_tiles(rng, cfg, s, &t)) continue;
          cfg.map_policy = MapPolicy::kSearch;
          cfg.map_pinned = true;
          cfg.map_tiles = t;
        } else {
          cfg.map_policy = MapPolicy::kSearch;  // the mapper's choice
        }
        RandomGemm g = random_gemm(rng, a, s, zero(rng));
        auto res = run(cfg, {g});
        FoldPlan plan(cfg, s);
        INFO(a->name << " " << name(d) << " " << cfg.rows << "x" << cfg.cols << " L=" << cfg.mac_latency
                          << " bw=" << cfg.dram_bytes_per_cycle << " sram " << cfg.sram_a_bytes << "/"
                          << cfg.sram_b_bytes << "/" << cfg.sram_c_bytes << " GEMM " << s.m << "x" << s.n << "x"
                          << s.k << " " << plan.mapping_text());
        const EventCounts e = check_value_against_closed_form(cfg, plan, g, res[0]);
        const GemmTiming t1 = analytic_timing(plan);
        CHECK(analytic_timing_per_fold(plan).total == t1.total);
        std::uint64_t by_cause = 0;
        for (auto c : t1.stall_by_cause) by_cause += c;
        CHECK(by_cause == t1.stall);
        CHECK(e.dram_read_bytes + e.dram_write_bytes >= plan.compulsory_bytes());
        if (plan.tiled()) CHECK(tiled_dram_bytes(plan) == e.dram_read_bytes + e.dram_write_bytes);
        ++cases;
      }
    }
  }
  CHECK(cases >= 40);
}

TEST_CASE("a streamed B tile: value mode equals timing mode, the same bytes as a resident B", "[model]") {
  // B buffers far smaller than the B tiles, so the tilings that fit stream B fold by fold (OS,
  // IS: chunk by chunk of the stream); every counter of the SystemC model must equal the closed
  // forms, and the traffic must equal that of the same tiling with B resident (a buffer that
  // holds the whole B tile): a streamed tile loads each B element once, as a resident one does.
  const unsigned seed = 20261215;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 40), arr(1, 6), lat(1, 2), zero(0, 40), bkib(3, 6);
  std::uniform_real_distribution<double> bw(0.5, 24.0);
  int streamed = 0, chunked = 0;
  for (const PeType* a : kFirstThree) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (int rep = 0; rep < 8; ++rep) {
        SimConfig cfg = config(a, d, arr(rng), arr(rng), lat(rng));
        cfg.dram_bytes_per_cycle = bw(rng);
        cfg.sram_a_bytes = 4096;
        cfg.sram_b_bytes = 1u << bkib(rng);  // 8 to 64 bytes
        cfg.sram_c_bytes = 256u << (rep % 3);
        cfg.overlap = rep % 2 == 0;
        cfg.fp32_fma = rep % 4 == 1;
        const GemmShape s{dim(rng), dim(rng), dim(rng)};
        TileMapping t;
        bool found = false;
        for (int tries = 0; tries < 40 && !found; ++tries) {
          if (!random_tiles(rng, cfg, s, &t)) break;
          found = FoldPlan(cfg, s, t).b_streamed();
        }
        if (!found) continue;
        cfg.map_policy = MapPolicy::kSearch;
        cfg.map_pinned = true;
        cfg.map_tiles = t;
        FoldPlan plan(cfg, s);
        REQUIRE(plan.b_streamed());
        INFO(a->name << " " << name(d) << " " << cfg.rows << "x" << cfg.cols << " L=" << cfg.mac_latency
                          << " bw=" << cfg.dram_bytes_per_cycle << " sram b " << cfg.sram_b_bytes << " c "
                          << cfg.sram_c_bytes << " overlap " << cfg.overlap << " GEMM " << s.m << "x" << s.n << "x"
                          << s.k << " " << plan.mapping_text());
        RandomGemm g = random_gemm(rng, a, s, zero(rng));
        auto res = run(cfg, {g});
        const EventCounts e = check_value_against_closed_form(cfg, plan, g, res[0]);
        const GemmTiming t1 = analytic_timing(plan);
        CHECK(analytic_timing_per_fold(plan).total == t1.total);
        CHECK(analytic_timing_per_fold(plan).stall_by_cause == t1.stall_by_cause);
        const std::uint64_t bytes = e.dram_read_bytes + e.dram_write_bytes;
        CHECK(tiled_dram_bytes(plan) == bytes);
        CHECK(bytes >= plan.compulsory_bytes());
        // Every fold's (chunk's) B fits half the B buffer.
        LoopIndex idx{};
        do {
          CHECK(plan.fold_at(idx).load_b_bytes <= cfg.sram_b_bytes / 2);
        } while (plan.advance(idx));
        SimConfig resident = cfg;
        resident.sram_b_bytes = 1 << 20;
        FoldPlan whole(resident, s);
        REQUIRE(!whole.b_streamed());
        const EventCounts ew = analytic_events(whole, analytic_timing(whole), 0);
        if (a->operand_bits % 8 == 0) {
          CHECK(bytes == ew.dram_read_bytes + ew.dram_write_bytes);
        } else {  // packed 4-bit operands: each chunk rounds up to whole bytes
          CHECK(bytes >= ew.dram_read_bytes + ew.dram_write_bytes);
        }
        ++streamed;
        chunked += plan.chunk() != 0 && plan.level_count(5, LoopIndex{}) > 1 ? 1 : 0;
      }
    }
  }
  CHECK(streamed >= 30);
  CHECK(chunked >= 10);
}

TEST_CASE("a B tile streamed once frees the mapper from K splits: the weight-bound GEMM reaches its minimum",
          "[model]") {
  // SCALE-Sim's Conv5_1b in miniature: few output positions (one block of array rows), many
  // weights. The whole B does not fit half the B buffer, nor does one fold's B (K x 4 columns),
  // nor the output tile of all N in the C buffer. Holding B tiles whole forces K splits: A is
  // read again or partial sums spill. Streaming B past a resident A and an output tile reaches
  // the GEMM-view minimum.
  SimConfig cfg = config(kInt8, Dataflow::kOs, 4, 4);
  cfg.accumulator.bits = 8;  // one-byte outputs, as SCALE-Sim counts them
  cfg.sram_a_bytes = 2048;
  cfg.sram_b_bytes = 256;
  cfg.sram_c_bytes = 32;
  cfg.dram_bytes_per_cycle = 4;
  cfg.map_policy = MapPolicy::kSearch;
  cfg.map_objective = MapObjective::kDram;
  const GemmShape s{3, 16, 300};
  FoldPlan plan(cfg, s);
  INFO(plan.mapping_text());
  REQUIRE(plan.tiled());
  CHECK(plan.b_streamed());
  const EventCounts e = analytic_events(plan, analytic_timing(plan), 0);
  CHECK(e.dram_read_bytes + e.dram_write_bytes == plan.compulsory_bytes());
  CHECK(plan.compulsory_bytes() == 3 * 300 + 300 * 16 + 3 * 16);
  CHECK(analytic_timing_per_fold(plan).total == analytic_timing(plan).total);  // runs of chunks advanced exactly
  // Its B tile, and one fold's B, would not fit half the B buffer: streamed in chunks of k.
  const auto kt = static_cast<std::uint64_t>(plan.tiles().kt), nt = static_cast<std::uint64_t>(plan.tiles().nt);
  CHECK(kt * nt > cfg.sram_b_bytes / 2);
  CHECK(plan.chunk() * std::min<std::int64_t>(plan.tiles().nt, cfg.cols) <= static_cast<std::int64_t>(cfg.sram_b_bytes / 2));
  CHECK(plan.level_count(5, LoopIndex{}) > 1);
  // Value mode agrees on every counter (with accumulators wide enough for random operands).
  cfg.accumulator.bits = 32;
  cfg.sram_c_bytes = 128;
  cfg.map_pinned = true;
  cfg.map_tiles = plan.tiles();
  const FoldPlan wide(cfg, s);
  REQUIRE(wide.b_streamed());
  std::mt19937 rng(7);
  RandomGemm g = random_gemm(rng, kInt8, s, 10);
  auto res = run(cfg, {g});
  check_value_against_closed_form(cfg, wide, g, res[0]);
}

TEST_CASE("no mapping moves fewer DRAM bytes than the compulsory minimum", "[model]") {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> dim(1, 3000), arr(1, 64), kib(0, 10), pick(0, 2);
  const auto& arrays = kFirstThree;
  const Dataflow flows[] = {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs};
  int tiled = 0;
  for (int i = 0; i < 300; ++i) {
    SimConfig cfg = config(arrays[pick(rng)], flows[pick(rng)], arr(rng), arr(rng));
    cfg.sram_a_bytes = 1024u << kib(rng);
    cfg.sram_b_bytes = 1024u << kib(rng);
    cfg.sram_c_bytes = 1024u << kib(rng);
    cfg.map_policy = i % 3 == 0 ? MapPolicy::kFixed : MapPolicy::kSearch;
    const GemmShape s{dim(rng), dim(rng), dim(rng)};
    TileMapping t;
    if (i % 3 == 2 && random_tiles(rng, cfg, s, &t)) {
      cfg.map_pinned = true;
      cfg.map_tiles = t;
    }
    FoldPlan plan(cfg, s);
    tiled += plan.tiled() ? 1 : 0;
    EventCounts e = analytic_events(plan, analytic_timing(plan), 0);
    INFO("case " << i << " GEMM " << s.m << "x" << s.n << "x" << s.k << " " << plan.mapping_text());
    REQUIRE(e.dram_read_bytes + e.dram_write_bytes >= plan.compulsory_bytes());
  }
  CHECK(tiled > 100);
}

TEST_CASE("convolutions read feature maps: value equals timing, traffic at or above the minimum", "[model]") {
  const unsigned seed = 20261131;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> hw(3, 12), ch(1, 6), ker(1, 3), str(1, 3), pad(0, 2), batch(1, 3), arr(2, 6),
      kib(0, 3), ph(0, 2);
  int cases = 0;
  for (const PeType* a : kFirstThree) {
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (int rep = 0; rep < 12; ++rep) {
        ConvView conv;
        conv.active = true;
        conv.geo = ConvGeometry{batch(rng), hw(rng), hw(rng), ch(rng), 0, 0, str(rng), pad(rng)};
        conv.geo.kernel_h = conv.geo.kernel_w = std::min<std::int64_t>(ker(rng), conv.geo.in_h + 2 * conv.geo.pad);
        // Padding past the far edges only (SCALE-Sim's rounded-up output), below the stride.
        conv.geo.pad_end_h = std::uniform_int_distribution<std::int64_t>(0, conv.geo.stride - 1)(rng);
        conv.geo.pad_end_w = std::uniform_int_distribution<std::int64_t>(0, conv.geo.stride - 1)(rng);
        conv.phase = static_cast<Phase>(ph(rng));
        const std::int64_t M = conv.geo.batch * conv.geo.out_h() * conv.geo.out_w();
        const std::int64_t K = conv.geo.kernel_h * conv.geo.kernel_w * conv.geo.in_c, Cout = ch(rng);
        const GemmShape s = conv.phase == Phase::kFwd ? GemmShape{M, Cout, K}
                            : conv.phase == Phase::kBwdData ? GemmShape{M, K, Cout}
                                                            : GemmShape{K, Cout, M};
        SimConfig cfg = config(a, d, arr(rng), arr(rng));
        cfg.dram_bytes_per_cycle = 3.0;
        cfg.overlap = rep % 3 != 0;
        cfg.sram_a_bytes = 512u << kib(rng);
        cfg.sram_b_bytes = 512u << kib(rng);
        cfg.sram_c_bytes = 512u << kib(rng);
        cfg.map_policy = MapPolicy::kSearch;
        cfg.conv_im2col_onchip = rep % 4 != 3;  // im2col matrices in DRAM (bwd_data: plus the untouched zeros)
        TileMapping t;
        if (rep % 2 == 0 && random_tiles(rng, cfg, s, &t) && FoldPlan::fits(cfg, s, t, conv)) {
          cfg.map_pinned = true;
          cfg.map_tiles = t;
        }
        FoldPlan plan(cfg, s, conv);
        INFO(a->name << " " << name(d) << " " << to_string(conv.phase) << " GEMM " << s.m << "x" << s.n << "x"
                          << s.k << " " << plan.mapping_text());
        RandomGemm g = random_gemm(rng, a, s, 10);
        auto res = run(cfg, {g}, "", conv);
        const EventCounts e = check_value_against_closed_form(cfg, plan, g, res[0]);
        CHECK(res[0].events == e);
        CHECK(e.dram_read_bytes + e.dram_write_bytes >= plan.compulsory_bytes());
        if (plan.conv_on_chip()) {
          CHECK(plan.compulsory_bytes() <= plan.compulsory_bytes_gemm_view() + packed_bytes(
                    static_cast<std::uint64_t>(conv.geo.batch * conv.geo.in_h * conv.geo.in_w * conv.geo.in_c), 32));
          ++cases;
        }
      }
    }
  }
  CHECK(cases >= 50);
}

namespace {

// The physical minimum of a convolution, counted element by element: the input elements some
// window touches (fwd, bwd_weight) or every input-gradient element (bwd_data), the other operand
// and the output once.
std::uint64_t exact_minimum(const ConvView& conv, const GemmShape& s, int operand_bits, int output_bits) {
  const ConvGeometry& g = conv.geo;
  std::vector<char> row(static_cast<std::size_t>(g.in_h), 0), col(static_cast<std::size_t>(g.in_w), 0);
  for (std::int64_t o = 0; o < g.out_h(); ++o) {
    for (std::int64_t k = 0; k < g.kernel_h; ++k) {
      const std::int64_t r = o * g.stride - g.pad + k;
      if (r >= 0 && r < g.in_h) row[static_cast<std::size_t>(r)] = 1;
    }
  }
  for (std::int64_t o = 0; o < g.out_w(); ++o) {
    for (std::int64_t k = 0; k < g.kernel_w; ++k) {
      const std::int64_t c = o * g.stride - g.pad + k;
      if (c >= 0 && c < g.in_w) col[static_cast<std::size_t>(c)] = 1;
    }
  }
  std::uint64_t rows = 0, cols = 0;
  for (char x : row) rows += static_cast<std::uint64_t>(x);
  for (char x : col) cols += static_cast<std::uint64_t>(x);
  const auto M = static_cast<std::uint64_t>(s.m), N = static_cast<std::uint64_t>(s.n), K = static_cast<std::uint64_t>(s.k);
  if (conv.phase == Phase::kBwdData) {
    return packed_bytes(M * K, operand_bits) + packed_bytes(K * N, operand_bits) +
           packed_bytes(g.input_elements(), output_bits);
  }
  const std::uint64_t used = static_cast<std::uint64_t>(g.batch) * rows * cols * static_cast<std::uint64_t>(g.in_c);
  return packed_bytes(used, operand_bits) + packed_bytes(K * N, operand_bits) + packed_bytes(M * N, output_bits);
}

ConvView conv_of(Phase phase, ConvGeometry geo, std::int64_t filters, GemmShape* shape) {
  ConvView conv;
  conv.active = true;
  conv.geo = geo;
  conv.phase = phase;
  const std::int64_t M = geo.batch * geo.out_h() * geo.out_w(), K = geo.kernel_h * geo.kernel_w * geo.in_c;
  *shape = phase == Phase::kFwd ? GemmShape{M, filters, K} : phase == Phase::kBwdData ? GemmShape{M, K, filters}
                                                                                       : GemmShape{K, filters, M};
  return conv;
}

}  // namespace

TEST_CASE("compulsory bytes are a property of the workload: every mapping, objective and buffer agrees", "[model]") {
  const unsigned seed = 20261201;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> hw(3, 14), ch(1, 5), ker(1, 4), str(1, 4), pad(0, 2), batch(1, 2), arr(2, 8),
      kib(0, 5), ph(0, 2), pick(0, 2), gemm_dim(1, 40);
  const MapObjective objectives[] = {MapObjective::kDram, MapObjective::kCycles, MapObjective::kEnergy,
                                     MapObjective::kEdp};
  int checked = 0;
  for (int i = 0; i < 60; ++i) {
    const bool is_conv = i % 6 != 5;  // and some plain GEMMs: the GEMM view
    GemmShape s{gemm_dim(rng), gemm_dim(rng), gemm_dim(rng)};
    ConvView conv;
    if (is_conv) {
      ConvGeometry geo{batch(rng), hw(rng), hw(rng), ch(rng), 0, 0, str(rng), pad(rng)};
      geo.kernel_h = std::min<std::int64_t>(ker(rng), geo.in_h + 2 * geo.pad);
      geo.kernel_w = std::min<std::int64_t>(ker(rng), geo.in_w + 2 * geo.pad);
      if (i % 2 == 1) {  // padding past the far edges only (SCALE-Sim's rounded-up output)
        geo.pad_end_h = std::uniform_int_distribution<std::int64_t>(0, geo.stride - 1)(rng);
        geo.pad_end_w = std::uniform_int_distribution<std::int64_t>(0, geo.stride - 1)(rng);
      }
      conv = conv_of(static_cast<Phase>(ph(rng)), geo, ch(rng), &s);
    }
    SimConfig base = config(kFirstThree[static_cast<std::size_t>(pick(rng))], static_cast<Dataflow>(pick(rng)), arr(rng),
                            arr(rng));
    base.dram_bytes_per_cycle = 4;
    base.overlap = i % 2 == 0;
    base.map_costs = MapCosts{true, 100.0, 1.0, 1.2, 1.5, 0.1};
    const std::uint64_t want = is_conv ? exact_minimum(conv, s, array_widths(base).operand, array_widths(base).output)
                                       : FoldPlan(base, s).compulsory_bytes_gemm_view();
    INFO("case " << i << " " << (is_conv ? to_string(conv.phase) : "gemm") << " GEMM " << s.m << "x" << s.n << "x"
                 << s.k);
    for (int v = 0; v < 24; ++v) {
      SimConfig cfg = base;
      cfg.map_policy = v % 8 == 7 ? MapPolicy::kFixed : MapPolicy::kSearch;
      cfg.map_objective = objectives[v % 4];
      cfg.conv_im2col_onchip = v % 3 != 2;
      cfg.sram_a_bytes = 256u << kib(rng);
      cfg.sram_b_bytes = 256u << kib(rng);
      cfg.sram_c_bytes = 256u << kib(rng);
      TileMapping t;
      if (v % 5 == 4 && random_tiles(rng, cfg, s, &t)) {
        t.fmap = v % 2 == 0;
        if (FoldPlan::fits(cfg, s, t, conv)) {
          cfg.map_pinned = true;
          cfg.map_tiles = t;
        }
      }
      FoldPlan plan(cfg, s, conv);
      INFO("variant " << v << " " << plan.mapping_text() << " sram " << cfg.sram_a_bytes << "/" << cfg.sram_b_bytes
                      << "/" << cfg.sram_c_bytes);
      REQUIRE(plan.compulsory_bytes() == want);
      const EventCounts e = analytic_events(plan, analytic_timing(plan), 0);
      REQUIRE(e.dram_read_bytes + e.dram_write_bytes >= want);
      ++checked;
    }
  }
  CHECK(checked == 60 * 24);
}

TEST_CASE("compulsory bytes and traffic: the hand-counted convolutions of issue 22", "[model]") {
  GemmShape s;
  // bwd_data, input 8x8x4, kernel 1x2, stride 2, pad 1, 5 filters: the windows touch the odd rows
  // only, but the dense input gradient (8x8x4 x 32 bit = 1024 B) must be written: with G (25x5
  // PoT4, 63 B) and W (5x8 PoT4, 20 B) the minimum is 1107 B. As an im2col matrix (25x8 x 32 bit
  // = 800 B) the layer also writes the 128 untouched zeros (512 B).
  const ConvView bd = conv_of(Phase::kBwdData, ConvGeometry{1, 8, 8, 4, 1, 2, 2, 1}, 5, &s);
  SimConfig cfg = config(kMfMac, Dataflow::kWs, 5, 3);
  cfg.sram_a_bytes = cfg.sram_b_bytes = cfg.sram_c_bytes = 4096;
  cfg.map_policy = MapPolicy::kSearch;
  for (bool onchip : {true, false}) {
    INFO("im2col onchip " << onchip);
    cfg.conv_im2col_onchip = onchip;
    FoldPlan plan(cfg, s, bd);
    CHECK(plan.compulsory_bytes() == 1107);
    const EventCounts e = analytic_events(plan, analytic_timing(plan), 0);
    CHECK(e.dram_read_bytes + e.dram_write_bytes >= 1107);
    if (!plan.conv_on_chip()) CHECK(e.dram_write_bytes == 800 + 512);
  }
  // fwd, input 6x8x2, kernel 1x3, stride 3, pad 2, 2 filters, FP32: rows -2, 1, 4, 7 are the
  // windows' rows, two of them in the image: X 2x8x2 x 4 B = 128 B, W 6x2 = 48 B, Y 16x2 = 128 B.
  const ConvView fw = conv_of(Phase::kFwd, ConvGeometry{1, 6, 8, 2, 1, 3, 3, 2}, 2, &s);
  SimConfig f = config(kFp32, Dataflow::kOs, 32, 32);
  f.map_policy = MapPolicy::kSearch;
  FoldPlan plan(f, s, fw);
  CHECK(plan.compulsory_bytes() == 304);
  CHECK(tiled_dram_bytes(plan) == 304);
}

TEST_CASE("feature maps: consecutive position tiles of one image keep their halo rows on chip", "[model]") {
  // Input 8x6x2 (one image), kernel 3x3, stride 1: output 6x4, forward GEMM 24 x 2 x 18, INT8
  // (one-byte operands, 32-bit outputs). Position tiles of 8 (two output rows): the model's
  // region is (2 + 1 - 1) + 3 = 5 input rows x 6 x 2 = 60 B; the 2 rows x 6 x 2 = 24 B of halo
  // the next tile shares are already in the A buffer, so tiles 1 and 2 load 36 B each.
  GemmShape s;
  const ConvView fw = conv_of(Phase::kFwd, ConvGeometry{1, 8, 6, 2, 3, 3, 1, 0}, 2, &s);
  REQUIRE((s.m == 24 && s.n == 2 && s.k == 18));
  SimConfig cfg = config(kInt8, Dataflow::kOs, 4, 2);
  cfg.dram_bytes_per_cycle = 2;
  cfg.overlap = true;
  cfg.map_policy = MapPolicy::kSearch;
  cfg.map_pinned = true;
  for (const char* order : {"mnk", "nmk", "kmn"}) {
    INFO("order " << order);
    cfg.map_tiles = TileMapping{8, 2, 18, {order[0], order[1], order[2]}, true};
    FoldPlan plan(cfg, s, fw);
    REQUIRE(plan.conv_on_chip());
    const std::uint64_t a = 60 + 36 + 36, b = 18 * 2, c = 24 * 2 * 4;
    CHECK(tiled_dram_bytes(plan) == a + b + c);
    CHECK(tiled_dram_bytes(plan) >= plan.compulsory_bytes());
    std::mt19937 rng(7);
    RandomGemm g = random_gemm(rng, kInt8, s, 10);
    auto res = run(cfg, {g}, "", fw);
    const EventCounts e = check_value_against_closed_form(cfg, plan, g, res[0]);
    CHECK(res[0].events == e);
    CHECK(e.dram_read_bytes == a + b);
    CHECK(e.sram_a_write_bits == a * 8);
  }
  // K split inside the position loop (the previous tile held other channels), or two images
  // (a tile may start a new image): every tile loads its whole region.
  cfg.map_tiles = TileMapping{8, 2, 9, {'m', 'n', 'k'}, true};
  FoldPlan split(cfg, s, fw);
  REQUIRE(split.conv_on_chip());
  CHECK(tiled_dram_bytes(split) == 3 * 2 * 60 + 3 * 2 * 9 * 2 + 24 * 2 * 4);  // B: a 9x2 tile per tile
  const ConvView two = conv_of(Phase::kFwd, ConvGeometry{2, 8, 6, 2, 3, 3, 1, 0}, 2, &s);
  cfg.map_tiles = TileMapping{8, 2, 18, {'m', 'n', 'k'}, true};
  FoldPlan batch2(cfg, s, two);
  REQUIRE(batch2.conv_on_chip());
  CHECK(tiled_dram_bytes(batch2) == 6 * 60 + 18 * 2 + 48 * 2 * 4);
}

TEST_CASE("feature maps: every position tile loads at least the input pixels it newly needs", "[model]") {
  // Element by element: tile i needs the pixels its windows touch; what the tile before it held
  // may be reused (the halo rule), nothing else. Random one-image geometries (pad, far-edge pad,
  // kernels taller than the stride), position tiles of whole output rows, INT8 (1 B a pixel).
  const unsigned seed = 20261202;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> hw(4, 14), ch(1, 4), ker(2, 4), str(1, 3), pad(0, 2), pick(0, 5);
  int checked = 0;
  for (int i = 0; i < 200; ++i) {
    ConvGeometry g{1, hw(rng), hw(rng), ch(rng), ker(rng), ker(rng), str(rng), pad(rng)};
    g.kernel_h = std::min<std::int64_t>(g.kernel_h, g.in_h + 2 * g.pad);
    g.kernel_w = std::min<std::int64_t>(g.kernel_w, g.in_w + 2 * g.pad);
    g.pad_end_h = std::uniform_int_distribution<std::int64_t>(0, g.stride - 1)(rng);
    g.pad_end_w = std::uniform_int_distribution<std::int64_t>(0, g.stride - 1)(rng);
    GemmShape s;
    const ConvView fw = conv_of(Phase::kFwd, g, 3, &s);
    const std::int64_t P = g.out_h(), Q = g.out_w();
    if (P < 2) continue;
    const std::int64_t mt = Q * std::uniform_int_distribution<std::int64_t>(1, P - 1)(rng);
    SimConfig cfg = config(kInt8, Dataflow::kOs, 4, 4);
    cfg.map_policy = MapPolicy::kSearch;
    cfg.map_pinned = true;
    static const char* const kOrders[] = {"mnk", "mkn", "nmk", "nkm", "kmn", "knm"};
    const char* order = kOrders[pick(rng)];
    cfg.map_tiles = TileMapping{mt, s.n, s.k, {order[0], order[1], order[2]}, true};
    if (!FoldPlan::fits(cfg, s, cfg.map_tiles, fw)) continue;
    FoldPlan plan(cfg, s, fw);
    REQUIRE(plan.conv_on_chip());
    const int m_level = static_cast<int>(std::string(order).find('m'));
    std::vector<char> prev;
    for (std::int64_t t = 0; t * mt < s.m; ++t) {
      std::vector<char> need(static_cast<std::size_t>(g.in_h * g.in_w), 0);
      for (std::int64_t p = t * mt; p < std::min(s.m, (t + 1) * mt); ++p) {
        for (std::int64_t kr = 0; kr < g.kernel_h; ++kr) {
          for (std::int64_t kc = 0; kc < g.kernel_w; ++kc) {
            const std::int64_t r = p / Q * g.stride - g.pad + kr, c = p % Q * g.stride - g.pad + kc;
            if (r >= 0 && r < g.in_h && c >= 0 && c < g.in_w) need[static_cast<std::size_t>(r * g.in_w + c)] = 1;
          }
        }
      }
      std::uint64_t fresh = 0;
      for (std::size_t x = 0; x < need.size(); ++x) fresh += need[x] != 0 && (prev.empty() || prev[x] == 0) ? 1 : 0;
      LoopIndex idx{};
      idx[static_cast<std::size_t>(m_level)] = t;
      const Fold f = plan.fold_at(idx);
      INFO("case " << i << " input " << g.in_h << "x" << g.in_w << "x" << g.in_c << " kernel " << g.kernel_h << "x"
                   << g.kernel_w << " stride " << g.stride << " pad " << g.pad << " pad_end " << g.pad_end_h << ","
                   << g.pad_end_w << " tiles " << to_string(cfg.map_tiles) << " tile " << t);
      REQUIRE(f.load_a_bytes >= fresh * static_cast<std::uint64_t>(g.in_c));
      prev = need;
      ++checked;
    }
  }
  CHECK(checked > 300);
}

TEST_CASE("the mapper: each objective wins on its own measure", "[model]") {
  const GemmShape shapes[] = {{6272, 256, 2304}, {100352, 64, 576}, {1568, 512, 4608}, {32, 1000, 512}, {777, 333, 129}};
  for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
    for (const GemmShape& s : shapes) {
      SimConfig cfg = config(kMfMac, d, 32, 32);
      cfg.sram_a_bytes = cfg.sram_b_bytes = 256 * 1024;
      cfg.sram_c_bytes = 128 * 1024;
      cfg.dram_bytes_per_cycle = 32;
      cfg.overlap = true;
      cfg.map_policy = MapPolicy::kSearch;
      INFO(name(d) << " GEMM " << s.m << "x" << s.n << "x" << s.k);
      auto measure = [&](MapObjective o) {
        SimConfig c = cfg;
        c.map_objective = o;
        FoldPlan plan(c, s);
        REQUIRE(plan.tiled());
        GemmTiming t = analytic_timing(plan);
        EventCounts e = analytic_events(plan, t, 0);
        return std::make_pair(e.dram_read_bytes + e.dram_write_bytes, t.total);
      };
      const auto by_dram = measure(MapObjective::kDram), by_cycles = measure(MapObjective::kCycles);
      const auto fixed = [&] {
        SimConfig c = cfg;
        c.map_policy = MapPolicy::kFixed;
        FoldPlan plan(c, s);
        GemmTiming t = analytic_timing(plan);
        EventCounts e = analytic_events(plan, t, 0);
        return std::make_pair(e.dram_read_bytes + e.dram_write_bytes, t.total);
      }();
      // dram ties within 5%; cycles ranks the 16 best bounds, so it may miss the dram pick's cycles.
      CHECK(by_dram.first * 20 <= by_cycles.first * 21);
      CHECK(by_cycles.second * 20 <= by_dram.second * 21);
      CHECK(by_dram.first * 20 <= fixed.first * 21);  // never clearly worse than the untiled mapping
    }
  }
}

TEST_CASE("the mapper's search equals exhaustive enumeration of its candidates, for every objective", "[model]") {
  const unsigned seed = 20261202;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 12), arr(1, 4), kib(0, 3), pick(0, 2), bw(0, 3);
  const double bandwidths[] = {2, 8, 32, 0.5};
  const MapObjective objectives[] = {MapObjective::kEdp, MapObjective::kEnergy, MapObjective::kCycles,
                                     MapObjective::kDram};
  int cases = 0, streamed = 0;
  for (int i = 0; i < 80; ++i) {
    SimConfig cfg = config(kFirstThree[static_cast<std::size_t>(pick(rng))], static_cast<Dataflow>(pick(rng)), arr(rng),
                           arr(rng));
    cfg.map_policy = MapPolicy::kSearch;
    cfg.overlap = i % 2 == 0;
    cfg.dram_bytes_per_cycle = bandwidths[bw(rng)];
    cfg.sram_a_bytes = 64u << kib(rng);
    cfg.sram_b_bytes = 64u << kib(rng);
    if (i >= 60) cfg.sram_b_bytes = 8u << kib(rng);  // B tiles that only fit streamed
    cfg.sram_c_bytes = 128u << kib(rng);
    if (i % 4 != 3) cfg.map_costs = MapCosts{true, 80.0 + i, 0.9, 1.1, 1.7, 0.05};  // else: energy = DRAM bytes
    const GemmShape s{dim(rng), dim(rng), dim(rng)};
    const std::vector<TileMapping> cands = mapping_candidates(cfg, s, {});
    if (cands.empty()) continue;
    // Every candidate measured in full: energy as the mapper weighs it, cycles, DRAM bytes.
    struct Measured {
      double energy;
      std::uint64_t cycles, dram;
    };
    std::vector<Measured> m;
    for (const TileMapping& t : cands) {
      FoldPlan plan(cfg, s, t);
      streamed += plan.b_streamed() ? 1 : 0;
      const GemmTiming tm = analytic_timing(plan);
      const EventCounts e = analytic_events(plan, tm, 0);
      const std::uint64_t dram = e.dram_read_bytes + e.dram_write_bytes;
      const MapCosts& c = cfg.map_costs;
      const double energy =
          !c.set ? static_cast<double>(dram)
                 : c.dram_byte * static_cast<double>(dram) +
                       c.sram_a_bit * static_cast<double>(e.sram_a_read_bits + e.sram_a_write_bits) +
                       c.sram_b_bit * static_cast<double>(e.sram_b_read_bits + e.sram_b_write_bits) +
                       c.sram_c_bit * static_cast<double>(e.sram_c_read_bits + e.sram_c_write_bits) +
                       c.register_bit * static_cast<double>(e.reg_operand_write_bits + e.reg_acc_write_bits);
      m.push_back(Measured{energy, tm.total, dram});
    }
    std::uint64_t least_dram = m.front().dram;
    for (const auto& x : m) least_dram = std::min(least_dram, x.dram);
    for (MapObjective obj : objectives) {
      // The documented order: the objective, then its tie-breakers, then enumeration order.
      auto key = [&](const Measured& x) {
        switch (obj) {
          case MapObjective::kEdp: return std::make_tuple(x.energy * static_cast<double>(x.cycles), static_cast<double>(x.cycles), x.energy, x.dram);
          case MapObjective::kEnergy: return std::make_tuple(x.energy, static_cast<double>(x.cycles), 0.0, x.dram);
          case MapObjective::kCycles: return std::make_tuple(static_cast<double>(x.cycles), x.energy, 0.0, x.dram);
          case MapObjective::kDram: break;
        }
        return std::make_tuple(static_cast<double>(x.cycles), 0.0, 0.0, x.dram);
      };
      std::size_t want = cands.size();
      for (std::size_t j = 0; j < cands.size(); ++j) {
        if (obj == MapObjective::kDram && m[j].dram > least_dram + least_dram / 20) continue;
        if (want == cands.size() || key(m[j]) < key(m[want])) want = j;
      }
      SimConfig c = cfg;
      c.map_objective = obj;
      TileMapping got;
      REQUIRE(choose_tiles(c, s, {}, &got));
      INFO("case " << i << " objective " << static_cast<int>(obj) << " GEMM " << s.m << "x" << s.n << "x" << s.k
                   << " " << name(cfg.dataflow) << " " << cfg.rows << "x" << cfg.cols << ": searched "
                   << to_string(got) << ", exhaustive " << to_string(cands[want]));
      CHECK(got == cands[want]);
      if (obj == MapObjective::kEdp || obj == MapObjective::kEnergy) {  // Pareto-safe: nothing beats it on both
        for (const auto& x : m) CHECK_FALSE((x.cycles < m[want].cycles && x.energy < m[want].energy));
      }
      ++cases;
    }
  }
  CHECK(cases >= 160);
  CHECK(streamed >= 50);  // candidates that stream B are searched exactly too
}

TEST_CASE("the mapper's search: the 5x4x3 GEMM of issue 22 finds the fewest cycles", "[model]") {
  // FP32, OS 2x1, 1 KiB A and B buffers, 32 B/cycle, overlap: pruning to the 16 lowest bounds
  // kept 2x4x3:mnk (49 cycles) and dropped 2x2x3:knm (48).
  SimConfig cfg = config(kFp32, Dataflow::kOs, 2, 1);
  cfg.sram_a_bytes = cfg.sram_b_bytes = 1024;
  cfg.sram_c_bytes = 128 * 1024;
  cfg.dram_bytes_per_cycle = 32;
  cfg.overlap = true;
  cfg.map_policy = MapPolicy::kSearch;
  cfg.map_objective = MapObjective::kCycles;
  const GemmShape s{5, 4, 3};
  CHECK(analytic_timing(FoldPlan(cfg, s)).total == 48);
  TileMapping pinned;
  REQUIRE(parse_tile_mapping("2x2x3:knm", &pinned));
  CHECK(analytic_timing(FoldPlan(cfg, s, pinned)).total == 48);
}

TEST_CASE("mapping: the worked example of docs/mapping.md", "[model]") {
  SimConfig cfg = config(kMfMac, Dataflow::kWs, 8, 8);
  cfg.sram_a_bytes = cfg.sram_b_bytes = 256 * 1024;
  cfg.sram_c_bytes = 128 * 1024;
  cfg.dram_bytes_per_cycle = 8;
  cfg.overlap = true;
  cfg.map_policy = MapPolicy::kSearch;
  cfg.map_pinned = true;
  const GemmShape s{64, 64, 64};
  auto run_tiles = [&](const char* text) {
    REQUIRE(parse_tile_mapping(text, &cfg.map_tiles));
    FoldPlan plan(cfg, s);
    GemmTiming t = analytic_timing(plan);
    EventCounts e = analytic_events(plan, t, 0);
    return std::make_tuple(e.dram_read_bytes, e.dram_write_bytes, t);
  };
  auto [r1, w1, t1] = run_tiles("32x32x32:mnk");
  CHECK(r1 == 4096 + 4096);
  CHECK(w1 == 16384);
  CHECK(t1.total == 6536);
  CHECK(t1.stall_by_cause[kStallFill] == 128);
  CHECK(t1.stall_by_cause[kStallDrain] == 512);
  auto [r2, w2, t2] = run_tiles("32x32x32:mkn");
  CHECK(r2 == 2048 + 4096 + 4 * 4096);
  CHECK(w2 == 8 * 4096);
  CHECK(t2.total == 10664);
  CHECK(t2.stall_by_cause[kStallSpill] == 4128);
  auto [r3, w3, t3] = run_tiles("64x64x64:mnk");
  CHECK(r3 + w3 == 20480);
  CHECK(t3.total == 7560);
  FoldPlan whole(cfg, s);
  CHECK(whole.compulsory_bytes() == 20480);
  cfg.map_pinned = false;
  cfg.sram_c_bytes = 8 * 1024;
  FoldPlan searched(cfg, s);
  CHECK(searched.mapping_text() == "tiles 64x8x64 (MxNxK), order mnk");
  CHECK(analytic_timing(searched).total == 5544);
}

TEST_CASE("every PE type: value mode equals timing mode and the reference, in every dataflow", "[model]") {
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> dim(1, 30), arr(1, 7), lat(1, 3), zero(0, 50), kib(0, 3);
  for (const PeType* a : pe_types()) {
    REQUIRE_FALSE(a->holds.empty());
    CHECK(a->can_hold(a->holds.front()));
    for (Dataflow d : {Dataflow::kOs, Dataflow::kWs, Dataflow::kIs}) {
      for (int rep = 0; rep < 3; ++rep) {
        SimConfig cfg = config(a, d, arr(rng), arr(rng), lat(rng));
        cfg.dram_bytes_per_cycle = 3.0;
        cfg.sram_a_bytes = cfg.sram_b_bytes = cfg.sram_c_bytes = 256u << kib(rng);
        cfg.map_policy = rep == 2 ? MapPolicy::kSearch : MapPolicy::kFixed;
        cfg.overlap = rep != 0;
        std::vector<RandomGemm> gemms;
        for (int g = 0; g < 2; ++g) gemms.push_back(random_gemm(rng, a, GemmShape{dim(rng), dim(rng), dim(rng)}, zero(rng)));
        auto res = run(cfg, gemms);
        for (std::size_t g = 0; g < gemms.size(); ++g) {
          INFO(a->name << " " << name(d) << " rep " << rep << " GEMM " << g);
          FoldPlan plan(cfg, gemms[g].shape);
          const EventCounts e = check_value_against_closed_form(cfg, plan, gemms[g], res[g]);
          // Every declared op is counted once per executed product (FP32's FMA op is off here).
          const std::uint64_t executed = e.mac_slots - e.products_zero;
          for (const PeOp& op : a->ops) {
            INFO("op " << op.counter);
            CHECK(a->op_count(e, op.counter) == (std::string(op.counter) == "fp32_fma" ? 0 : executed));
          }
          // Operands cross the array's edges at the type's width: reads are multiples of it.
          CHECK(e.sram_a_read_bits % static_cast<std::uint64_t>(a->operand_bits) == 0);
          CHECK(e.reg_operand_write_bits % static_cast<std::uint64_t>(a->operand_bits) == 0);
        }
      }
    }
  }
}
