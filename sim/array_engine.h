// The array engine: the register-level systolic array (sim/array_core.h) with one PE
// arithmetic policy (sim/pe_policy.h), its operand matrices and output buffer, behind a
// type-erased interface the SystemC model (sim/array_sim.cpp) clocks. Plain C++ (no SystemC):
// a PE type (sim/pe/*.cpp) makes its engine with make_array_engine<Policy>.
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "sim/array_core.h"
#include "sim/array_sim.h"
#include "sim/fold_model.h"

namespace mfsim {

constexpr int kVcdLanes = 8;

// Probe values for the VCD waveform (west boundary and one PE), filled after each cycle.
struct Probe {
  std::array<double, kVcdLanes> west{};
  double pe00 = 0;
};

// Type-erased array engine: operand matrices, the output buffer and the register-level core.
class ArrayEngine {
 public:
  virtual ~ArrayEngine() = default;
  // `view`: the record's memory view (its operands' widths in SRAM, for the read events).
  virtual void begin_gemm(const GemmShape& s, GemmOperands&& ops, const ConvView& view) = 0;
  virtual void begin_fold(const Fold& f) = 0;
  virtual bool step() = 0;
  virtual bool in_preload() const = 0;  // the next step preloads (WS/IS stationary, OS partial sums)
  virtual bool in_drain() const = 0;    // OS: the next step drains results
  virtual void end_fold(const Fold& f) = 0;
  virtual void end_gemm(ValueGemmResult& r) = 0;
  virtual void probe(Probe& p) const = 0;
};

// A policy whose operand registers hold each operand in its own representation (P::make_code
// for a PoT4 operand, P::make for an integer one: the shift PE).
template <class P, class = void>
constexpr bool kPerOperand = false;
template <class P>
constexpr bool kPerOperand<P, std::void_t<decltype(P::make_code(Pot4Code{}))>> = true;

// A per-operand policy that takes two-term values as codes (P::make_apot: the two-term PE).
template <class P, class = void>
constexpr bool kApotOps = false;
template <class P>
constexpr bool kApotOps<P, std::void_t<decltype(P::make_apot(0))>> = true;

// A policy whose operand registers hold an operand with its finer-scale exponent offset
// (P::make_scaled(value, is_pot4_code, offset): the scaled engine, sim/array_engine.cpp).
template <class P, class = void>
constexpr bool kScaledOps = false;
template <class P>
constexpr bool kScaledOps<P, std::void_t<decltype(P::make_scaled(0, false, std::int8_t{}))>> = true;

template <class P>
class EngineImpl : public ArrayEngine {
 public:
  using Op = typename P::Op;
  using Acc = typename P::Acc;

  EngineImpl(const SimConfig& cfg, typename P::Pe pe, std::int64_t max_term)
      : cfg_(cfg), core_(cfg.rows, cfg.cols, cfg.mac_latency, pe), max_term_(max_term) {}

  void begin_gemm(const GemmShape& s, GemmOperands&& ops, const ConvView& view) override {
    s_ = s;
    view_ = view;
    convert(ops);
    c_.assign(static_cast<std::size_t>(s.m * s.n), Acc{});
    // Integer partial sums reach at most K * max_term: check every add only if that can overflow.
    checked_ = max_term_ > 0 && static_cast<std::uint64_t>(s.k) * static_cast<std::uint64_t>(max_term_) >
                                    static_cast<std::uint64_t>(cfg_.accumulator.max());
    core_.counters = {};
    first_fold_ = true;
  }

  void begin_fold(const Fold& f) override {
    const std::int64_t K = s_.k, N = s_.n, T = f.t, t0 = f.t0;
    const std::int64_t r0 = f.sr0, c0 = f.sc0;
    west_.resize(static_cast<std::size_t>(f.r * T));
    typename ArrayCore<P>::FoldInput in;
    in.dataflow = cfg_.dataflow;
    in.r = f.r;
    in.c = f.c;
    in.t = T;
    switch (cfg_.dataflow) {
      case Dataflow::kOs:  // rows: M block r0; columns: N block c0; stream over k in [t0, t0 + T)
        north_.resize(static_cast<std::size_t>(f.c * T));
        for (int i = 0; i < f.r; ++i) {
          std::copy_n(&a_[static_cast<std::size_t>((r0 + i) * K + t0)], T, &west_[static_cast<std::size_t>(i * T)]);
        }
        for (int j = 0; j < f.c; ++j) {
          for (std::int64_t k = 0; k < T; ++k) north_[static_cast<std::size_t>(j * T + k)] = b_[static_cast<std::size_t>((t0 + k) * N + c0 + j)];
        }
        out_.resize(static_cast<std::size_t>(f.r * f.c));
        if (!f.first_k) {  // a later K tile: the accumulators start from the partial sums
          psum_.resize(out_.size());
          for (int i = 0; i < f.r; ++i) {
            for (int j = 0; j < f.c; ++j) psum_[static_cast<std::size_t>(i * f.c + j)] = c_[static_cast<std::size_t>((r0 + i) * N + c0 + j)];
          }
        }
        in.north = north_.data();
        in.base_row = r0;
        in.base_col = c0;
        in.base_k = t0;
        break;
      case Dataflow::kWs:  // rows: K block r0; columns: N block c0; stream over m in [t0, t0 + T)
        stationary_.resize(static_cast<std::size_t>(f.r * f.c));
        for (int i = 0; i < f.r; ++i) {
          for (int j = 0; j < f.c; ++j) stationary_[static_cast<std::size_t>(i * f.c + j)] = b_[static_cast<std::size_t>((r0 + i) * N + c0 + j)];
          for (std::int64_t m = 0; m < T; ++m) west_[static_cast<std::size_t>(i * T + m)] = a_[static_cast<std::size_t>((t0 + m) * K + r0 + i)];
        }
        out_.resize(static_cast<std::size_t>(T * f.c));
        if (!f.first_k) {
          psum_.resize(out_.size());
          for (std::int64_t m = 0; m < T; ++m) {
            for (int j = 0; j < f.c; ++j) psum_[static_cast<std::size_t>(m * f.c + j)] = c_[static_cast<std::size_t>((t0 + m) * N + c0 + j)];
          }
        }
        in.base_col = c0;
        in.base_k = r0;
        in.base_row = t0;
        break;
      case Dataflow::kIs:  // rows: K block r0; columns: M block c0; stream over n in [t0, t0 + T)
        stationary_.resize(static_cast<std::size_t>(f.r * f.c));
        for (int i = 0; i < f.r; ++i) {
          for (int j = 0; j < f.c; ++j) stationary_[static_cast<std::size_t>(i * f.c + j)] = a_[static_cast<std::size_t>((c0 + j) * K + r0 + i)];
          std::copy_n(&b_[static_cast<std::size_t>((r0 + i) * N + t0)], T, &west_[static_cast<std::size_t>(i * T)]);
        }
        out_.resize(static_cast<std::size_t>(T * f.c));
        if (!f.first_k) {
          psum_.resize(out_.size());
          for (std::int64_t n = 0; n < T; ++n) {
            for (int j = 0; j < f.c; ++j) psum_[static_cast<std::size_t>(n * f.c + j)] = c_[static_cast<std::size_t>((c0 + j) * N + t0 + n)];
          }
        }
        in.base_row = c0;
        in.base_k = r0;
        in.base_col = t0;
        break;
    }
    in.west = west_.data();
    in.stationary = stationary_.data();
    in.psum_in = !f.first_k ? psum_.data() : nullptr;
    in.out = out_.data();
    core_.begin(in, checked_);
  }

  bool step() override { return core_.step(); }
  bool in_preload() const override { return core_.in_preload(); }
  bool in_drain() const override { return core_.in_drain(); }

  void end_fold(const Fold& f) override {
    const std::int64_t N = s_.n, t0 = f.t0;
    const std::int64_t r0 = f.sr0, c0 = f.sc0;
    switch (cfg_.dataflow) {
      case Dataflow::kOs:
        for (int i = 0; i < f.r; ++i) {
          for (int j = 0; j < f.c; ++j) c_[static_cast<std::size_t>((r0 + i) * N + c0 + j)] = out_[static_cast<std::size_t>(i * f.c + j)];
        }
        break;
      case Dataflow::kWs:
        for (std::int64_t m = 0; m < f.t; ++m) {
          for (int j = 0; j < f.c; ++j) c_[static_cast<std::size_t>((t0 + m) * N + c0 + j)] = out_[static_cast<std::size_t>(m * f.c + j)];
        }
        break;
      case Dataflow::kIs:
        for (std::int64_t n = 0; n < f.t; ++n) {
          for (int j = 0; j < f.c; ++j) c_[static_cast<std::size_t>((c0 + j) * N + t0 + n)] = out_[static_cast<std::size_t>(n * f.c + j)];
        }
        break;
    }
    if (first_fold_) {
      first_output_ = core_.first_output_cycle;
      last_output_ = core_.last_output_cycle;
      first_fold_ = false;
    }
  }

  void end_gemm(ValueGemmResult& r) override;
  void probe(Probe& p) const override;

 private:
  // The operands in the policy's register form, from the GemmOperands vector it holds.
  void convert(GemmOperands& ops) {
    auto fill = [](std::vector<Op>& out, const auto& in) {
      out.resize(in.size());
      std::transform(in.begin(), in.end(), out.begin(), [](auto v) { return P::make(v); });
    };
    if constexpr (kScaledOps<P>) {  // PoT4 codes or integers, each with its exponent offset
      auto one = [](std::vector<Op>& out, const std::vector<Pot4Code>& codes, const std::vector<int>& ints,
                    const std::vector<std::int8_t>& off) {
        const bool code = !codes.empty();
        const std::size_t n = code ? codes.size() : ints.size();
        out.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
          out[i] = P::make_scaled(code ? static_cast<int>(codes[i]) : ints[i], code, off.empty() ? std::int8_t{0} : off[i]);
        }
      };
      one(a_, ops.a_pot4, ops.a_int, ops.a_off);
      one(b_, ops.b_pot4, ops.b_int, ops.b_off);
    } else if constexpr (kPerOperand<P>) {  // each operand as it is: PoT4 codes or integers
      auto one = [&](std::vector<Op>& out, const std::vector<Pot4Code>& codes, const std::vector<int>& ints, bool apot) {
        if (!codes.empty()) {
          out.resize(codes.size());
          std::transform(codes.begin(), codes.end(), out.begin(), [](Pot4Code c) { return P::make_code(c); });
        } else if (apot) {
          if constexpr (kApotOps<P>) {
            out.resize(ints.size());
            std::transform(ints.begin(), ints.end(), out.begin(), [](int v) { return P::make_apot(v); });
          } else {
            throw std::logic_error("two-term codes reached a PE without two-term registers");
          }
        } else {
          fill(out, ints);
        }
      };
      one(a_, ops.a_pot4, ops.a_int, ops.a_apot);
      one(b_, ops.b_pot4, ops.b_int, ops.b_apot);
    } else if constexpr (P::kHolds == FormatKind::kPot4) {
      fill(a_, ops.a_pot4);
      fill(b_, ops.b_pot4);
    } else if constexpr (P::kHolds == FormatKind::kInt) {
      fill(a_, ops.a_int);
      fill(b_, ops.b_int);
    } else {
      fill(a_, ops.a_f32);
      fill(b_, ops.b_f32);
    }
  }

  SimConfig cfg_;
  ArrayCore<P> core_;
  std::int64_t max_term_;
  GemmShape s_;
  ConvView view_;
  std::vector<Op> a_, b_, west_, north_, stationary_;
  std::vector<Acc> c_, out_, psum_;
  bool checked_ = false, first_fold_ = true;
  std::int64_t first_output_ = -1, last_output_ = -1;
};

template <class P>
void EngineImpl<P>::probe(Probe& p) const {
  for (int i = 0; i < kVcdLanes; ++i) {
    p.west[i] = i < cfg_.rows ? P::value(core_.west_reg(i, 0)) : 0.0;
  }
  p.pe00 = static_cast<double>(core_.acc_reg(0, 0));
}

template <class P>
void EngineImpl<P>::end_gemm(ValueGemmResult& r) {
  const auto& k = core_.counters;
  EventCounts& e = r.events;
  e.mac_slots = k.tally.slots;
  e.products_zero = k.tally.zero;
  r.saturations = k.tally.saturations;
  r.first_output_cycle = first_output_;
  r.last_output_cycle = last_output_;
  const ArrayWidths widths = array_widths(cfg_, view_);
  const auto ob = static_cast<std::uint64_t>(widths.operand);
  const auto outb = static_cast<std::uint64_t>(widths.output);
  const auto accb = static_cast<std::uint64_t>(widths.acc_register);
  const bool os = cfg_.dataflow == Dataflow::kOs;
  std::uint64_t acc_writes = os ? k.drain_writes : k.tally.slots;
  arithmetic_events(cfg_, k.tally.slots, k.tally.zero, e, acc_writes);
  e.reg_operand_write_bits = k.operand_writes * ob;
  e.reg_acc_write_bits = acc_writes * accb;
  add_edge_read_events(cfg_.dataflow, k.west_reads, k.north_reads + k.stationary_reads,
                       static_cast<std::uint64_t>(widths.a), static_cast<std::uint64_t>(widths.b), e);
  e.sram_c_write_bits += k.out_writes * outb;
  e.sram_c_read_bits += k.psum_reads * outb;
  if constexpr (std::is_same_v<Acc, float>) {
    r.out_f32.assign(c_.begin(), c_.end());
  } else {
    r.out_int.assign(c_.begin(), c_.end());
  }
}

// `plain` for GEMMs without finer scales, and the scaled engine (models/scaled_gemm.h: each
// product shifted by its operands' exponent offsets into a 64-bit accumulator) for those with:
// the PE types that run finer scales (PeType::finer_scales) make their engine through this.
std::unique_ptr<ArrayEngine> with_finer_scales(std::unique_ptr<ArrayEngine> plain, const SimConfig& cfg);

// An engine of policy P for `cfg`. `max_term` bounds |a*b| of an integer policy (accumulations
// are range-checked only when K * max_term can pass the accumulator); 0 for binary32 policies.
template <class P>
std::unique_ptr<ArrayEngine> make_array_engine(const SimConfig& cfg, typename P::Pe pe, std::int64_t max_term) {
  return std::make_unique<EngineImpl<P>>(cfg, pe, max_term);
}

}  // namespace mfsim

