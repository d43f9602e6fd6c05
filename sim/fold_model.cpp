#include "sim/fold_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace mfsim {

Mapping map_gemm(Dataflow d, const GemmShape& s) {
  switch (d) {
    case Dataflow::kOs: return Mapping{s.m, s.n, s.k};
    case Dataflow::kWs: return Mapping{s.k, s.n, s.m};
    case Dataflow::kIs: return Mapping{s.k, s.m, s.n};
  }
  return {};
}

std::uint64_t packed_bytes(std::uint64_t elements, int bits) {
  return (elements * static_cast<std::uint64_t>(bits) + 7) / 8;
}

namespace {
__extension__ typedef unsigned __int128 u128;  // exact products of 64-bit counts
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
}  // namespace

FoldPlan::FoldPlan(const SimConfig& cfg, const GemmShape& shape)
    : cfg_(cfg), shape_(shape), map_(map_gemm(cfg.dataflow, shape)) {
  row_blocks_ = ceil_div(map_.sr, cfg.rows);
  col_blocks_ = ceil_div(map_.sc, cfg.cols);
  switch (cfg.array) {
    case ArrayKind::kMfMac: operand_bits_ = 4; break;
    case ArrayKind::kInt8: operand_bits_ = 8; break;
    case ArrayKind::kFp32: operand_bits_ = 32; break;
  }
  if (cfg.array == ArrayKind::kFp32) {
    output_bits_ = acc_register_bits_ = 32;
  } else {
    acc_register_bits_ = cfg.accumulator.bits;
    output_bits_ = (cfg.accumulator.bits + 7) / 8 * 8;
  }
  auto m = static_cast<std::uint64_t>(shape.m), n = static_cast<std::uint64_t>(shape.n),
       k = static_cast<std::uint64_t>(shape.k);
  a_whole_fits_ = packed_bytes(m * k, operand_bits_) <= cfg.sram_a_bytes / 2;
  b_whole_fits_ = packed_bytes(k * n, operand_bits_) <= cfg.sram_b_bytes / 2;
}

std::int64_t FoldPlan::outer_count() const {
  return cfg_.dataflow == Dataflow::kOs ? row_blocks_ : col_blocks_;
}

std::int64_t FoldPlan::inner_count() const {
  return cfg_.dataflow == Dataflow::kOs ? col_blocks_ : row_blocks_;
}

Fold FoldPlan::fold(std::int64_t index) const {
  const std::int64_t inner = inner_count();
  Fold f = fold_at(index / inner, index % inner);
  f.index = index;
  return f;
}

Fold FoldPlan::fold_at(std::int64_t outer, std::int64_t inner) const {
  Fold f;
  const bool os = cfg_.dataflow == Dataflow::kOs;
  f.index = outer * inner_count() + inner;
  if (os) {
    f.row_block = outer;
    f.col_block = inner;
  } else {
    f.row_block = inner;
    f.col_block = outer;
  }
  f.r = static_cast<int>(std::min<std::int64_t>(cfg_.rows, map_.sr - f.row_block * cfg_.rows));
  f.c = static_cast<int>(std::min<std::int64_t>(cfg_.cols, map_.sc - f.col_block * cfg_.cols));
  f.t = map_.t;
  const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
             t = static_cast<std::uint64_t>(f.t);
  const auto K = static_cast<std::uint64_t>(shape_.k);
  const int ob = operand_bits_;
  if (os) {
    std::uint64_t a_tile = packed_bytes(r * K, ob);
    f.load_a_bytes = (f.col_block == 0 || a_tile > cfg_.sram_a_bytes / 2) ? a_tile : 0;
    f.load_b_bytes = (!b_whole_fits_ || f.row_block == 0) ? packed_bytes(K * c, ob) : 0;
    f.store_c_bytes = packed_bytes(r * c, output_bits_);
    return f;
  }
  f.first_k = f.row_block == 0;
  f.last_k = f.row_block == row_blocks_ - 1;
  std::uint64_t stationary = packed_bytes(r * c, ob);
  std::uint64_t stream = packed_bytes(t * r, ob);
  bool stream_whole_fits = cfg_.dataflow == Dataflow::kWs ? a_whole_fits_ : b_whole_fits_;
  std::uint64_t stream_load = (!stream_whole_fits || f.col_block == 0) ? stream : 0;
  if (cfg_.dataflow == Dataflow::kWs) {
    f.load_a_bytes = stream_load;
    f.load_b_bytes = stationary;
  } else {
    f.load_a_bytes = stationary;
    f.load_b_bytes = stream_load;
  }
  std::uint64_t psums = packed_bytes(t * c, output_bits_);
  if (psums <= cfg_.sram_c_bytes / 2) {  // partial sums stay on chip until final
    f.store_c_bytes = f.last_k ? psums : 0;
  } else {  // partial sums go to DRAM after every fold and come back for the next K block
    f.store_c_bytes = psums;
    f.load_c_bytes = f.first_k ? 0 : psums;
  }
  return f;
}

std::int64_t fold_cycles(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return 2 * r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency + c + t - 2;
}

std::int64_t first_output_cycle(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency - 1;
}

std::uint64_t scalesim_cycles(Dataflow d, int rows, int cols, const GemmShape& s) {
  Mapping m = map_gemm(d, s);
  auto folds = static_cast<std::uint64_t>(ceil_div(m.sr, rows) * ceil_div(m.sc, cols));
  auto per_fold = static_cast<std::uint64_t>(
      (d == Dataflow::kOs ? rows : 2 * rows) + cols + m.t - 2);
  return checked_mul(folds, per_fold, "cycles.scalesim_compatible") - 1;
}

Bandwidth Bandwidth::from_double(double bytes_per_cycle) {
  // The shortest decimal that reads back as the same double (what the user wrote, for any
  // value given in decimal), as digits and a power of ten.
  const std::string dec = fmt::format("{}", bytes_per_cycle);
  if (!(bytes_per_cycle > 0) || !std::isfinite(bytes_per_cycle)) {
    throw InputError(fmt::format("dram.bandwidth: {} is not a positive finite number", dec));
  }
  // Parse "ddd.ddd" or "d.ddde[+-]xx".
  u128 digits = 0;
  int frac = 0, exp10 = 0;
  bool point = false;
  std::size_t i = 0;
  for (; i < dec.size() && dec[i] != 'e' && dec[i] != 'E'; ++i) {
    if (dec[i] == '.') {
      point = true;
      continue;
    }
    digits = digits * 10 + static_cast<unsigned>(dec[i] - '0');
    if (point) ++frac;
  }
  if (i < dec.size()) exp10 = std::stoi(dec.substr(i + 1));
  exp10 -= frac;
  u128 num = digits, den = 1;
  for (; exp10 > 0; --exp10) num *= 10;
  for (; exp10 < 0; ++exp10) den *= 10;
  while (num % 10 == 0 && den % 10 == 0) {
    num /= 10;
    den /= 10;
  }
  constexpr auto kMax = static_cast<u128>(~std::uint64_t{0});
  if (num > kMax || den > kMax) {
    throw InputError(fmt::format("dram.bandwidth: {} has too many digits (at most 19 after the point)", dec));
  }
  return Bandwidth{static_cast<std::uint64_t>(num), static_cast<std::uint64_t>(den)};
}

std::uint64_t transfer_cycles(std::uint64_t bytes, const Bandwidth& bw) {
  if (bytes == 0) return 0;
  const u128 n = static_cast<u128>(bytes) * bw.den;
  const u128 c = (n + bw.num - 1) / bw.num;
  if (c > static_cast<u128>(~std::uint64_t{0})) {
    throw InputError(fmt::format("dram transfer of {} bytes at {}/{} bytes/cycle: the cycle count exceeds "
                                 "2^64 - 1",
                                 bytes, bw.num, bw.den));
  }
  return static_cast<std::uint64_t>(c);
}

namespace {

// The DRAM timeline of a GEMM, relative quantities kept as absolute cycles.
struct Timeline {
  std::uint64_t prev_end = 0;   // end of the last fold (0 before the first)
  std::uint64_t ready = 0;      // completion of the current fold's loads
  std::uint64_t dram_free = 0;  // the channel is busy until here
  std::uint64_t stall = 0, compute = 0;

  // The state that decides every later step, relative to prev_end.
  std::pair<std::uint64_t, std::uint64_t> relative() const {
    return {ready > prev_end ? ready - prev_end : 0, dram_free > prev_end ? dram_free - prev_end : 0};
  }
};

class TimelineRunner {
 public:
  explicit TimelineRunner(const FoldPlan& plan)
      : plan_(plan), bw_(Bandwidth::from_double(plan.config().dram_bytes_per_cycle)) {}

  std::uint64_t issue(Timeline& tl, std::uint64_t at, std::uint64_t bytes) const {
    if (bytes == 0) return at;
    tl.dram_free = checked_add(std::max(at, tl.dram_free), transfer_cycles(bytes, bw_), "cycles");
    return tl.dram_free;
  }

  // Runs fold `cur` (its loads complete at tl.ready); `next` is the fold after it or null.
  void step(Timeline& tl, const Fold& cur, const Fold* next) const {
    const SimConfig& cfg = plan_.config();
    const std::uint64_t start = std::max(tl.prev_end, tl.ready);
    tl.stall += start - tl.prev_end;
    const auto len = static_cast<std::uint64_t>(fold_cycles(cfg.dataflow, cfg.mac_latency, cur.r, cur.c, cur.t));
    const std::uint64_t end = checked_add(start, len, "cycles");
    tl.compute += len;
    std::uint64_t ready = end;
    if (next != nullptr) ready = issue(tl, start, next->load_operand_bytes());
    issue(tl, end, cur.store_c_bytes);
    if (next != nullptr && next->load_c_bytes != 0) ready = issue(tl, end, next->load_c_bytes);
    tl.ready = ready;
    tl.prev_end = end;
  }

  // Runs `count` steps of the same (cur, next) pair. Once one step leaves the relative state
  // unchanged, every further step repeats it exactly (the timeline is invariant under a shift
  // in time), so the rest of the run is added in one multiplication.
  void run(Timeline& tl, const Fold& cur, const Fold* next, std::uint64_t count) const {
    for (std::uint64_t done = 0; done < count; ++done) {
      const auto before = tl.relative();
      const Timeline old = tl;
      step(tl, cur, next);
      if (tl.relative() == before && done + 1 < count) {
        const std::uint64_t rest = count - done - 1;
        shift(tl, old, rest);
        return;
      }
    }
  }

  // Repeats the change from `old` to `tl` `times` more times.
  static void shift(Timeline& tl, const Timeline& old, std::uint64_t times) {
    const std::uint64_t d_end = tl.prev_end - old.prev_end;
    const std::uint64_t add = checked_mul(d_end, times, "cycles");
    const auto rel = tl.relative();
    tl.prev_end = checked_add(tl.prev_end, add, "cycles");
    tl.ready = tl.prev_end + rel.first;
    tl.dram_free = tl.prev_end + rel.second;
    tl.stall = checked_add(tl.stall, checked_mul(tl.stall - old.stall, times, "cycles.stall"), "cycles.stall");
    tl.compute = checked_add(tl.compute, checked_mul(tl.compute - old.compute, times, "cycles.compute"),
                             "cycles.compute");
  }

  // Representative position of x in 0..n-1: first, last, or 1 for every position in between.
  static std::int64_t rep(std::int64_t x, std::int64_t n) { return (x == 0 || x == n - 1) ? x : 1; }

  // One pass of the inner loop at outer position o (folds (o, 0..I-1)).
  void inner_pass(Timeline& tl, std::int64_t o) const {
    const std::int64_t O = plan_.outer_count(), I = plan_.inner_count();
    const std::int64_t ro = rep(o, O);
    auto fold_and_next = [&](std::int64_t i, Fold& cur, Fold& nxt) -> const Fold* {
      cur = plan_.fold_at(ro, rep(i, I));
      if (i + 1 < I) {
        nxt = plan_.fold_at(ro, rep(i + 1, I));
        return &nxt;
      }
      if (o + 1 < O) {
        nxt = plan_.fold_at(rep(o + 1, O), 0);
        return &nxt;
      }
      return nullptr;
    };
    Fold cur, nxt;
    std::int64_t i = 0;
    // Position 0, then the run 1..I-3 of identical (middle, middle) steps, then the last two.
    step(tl, cur, fold_and_next(0, cur, nxt));
    i = 1;
    if (I >= 4) {
      const Fold* n = fold_and_next(1, cur, nxt);
      run(tl, cur, n, static_cast<std::uint64_t>(I - 3));
      i = I - 2;
    }
    for (; i < I; ++i) step(tl, cur, fold_and_next(i, cur, nxt));
  }

  GemmTiming evaluate() const {
    const std::int64_t O = plan_.outer_count();
    Timeline tl;
    tl.ready = issue(tl, 0, plan_.fold(0).load_bytes());
    inner_pass(tl, 0);
    std::int64_t o = 1;
    if (O >= 4) {  // outer passes 1..O-3 are identical: run them to a steady state
      const std::uint64_t count = static_cast<std::uint64_t>(O - 3);
      for (std::uint64_t done = 0; done < count; ++done) {
        const auto before = tl.relative();
        const Timeline old = tl;
        inner_pass(tl, 1);
        if (tl.relative() == before && done + 1 < count) {
          shift(tl, old, count - done - 1);
          break;
        }
      }
      o = O - 2;
    }
    for (; o < O; ++o) inner_pass(tl, o);
    return finish(tl);
  }

  GemmTiming finish(const Timeline& tl) const {
    GemmTiming g;
    g.folds = static_cast<std::uint64_t>(plan_.count());
    g.compute = tl.compute;
    g.total = std::max(tl.prev_end, tl.dram_free);
    g.stall = tl.stall + (g.total - tl.prev_end);
    return g;
  }

 private:
  const FoldPlan& plan_;
  Bandwidth bw_;
};

}  // namespace

GemmTiming analytic_timing(const FoldPlan& plan) { return TimelineRunner(plan).evaluate(); }

GemmTiming analytic_timing_per_fold(const FoldPlan& plan) {
  TimelineRunner runner(plan);
  Timeline tl;
  Fold cur = plan.fold(0);
  tl.ready = runner.issue(tl, 0, cur.load_bytes());
  for (std::int64_t i = 0; i < plan.count(); ++i) {
    const bool has_next = i + 1 < plan.count();
    Fold next = has_next ? plan.fold(i + 1) : Fold{};
    runner.step(tl, cur, has_next ? &next : nullptr);
    cur = next;
  }
  return runner.finish(tl);
}

void arithmetic_events(const SimConfig& cfg, std::uint64_t slots, std::uint64_t zero, EventCounts& e,
                       std::uint64_t& acc_writes) {
  e.products_zero = zero;
  const std::uint64_t executed = cfg.zero_gating ? slots - zero : slots;
  switch (cfg.array) {
    case ArrayKind::kMfMac: e.mfmac_xor = e.mfmac_exp_add = e.mfmac_decode = e.mfmac_acc_add = executed; break;
    case ArrayKind::kInt8: e.int8_mul = e.int8_add = executed; break;
    case ArrayKind::kFp32:
      if (cfg.fp32_fma) {
        e.fp32_fma = executed;
      } else {
        e.fp32_mul = e.fp32_add = executed;
      }
      break;
  }
  // OS accumulators are written by every executed product (WS/IS partial-sum registers are
  // written every slot: the partial sum moves down the column whether or not it changed).
  if (cfg.dataflow == Dataflow::kOs) acc_writes = checked_add(acc_writes, executed, "reg_acc_write_bits");
}

EventCounts analytic_events(const FoldPlan& plan, const GemmTiming& timing,
                            std::uint64_t zero_products) {
  const SimConfig& cfg = plan.config();
  const std::uint64_t ob = static_cast<std::uint64_t>(plan.operand_bits());
  const std::uint64_t outb = static_cast<std::uint64_t>(plan.output_bits());
  const std::uint64_t accb = static_cast<std::uint64_t>(plan.acc_register_bits());
  const bool os = cfg.dataflow == Dataflow::kOs;
  EventCounts e;
  std::uint64_t operand_writes = 0, acc_writes = 0;
  // Every distinct fold once, times the number of folds like it. Per-fold figures are far
  // below 2^64 (r, c <= 2^16, t < 2^31); the sums are checked.
  const std::int64_t O = plan.outer_count(), I = plan.inner_count();
  auto classes = [](std::int64_t n) {
    std::vector<std::pair<std::int64_t, std::uint64_t>> v{{0, 1}};  // (representative, multiplicity)
    if (n >= 3) v.emplace_back(1, static_cast<std::uint64_t>(n - 2));
    if (n >= 2) v.emplace_back(n - 1, 1);
    return v;
  };
  EventCounts per;  // one fold's counts, scaled below
  for (const auto& [ro, mo] : classes(O)) {
    for (const auto& [ri, mi] : classes(I)) {
      const Fold f = plan.fold_at(ro, ri);
      const std::uint64_t mult = mo * mi;  // <= folds < 2^62
      const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
                 t = static_cast<std::uint64_t>(f.t);
      const std::uint64_t slots = r * c * t;
      EventCounts x;
      std::uint64_t ow = 0, aw = 0;
      x.mac_slots = slots;
      if (os) {
        ow = 2 * slots;
        aw = c * r * (r - 1) / 2;  // output drain shifts (accumulate writes added below)
        x.sram_a_read_bits = r * t * ob;
        x.sram_b_read_bits = c * t * ob;
        x.sram_c_write_bits = r * c * outb;
      } else {
        ow = c * r * (r + 1) / 2 + slots;  // stationary preload, streamed operand
        aw = slots;                        // partial sums
        const std::uint64_t stream_bits = r * t * ob, stationary_bits = r * c * ob;
        (cfg.dataflow == Dataflow::kWs ? x.sram_a_read_bits : x.sram_b_read_bits) = stream_bits;
        (cfg.dataflow == Dataflow::kWs ? x.sram_b_read_bits : x.sram_a_read_bits) = stationary_bits;
        x.sram_c_write_bits = t * c * outb;
        if (!f.first_k) x.sram_c_read_bits = t * c * outb;
      }
      x.sram_a_write_bits = f.load_a_bytes * 8;
      x.sram_b_write_bits = f.load_b_bytes * 8;
      x.sram_c_write_bits += f.load_c_bytes * 8;
      x.sram_c_read_bits += f.store_c_bytes * 8;
      x.dram_read_bytes = f.load_bytes();
      x.dram_write_bytes = f.store_c_bytes;
      per = x.scaled(mult);
      e += per;
      operand_writes = checked_add(operand_writes, checked_mul(ow, mult, "reg_operand_write_bits"),
                                   "reg_operand_write_bits");
      acc_writes = checked_add(acc_writes, checked_mul(aw, mult, "reg_acc_write_bits"), "reg_acc_write_bits");
    }
  }
  arithmetic_events(cfg, e.mac_slots, zero_products, e, acc_writes);
  e.reg_operand_write_bits = checked_mul(operand_writes, ob, "reg_operand_write_bits");
  e.reg_acc_write_bits = checked_mul(acc_writes, accb, "reg_acc_write_bits");
  e.pe_cycles_busy = e.mac_slots;
  const std::uint64_t pe_cycles =
      checked_mul(checked_mul(static_cast<std::uint64_t>(cfg.rows), static_cast<std::uint64_t>(cfg.cols),
                              "pe_cycles_idle"),
                  timing.total, "pe_cycles_idle");
  e.pe_cycles_idle = pe_cycles - e.mac_slots;
  return e;
}

}  // namespace mfsim
