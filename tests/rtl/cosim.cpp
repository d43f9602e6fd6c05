// Co-simulation of the RTL twin (sim/rtl/) against mfsim's SystemC array (docs/rtl.md).
//
// One binary per PE type and array structure (OS; WS/IS share the stationary array), built
// from one Verilated model: RTL_HEADER, RTL_CLASS, RTL_PE, RTL_OS (1: mfsim_array_os, 0:
// mfsim_array_stat), RTL_R, RTL_C, RTL_OW, RTL_AW, RTL_FMA come from tests/rtl/CMakeLists.txt.
// Each test case runs GEMMs fold by fold on the RTL array (the folds of sim/fold_model.h's
// FoldPlan, the operands served from the GEMM's matrices as an SRAM would), and requires:
//  - every output bit-identical to the SystemC array (simulate_value) and to the reference GEMM
//    (models/gemm_ref.h);
//  - every fold's cycles (start to the cycle its last result leaves) equal to the closed form
//    (fold_length) and to the SystemC array's measured fold length, and every result leaving
//    in the cycle the schedule of docs/cycle-semantics.md gives it;
//  - the RTL's saturation flag raised exactly when the C++ accumulators saturated.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include RTL_HEADER
#include "verilated.h"

#include "models/apot.h"
#include "models/gemm_ref.h"
#include "models/minifloat.h"
#include "sim/array_sim.h"
#include "sim/fold_model.h"
#include "sim/pe_type.h"
#include "sim/replay.h"
#include "traces/trace_reader.h"

using namespace mfsim;

namespace {

using Model = RTL_CLASS;
constexpr bool kOs = RTL_OS != 0;
constexpr int kR = RTL_R, kC = RTL_C, kOw = RTL_OW, kAw = RTL_AW;
constexpr bool kFma = RTL_FMA != 0;
const std::string kPe = RTL_PE;
const bool kFloat = kPe == "fp32" || kPe == "bf16" || kPe == "fp8";

// Port access for Verilator's port types: integers up to 64 bits, VlWide above.
template <class T>
void put(T& port, int lsb, int w, std::uint64_t v) {
  const std::uint64_t mask = (w >= 64 ? ~0ull : (1ull << w) - 1) << lsb;
  port = static_cast<T>((static_cast<std::uint64_t>(port) & ~mask) | ((v << lsb) & mask));
}
template <std::size_t N>
void put(VlWide<N>& port, int lsb, int w, std::uint64_t v) {
  for (int b = 0; b < w; ++b) {
    const int bit = lsb + b;
    const EData m = EData{1} << (bit % 32);
    if ((v >> b) & 1) port[bit / 32] |= m; else port[bit / 32] &= ~m;
  }
}
template <class T>
std::uint64_t get(const T& port, int lsb, int w) {
  const std::uint64_t v = static_cast<std::uint64_t>(port) >> lsb;
  return w >= 64 ? v : v & ((1ull << w) - 1);
}
template <std::size_t N>
std::uint64_t get(const VlWide<N>& port, int lsb, int w) {
  std::uint64_t v = 0;
  for (int b = 0; b < w; ++b) v |= static_cast<std::uint64_t>((port[(lsb + b) / 32] >> ((lsb + b) % 32)) & 1) << b;
  return v;
}

std::uint32_t f32_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// A GEMM for the array: operands in the PE type's register form (GemmOperands), and for FP8 the
// format of each operand (E4M3 or E5M2).
struct Case {
  GemmShape shape;
  GemmOperands ops;
  NumFormat a_fmt = NumFormat::kFp8E4M3, b_fmt = NumFormat::kFp8E4M3;
};

// The RTL register code of operand value index `i` of A (is_a) or B.
std::uint64_t encode(const Case& g, bool is_a, std::size_t i) {
  if (kPe == "mfmac") return (is_a ? g.ops.a_pot4 : g.ops.b_pot4)[i] & 0xF;
  if (kPe == "shift") {  // the shift PE's tagged register: {code?, 8 bits}
    const std::vector<Pot4Code>& codes = is_a ? g.ops.a_pot4 : g.ops.b_pot4;
    if (!codes.empty()) return 0x100u | (codes[i] & 0xFu);
    return static_cast<std::uint64_t>((is_a ? g.ops.a_int : g.ops.b_int)[i]) & 0xFFu;
  }
  if (kPe == "shift2") {  // {tag, 8 bits}: an integer, or a code {sign, hi, lo} (PoT4: lo = 0)
    const std::vector<Pot4Code>& codes = is_a ? g.ops.a_pot4 : g.ops.b_pot4;
    if (!codes.empty()) {
      const Pot4Code c = codes[i];
      return 0x100u | (pot4_negative(c) ? 0x40u : 0u) | (static_cast<std::uint64_t>(pot4_mag(c)) << 3);
    }
    const int v = (is_a ? g.ops.a_int : g.ops.b_int)[i];
    if (is_a ? g.ops.a_apot : g.ops.b_apot) {
      const ApotTerms t = apot_terms(v);
      return 0x100u | (v < 0 ? 0x40u : 0u) | (static_cast<std::uint64_t>(t.hi) << 3) | static_cast<std::uint64_t>(t.lo);
    }
    return static_cast<std::uint64_t>(v) & 0xFFu;
  }
  if (kPe == "int8" || kPe == "int4") {
    return static_cast<std::uint64_t>((is_a ? g.ops.a_int : g.ops.b_int)[i]) & ((1u << kOw) - 1);
  }
  const float v = (is_a ? g.ops.a_f32 : g.ops.b_f32)[i];
  if (kPe == "fp32") return f32_bits(v);
  if (kPe == "bf16") return f32_bits(v) >> 16;
  std::uint8_t code = 0;
  bool ok = fp8_encode_exact(is_a ? g.a_fmt : g.b_fmt, v, &code);
  REQUIRE(ok);  // the test's operands are FP8 values of the operand's format
  return code;
}

struct RtlResult {
  std::vector<std::uint64_t> c;       // M x N accumulators, AW bits each
  std::vector<std::int64_t> fold_cycles;
  std::vector<Fold> folds;
  std::int64_t total_cycles = 0;      // from the first start to the last done, inclusive
  bool saturated = false;
};

// Runs the GEMM on the RTL array, fold by fold (back to back), and checks each result's cycle.
RtlResult run_rtl(const SimConfig& cfg, const Case& g) {
  const GemmShape& s = g.shape;
  const std::int64_t M = s.m, N = s.n, K = s.k;
  FoldPlan plan(cfg, s);
  std::vector<Fold> folds;
  LoopIndex idx{};
  do folds.push_back(plan.fold_at(idx)); while (plan.advance(idx));

  RtlResult res;
  res.folds = folds;
  res.c.assign(static_cast<std::size_t>(M * N), 0);
  const int L = cfg.mac_latency;
  const bool fa = g.a_fmt == NumFormat::kFp8E5M2, fb = g.b_fmt == NumFormat::kFp8E5M2;
  Model m;
  auto configure = [&](const Fold& f) {
    m.start = 1;
    m.cfg_r = static_cast<std::uint8_t>(f.r);
    m.cfg_c = static_cast<std::uint8_t>(f.c);
    m.cfg_t = static_cast<std::uint32_t>(f.t);
    m.cfg_l = static_cast<std::uint8_t>(L);
    m.cfg_psum = f.first_k ? 0 : 1;
#if RTL_OS
    m.a_fmt = fa;
    m.b_fmt = fb;
#else
    m.west_fmt = cfg.dataflow == Dataflow::kWs ? fa : fb;
    m.top_fmt = cfg.dataflow == Dataflow::kWs ? fb : fa;
#endif
  };
  // C index of result (row or stream position p, column j) of fold f.
  auto c_index = [&](const Fold& f, std::int64_t p, int j) -> std::size_t {
    switch (cfg.dataflow) {
      case Dataflow::kOs: return static_cast<std::size_t>((f.sr0 + p) * N + f.sc0 + j);
      case Dataflow::kWs: return static_cast<std::size_t>((f.t0 + p) * N + f.sc0 + j);
      case Dataflow::kIs: return static_cast<std::size_t>((f.sc0 + j) * N + f.t0 + p);
    }
    return 0;
  };

  configure(folds[0]);
  m.clk = 0;
  m.eval();
  m.clk = 1;
  m.eval();  // the start edge (not a cycle of the fold)
  m.start = 0;
  res.total_cycles = 1;
  for (std::size_t fi = 0; fi < folds.size(); ++fi) {
    const Fold& f = folds[fi];
    const std::int64_t expect = fold_length(cfg, f);
    std::vector<std::int64_t> emitted(static_cast<std::size_t>(f.c), 0);
    std::int64_t cyc = 0;
    bool done = false;
    while (!done) {
      INFO("fold " << fi << " r=" << f.r << " c=" << f.c << " t=" << f.t << " cycle " << cyc);
      REQUIRE(cyc <= 2 * expect + 16);  // a fold that never ends
      m.clk = 0;
      m.eval();
      // Serve the array's read requests from the operand matrices (and partial sums from C).
#if RTL_OS
      if (m.feed_valid) {
        const std::int64_t k = f.t0 + m.feed_idx;
        for (int i = 0; i < f.r; ++i) put(m.west_data, i * kOw, kOw, encode(g, true, static_cast<std::size_t>((f.sr0 + i) * K + k)));
        for (int j = 0; j < f.c; ++j) put(m.north_data, j * kOw, kOw, encode(g, false, static_cast<std::size_t>(k * N + f.sc0 + j)));
      }
      if (m.psum_valid) {
        for (int j = 0; j < f.c; ++j) put(m.psum_data, j * kAw, kAw, res.c[c_index(f, m.psum_idx, j)]);
      }
#else
      const bool ws = cfg.dataflow == Dataflow::kWs;
      if (m.stat_valid) {
        const std::int64_t i = m.stat_row;
        for (int j = 0; j < f.c; ++j) {
          put(m.top_data, j * kOw, kOw,
              ws ? encode(g, false, static_cast<std::size_t>((f.sr0 + i) * N + f.sc0 + j))
                 : encode(g, true, static_cast<std::size_t>((f.sc0 + j) * K + f.sr0 + i)));
        }
      }
      if (m.feed_valid) {
        const std::int64_t p = m.feed_idx;
        for (int i = 0; i < f.r; ++i) {
          put(m.west_data, i * kOw, kOw,
              ws ? encode(g, true, static_cast<std::size_t>((f.t0 + p) * K + f.sr0 + i))
                 : encode(g, false, static_cast<std::size_t>((f.sr0 + i) * N + f.t0 + p)));
        }
        if (!f.first_k) {
          for (int j = 0; j < f.c; ++j) put(m.psum_data, j * kAw, kAw, res.c[c_index(f, p, j)]);
        }
      }
#endif
      m.eval();
      // Collect the results leaving the array and check the cycle each one leaves in.
      for (int j = 0; j < kC; ++j) {
        if (!((m.out_valid >> j) & 1)) continue;
        REQUIRE(j < f.c);
        std::int64_t p, want;
        if (kOs) {
          p = f.r - 1 - emitted[static_cast<std::size_t>(j)];
          want = (f.first_k ? 0 : f.r) + f.r + f.c - 2 + f.t * L + (f.r - 1 - p);
          REQUIRE(p >= 0);
        } else {
          p = emitted[static_cast<std::size_t>(j)];
          want = f.r + static_cast<std::int64_t>(f.r) * L + j + p - 1;
          REQUIRE(p < f.t);
        }
        REQUIRE(cyc == want);
        res.c[c_index(f, p, j)] = get(m.out_data, j * kAw, kAw);
        ++emitted[static_cast<std::size_t>(j)];
      }
      done = m.done;
      if (done) {
        for (int j = 0; j < f.c; ++j) REQUIRE(emitted[static_cast<std::size_t>(j)] == (kOs ? f.r : f.t));
        res.saturated = res.saturated || m.sat_any;
        res.fold_cycles.push_back(cyc + 1);
        if (fi + 1 < folds.size()) {
          configure(folds[fi + 1]);  // back to back: the next fold starts at this edge
          m.eval();
        }
      }
      m.clk = 1;
      m.eval();
      m.start = 0;
      ++cyc;
      ++res.total_cycles;
    }
  }
  return res;
}

std::int64_t sign_extend(std::uint64_t v, int bits) {
  const std::uint64_t sign = 1ull << (bits - 1);
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

SimConfig make_config(Dataflow d, int latency) {
  SimConfig cfg = ParamSet().build();
  cfg.array = &pe_type(kPe);
  cfg.rows = kR;
  cfg.cols = kC;
  cfg.dataflow = d;
  cfg.mac_latency = latency;
  cfg.accumulator.bits = kFloat ? 32 : kAw;
  cfg.accumulator.overflow = OverflowPolicy::kSaturate;
  cfg.fp32_fma = kFma;
  cfg.overlap = false;
  cfg.map_policy = MapPolicy::kFixed;
  return cfg;
}

// Float outputs seen by the checks, by class: the extreme cases must reach each of them.
struct FloatClasses {
  int inf = 0, nan = 0, subnormal = 0, zero = 0;
};
FloatClasses g_seen;

// Runs one GEMM on the RTL and on the SystemC array, computes the reference, and requires
// them bit-identical and every fold's cycles equal to the closed form.
RtlResult check_case(const SimConfig& cfg, const Case& g) {
  const GemmShape& s = g.shape;
  INFO("PE " << kPe << " " << to_string(cfg.dataflow) << " " << kR << "x" << kC << " L=" << cfg.mac_latency
             << " GEMM " << s.m << "x" << s.n << "x" << s.k
             << (cfg.map_pinned ? " tiles " + to_string(cfg.map_tiles) : std::string(" fixed mapping")));
  RtlResult rtl = run_rtl(cfg, g);

  ValueGemmResult sc;
  GemmJob job;
  job.shape = s;
  job.load = [&] { return g.ops; };
  simulate_value(cfg, {job}, [&](std::size_t, ValueGemmResult& r) { sc = std::move(r); });
  REQUIRE(sc.overflow.empty());

  // Cycles: each fold against the closed form and the SystemC array's measured length.
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < rtl.folds.size(); ++i) {
    INFO("fold " << i);
    REQUIRE(rtl.fold_cycles[i] == fold_length(cfg, rtl.folds[i]));
    if (i < sc.fold_cycles.size()) REQUIRE(rtl.fold_cycles[i] == sc.fold_cycles[i]);
    sum += rtl.fold_cycles[i];
  }
  REQUIRE(rtl.total_cycles == sum + 1);
  REQUIRE(rtl.folds.size() == FoldPlan(cfg, s).count());

  // Values: RTL == SystemC == reference, bit for bit.
  const std::size_t n = static_cast<std::size_t>(s.m * s.n);
  if (kFloat) {
    std::vector<float> ref(n);
    gemm_fp32_ref(s, g.ops.a_f32.data(), g.ops.b_f32.data(), kPe == "fp32" && kFma, ref.data());
    REQUIRE(sc.out_f32.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("output " << i / static_cast<std::size_t>(s.n) << "," << i % static_cast<std::size_t>(s.n));
      REQUIRE(static_cast<std::uint32_t>(rtl.c[i]) == f32_bits(sc.out_f32[i]));
      REQUIRE(f32_bits(ref[i]) == f32_bits(sc.out_f32[i]));
      const std::uint32_t u = f32_bits(ref[i]);
      if ((u & 0x7F800000u) == 0x7F800000u) ++((u & 0x7FFFFFu) != 0 ? g_seen.nan : g_seen.inf);
      else if ((u & 0x7F800000u) == 0) ++((u & 0x7FFFFFu) != 0 ? g_seen.subnormal : g_seen.zero);
    }
  } else {
    std::vector<std::int64_t> ref(n);
    GemmStats st;
    if (kPe == "mfmac") {
      st = gemm_pot4_ref(s, g.ops.a_pot4.data(), g.ops.b_pot4.data(), cfg.accumulator, ref.data());
    } else {
      // Integers as they are (two-term values too); a PoT4 code (the shift PEs') as its integer
      // image +-2^(m-1): the shift of x by m-1 is x times that image exactly.
      auto ints = [](const std::vector<Pot4Code>& codes, const std::vector<int>& v) {
        std::vector<std::int8_t> out;
        if (!codes.empty()) {
          for (Pot4Code c : codes) out.push_back(static_cast<std::int8_t>(pot4_int(c)));
        } else {
          out.assign(v.begin(), v.end());
        }
        return out;
      };
      const std::vector<std::int8_t> a = ints(g.ops.a_pot4, g.ops.a_int), b = ints(g.ops.b_pot4, g.ops.b_int);
      st = gemm_int8_ref(s, a.data(), b.data(), cfg.accumulator, ref.data());
    }
    REQUIRE(sc.out_int.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("output " << i / static_cast<std::size_t>(s.n) << "," << i % static_cast<std::size_t>(s.n));
      REQUIRE(sign_extend(rtl.c[i], kAw) == sc.out_int[i]);
      REQUIRE(ref[i] == sc.out_int[i]);
    }
    REQUIRE(rtl.saturated == (sc.saturations > 0));
    REQUIRE((st.saturations > 0) == (sc.saturations > 0));
  }
  return rtl;
}

std::vector<Dataflow> dataflows() {
  if (kOs) return {Dataflow::kOs};
  return {Dataflow::kWs, Dataflow::kIs};
}

// Random operands of the PE type. `extreme`: floats over the whole binary32 (BF16) range,
// including subnormal operands, products that overflow to infinity and underflow to subnormals
// or zero; integers: large same-signed operands that saturate the accumulators.
Case random_case(std::mt19937_64& rng, GemmShape s, bool extreme) {
  Case g;
  g.shape = s;
  const auto na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  if (kPe == "mfmac") {
    auto code = [&](std::size_t) -> Pot4Code {
      if (extreme) return static_cast<Pot4Code>(uni(6, 7));
      return static_cast<Pot4Code>(uni(0, 15));
    };
    for (std::size_t i = 0; i < na; ++i) g.ops.a_pot4.push_back(code(i));
    for (std::size_t i = 0; i < nb; ++i) g.ops.b_pot4.push_back(code(i));
  } else if (kPe == "shift") {
    // One operand PoT4 codes, the other integers (INT8, or PoT4 integer images as the replay
    // gives a PoT4 x PoT4 record's A), in either orientation.
    auto code = [&]() { return static_cast<Pot4Code>(extreme ? uni(6, 7) : uni(0, 15)); };
    auto val = [&]() { return extreme ? uni(100, 127) : uni(0, 9) == 0 ? 0 : uni(-127, 127); };
    const bool codes_in_a = uni(0, 1) == 1, images = !codes_in_a && uni(0, 2) == 0;
    for (std::size_t i = 0; i < na; ++i) {
      if (codes_in_a) g.ops.a_pot4.push_back(code());
      else g.ops.a_int.push_back(images ? pot4_int(code()) : val());
    }
    for (std::size_t i = 0; i < nb; ++i) {
      if (codes_in_a) g.ops.b_int.push_back(val());
      else g.ops.b_pot4.push_back(code());
    }
  } else if (kPe == "shift2") {
    // One operand codes (PoT4 codes, or two-term values taken as codes), the other integers
    // (INT8 values, two-term values, or PoT4 integer images), in either orientation.
    std::vector<int> levels;
    for (int v = -kApotMax; v <= kApotMax; ++v) {
      if (apot_level(v) && (!extreme || v >= 64)) levels.push_back(v);
    }
    auto level = [&]() { return levels[static_cast<std::size_t>(uni(0, static_cast<int>(levels.size()) - 1))]; };
    auto code = [&]() { return static_cast<Pot4Code>(extreme ? uni(6, 7) : uni(0, 15)); };
    const bool codes_in_a = uni(0, 1) == 1, apot_codes = uni(0, 1) == 1;
    const int int_kind = uni(0, 2);  // 0 INT8, 1 two-term, 2 PoT4 images
    auto val = [&]() {
      if (int_kind == 1) return level();
      if (int_kind == 2) return pot4_int(code());
      return extreme ? uni(100, 127) : uni(0, 9) == 0 ? 0 : uni(-127, 127);
    };
    auto fill = [&](bool is_code, std::size_t n, std::vector<Pot4Code>& codes, std::vector<int>& ints, bool& apot) {
      apot = is_code && apot_codes;
      for (std::size_t i = 0; i < n; ++i) {
        if (is_code && !apot_codes) codes.push_back(code());
        else ints.push_back(is_code ? level() : val());
      }
    };
    fill(codes_in_a, na, g.ops.a_pot4, g.ops.a_int, g.ops.a_apot);
    fill(!codes_in_a, nb, g.ops.b_pot4, g.ops.b_int, g.ops.b_apot);
  } else if (kPe == "int8" || kPe == "int4") {
    const int q = kPe == "int8" ? 127 : 7;
    auto val = [&]() {
      if (extreme) return uni(q - q / 5, q);
      return uni(0, 9) == 0 ? 0 : uni(-q, q);
    };
    for (std::size_t i = 0; i < na; ++i) g.ops.a_int.push_back(val());
    for (std::size_t i = 0; i < nb; ++i) g.ops.b_int.push_back(val());
  } else if (kPe == "fp32" || kPe == "bf16") {
    auto val = [&]() {
      if (uni(0, 9) == 0) return uni(0, 1) ? -0.0f : 0.0f;
      std::uint32_t sign = static_cast<std::uint32_t>(uni(0, 1)) << 31;
      std::uint32_t e = extreme ? static_cast<std::uint32_t>(uni(0, 254)) : static_cast<std::uint32_t>(uni(117, 137));
      std::uint32_t man = static_cast<std::uint32_t>(rng()) & 0x7FFFFF;
      std::uint32_t u = sign | e << 23 | man;
      if (kPe == "bf16") u &= 0xFFFF0000u;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    };
    for (std::size_t i = 0; i < na; ++i) g.ops.a_f32.push_back(val());
    for (std::size_t i = 0; i < nb; ++i) g.ops.b_f32.push_back(val());
  } else {  // fp8: each operand E4M3 or E5M2, every finite code
    g.a_fmt = uni(0, 1) ? NumFormat::kFp8E5M2 : NumFormat::kFp8E4M3;
    g.b_fmt = uni(0, 1) ? NumFormat::kFp8E5M2 : NumFormat::kFp8E4M3;
    auto val = [&](NumFormat f) {
      for (;;) {
        auto code = static_cast<std::uint8_t>(uni(0, 255));
        if (!fp8_is_nan(f, code)) return fp8_decode(f, code);
      }
    };
    for (std::size_t i = 0; i < na; ++i) g.ops.a_f32.push_back(val(g.a_fmt));
    for (std::size_t i = 0; i < nb; ++i) g.ops.b_f32.push_back(val(g.b_fmt));
  }
  return g;
}

const std::vector<GemmShape> kShapes = {
    {kR, kC, 8}, {7, 11, 9}, {3, 2, 17}, {9, 6, 5}, {1, 1, 1}, {13, 7, 33}, {kR + 1, 2 * kC + 1, kR + 2}};

void random_gemms(int latency, bool tiled, bool extreme, std::uint64_t seed) {
  for (Dataflow d : dataflows()) {
    std::mt19937_64 rng(seed);
    INFO("seed " << seed);
    for (const GemmShape& s : kShapes) {
      SimConfig cfg = make_config(d, latency);
      if (tiled) {  // K in tiles of 3: OS folds preload partial sums, WS/IS K blocks re-enter them
        cfg.map_policy = MapPolicy::kSearch;
        cfg.map_pinned = true;
        cfg.map_tiles = TileMapping{s.m, s.n, 3, {'m', 'n', 'k'}, true};
      }
      check_case(cfg, random_case(rng, s, extreme));
    }
  }
}

}  // namespace

TEST_CASE("random GEMMs of several shapes, L = 1", "[rtl]") { random_gemms(1, false, false, 11); }

TEST_CASE("random GEMMs, L = 3, K tiles of 3 (partial sums re-enter)", "[rtl]") { random_gemms(3, true, false, 12); }

TEST_CASE("extreme operands: whole float range, saturating accumulators", "[rtl]") {
  if (kFloat) {
    g_seen = {};
    random_gemms(1, false, true, 13);
    random_gemms(2, true, true, 14);
    // The cases reach infinities, subnormal results or zeros, and with a separate multiply NaNs
    // (an overflowed product meeting an opposite infinity; a fused multiply-add of finite
    // operands cannot make one). FP8 operands cover every finite code of both formats instead:
    // their products lie far inside binary32's range.
    if (kPe != "fp8") {
      CHECK(g_seen.subnormal + g_seen.zero > 0);
      CHECK(g_seen.inf > 0);
      CHECK((g_seen.nan > 0) == !kFma);
    }
    return;
  }
  // Long K with large same-signed operands: the AW-bit accumulators clamp.
  const std::int64_t k = kPe == "mfmac" ? 2600 : kPe == "int8" ? 700 : kPe == "shift" || kPe == "shift2" ? 1200 : 1000;
  for (Dataflow d : dataflows()) {
    std::mt19937_64 rng(15);
    SimConfig cfg = make_config(d, 1);
    Case g = random_case(rng, GemmShape{kR + 1, kC - 1, k}, true);
    check_case(cfg, g);
  }
}

namespace {

// Co-simulates every record of a trace that the PE type's registers hold, with its operands as
// the replay gives them to the SystemC array, in every dataflow of this binary; returns how many.
int cosim_trace(const std::string& path) {
  TraceReader reader(path);
  const PeType& pe = pe_type(kPe);
  int ran = 0;
  for (std::size_t i = 0; i < reader.trace().records.size(); ++i) {
    const TraceRecord& rec = reader.trace().records[i];
    if (!rec.has_payload || !array_represents(pe, rec)) continue;
    RecordPayload p = reader.read_payload(i);
    Case g;
    g.shape = rec.shape;
    g.ops = to_array_operands(pe, rec, p);
    if (kPe == "fp8") {  // integer images are E4M3 values here (|v| <= 64)
      g.a_fmt = is_float_format(rec.a.format) ? rec.a.format : NumFormat::kFp8E4M3;
      g.b_fmt = is_float_format(rec.b.format) ? rec.b.format : NumFormat::kFp8E4M3;
    }
    INFO(path << " record " << i << " (" << rec.layer << " " << to_string(rec.phase) << ")");
    for (Dataflow d : dataflows()) {
      const RtlResult r = check_case(make_config(d, 1), g);
      // The record's own expected accumulators (its integer records), where the array has integer
      // accumulators and none saturated at the tier's width: every integer array computes them.
      if (pe.integer_acc && !p.expected_acc.empty() && !r.saturated) {
        REQUIRE(p.expected_acc.size() == r.c.size());
        for (std::size_t e = 0; e < p.expected_acc.size(); ++e) REQUIRE(sign_extend(r.c[e], kAw) == p.expected_acc[e]);
      }
    }
    ++ran;
  }
  return ran;
}

}  // namespace

// The records of the shipped example trace that the PE type's registers hold (mlp-tiny: five
// PoT4 GEMMs of an MLP training step, an INT8 and an FP32 GEMM).
TEST_CASE("example trace records (traces/examples/mlp-tiny.json)", "[rtl]") {
  const int ran = cosim_trace(std::string(MFSIM_SOURCE_DIR) + "/traces/examples/mlp-tiny.json");
  if (kPe == "int4") {
    REQUIRE(ran == 0);  // mlp-tiny has no INT4 record; the random cases and the INT4 step cover INT4
  } else {
    REQUIRE(ran > 0);
  }
}

// Every GEMM of real training steps traced by the functional core (tests/rtl/trace_steps.sh: a
// small CNN's first step in each arithmetic and policy). Each PE type runs the steps' records it
// holds: at least its own arithmetic's whole step.
TEST_CASE("traced training steps of the functional core (tests/rtl/trace_steps.sh)", "[rtl]") {
  const std::string dir = RTL_STEPS;
  int total = 0;
  for (const char* step : {"strict", "int8act", "apot", "int8", "int4", "fp32", "bf16", "fp8"}) {
    const int ran = cosim_trace(dir + "/" + step + ".json");
    total += ran;
    const std::string own = kPe == "mfmac" ? "strict" : kPe == "shift" ? "int8act" : kPe == "shift2" ? "apot" : kPe;
    if (own == step) {
      INFO("step " << step);
      REQUIRE(ran == static_cast<int>(TraceReader(dir + "/" + step + ".json").trace().records.size()));
    }
  }
  REQUIRE(total > 0);
}

// The co-simulation speed benchmark (docs/performance.md), hidden from the test run: one GEMM
// (MFSIM_RTL_BENCH_MNK, default 64x64x256) on the RTL array and on the SystemC array in value
// mode, OS or the stationary dataflow of this binary, timed; prints PE-updates per second of
// each (R x C PEs x the array's cycles, per wall-clock second). Run:
//   build/tests/rtl/test_rtl_mfmac_os "[.bench]"
TEST_CASE("co-simulation speed", "[.bench]") {
  int m = 64, n = 64, k = 256;
  if (const char* e = std::getenv("MFSIM_RTL_BENCH_MNK")) REQUIRE(std::sscanf(e, "%dx%dx%d", &m, &n, &k) == 3);
  std::mt19937_64 rng(5);
  const Case g = random_case(rng, GemmShape{m, n, k}, false);
  const SimConfig cfg = make_config(kOs ? Dataflow::kOs : Dataflow::kWs, 1);
  auto t0 = std::chrono::steady_clock::now();
  const RtlResult rtl = run_rtl(cfg, g);
  const double rtl_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ValueGemmResult sc;
  GemmJob job;
  job.shape = g.shape;
  job.load = [&] { return g.ops; };
  t0 = std::chrono::steady_clock::now();
  simulate_value(cfg, {job}, [&](std::size_t, ValueGemmResult& r) { sc = std::move(r); });
  const double sc_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double updates = static_cast<double>(kR) * kC * static_cast<double>(rtl.total_cycles);
  std::printf("%s %s %dx%d, GEMM %dx%dx%d: %lld cycles; RTL %.3f s (%.3g PE-updates/s), SystemC value mode %.3f s "
              "(%.3g PE-updates/s), ratio %.2f\n",
              kPe.c_str(), kOs ? "os" : "ws", kR, kC, m, n, k, static_cast<long long>(rtl.total_cycles), rtl_s,
              updates / rtl_s, sc_s, updates / sc_s, sc_s / rtl_s);
  CHECK(rtl.total_cycles > 0);
}
