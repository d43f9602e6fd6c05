#include "sim/array_engine.h"

#include <cmath>

#include "sim/params.h"

namespace mfsim {

std::unique_ptr<ArrayEngine> make_int_engine(const SimConfig& cfg, NumFormat format) {
  IntMacPolicy::Pe pe;
  pe.spec = cfg.accumulator;
  return make_array_engine<IntMacPolicy>(cfg, pe, max_product_term(format));
}

std::unique_ptr<ArrayEngine> make_float_engine(const SimConfig& cfg, bool fma) {
  FloatMacPolicy::Pe pe;
  pe.fma = fma;
  return make_array_engine<FloatMacPolicy>(cfg, pe, 0);
}

namespace {

// Finer scales: an operand register holds a PoT4 code (sign and magnitude code) or an integer,
// with its group's exponent offset. A product is the shift-add or MF-MAC product on the integer
// grid (a one-hot 2^(ma + mb - 2), or an integer shifted by m - 1, with the XOR of the signs),
// shifted left by the two offsets, and accumulated exactly in 64 bits. This computes per product
// what the hardware computes per K-chunk (the chunk's integer sum shifted by the same amount,
// docs/energy-accounting.md): a shift distributes over the sum, so the integers are equal.
struct ScaledPolicy {
  struct Op {
    std::int16_t v;      // the integer, or (code = 1) the PoT4 code
    std::uint8_t valid;
    std::uint8_t code;
    std::int8_t off;     // the exponent offset (>= 0)
  };
  using Acc = std::int64_t;
  static constexpr Op kBubble{0, 0, 0, 0};
  static constexpr FormatKind kHolds = FormatKind::kInt;
  static Op make(int v) { return Op{static_cast<std::int16_t>(v), 1, 0, 0}; }
  static Op make_scaled(int v, bool code, std::int8_t off) {
    return Op{static_cast<std::int16_t>(v), 1, static_cast<std::uint8_t>(code ? 1 : 0), off};
  }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) {
    const double v = o.code != 0 ? pot4_int(static_cast<Pot4Code>(o.v)) : o.v;
    return std::ldexp(v, o.off);
  }
  // |product| on the integer grid and its sign, before the offsets.
  static std::int64_t product(Op a, Op b) {
    std::int64_t mag = 0;
    bool neg = false;
    if (a.code != 0 && b.code != 0) {
      const auto ca = static_cast<Pot4Code>(a.v), cb = static_cast<Pot4Code>(b.v);
      if (pot4_is_zero(ca) || pot4_is_zero(cb)) return 0;
      mag = std::int64_t{1} << (pot4_mag(ca) + pot4_mag(cb) - 2);
      neg = pot4_negative(ca) != pot4_negative(cb);
    } else if (a.code != 0 || b.code != 0) {
      const Op& p = a.code != 0 ? a : b;
      const Op& x = a.code != 0 ? b : a;
      const auto c = static_cast<Pot4Code>(p.v);
      if (pot4_is_zero(c) || x.v == 0) return 0;
      mag = std::int64_t{x.v < 0 ? -x.v : x.v} << (pot4_mag(c) - 1);
      neg = (x.v < 0) != pot4_negative(c);
    } else {
      mag = std::int64_t{a.v} * b.v;  // not produced: a scaled GEMM has a PoT4 operand
      if (mag < 0) {
        mag = -mag;
        neg = true;
      }
    }
    mag <<= (a.off + b.off);
    return neg ? -mag : mag;
  }
  struct Pe {
    AccumulatorSpec spec;
    bool fma = false;
    template <bool kChecked>
    Acc mac(Acc acc, Op a, Op b, PeTally& tally, const ProductPos& pos) const {
      const unsigned both = a.valid & b.valid;
      tally.slots += both;
      tally.valid_operands += a.valid + b.valid;
      if (both == 0) return acc;
      const std::int64_t prod = product(a, b);
      tally.zero += static_cast<unsigned>(prod == 0);
      if constexpr (kChecked) {
        if (accumulate(acc, prod, spec, pos.row, pos.col, pos.k)) ++tally.saturations;
        return acc;
      } else {
        return acc + prod;
      }
    }
  };
};

// Runs each GEMM on `plain`, or on the scaled engine when its operands carry offsets.
class FinerScalesEngine : public ArrayEngine {
 public:
  FinerScalesEngine(std::unique_ptr<ArrayEngine> plain, const SimConfig& cfg) : plain_(std::move(plain)), cfg_(cfg) {}
  void begin_gemm(const GemmShape& s, GemmOperands&& ops, const ConvView& view) override {
    if (ops.a_off.empty() && ops.b_off.empty()) {
      cur_ = plain_.get();
    } else {
      if (!scaled_) {
        ScaledPolicy::Pe pe;
        pe.spec = cfg_.accumulator;
        pe.spec.bits = 64;  // the aligned accumulator; models/scaled_gemm.h bounds every sum below 2^63
        scaled_ = make_array_engine<ScaledPolicy>(cfg_, pe, 0);
      }
      cur_ = scaled_.get();
    }
    cur_->begin_gemm(s, std::move(ops), view);
  }
  void begin_fold(const Fold& f) override { cur_->begin_fold(f); }
  bool step() override { return cur_->step(); }
  bool in_preload() const override { return cur_->in_preload(); }
  bool in_drain() const override { return cur_->in_drain(); }
  void end_fold(const Fold& f) override { cur_->end_fold(f); }
  void end_gemm(ValueGemmResult& r) override { cur_->end_gemm(r); }
  void probe(Probe& p) const override { (cur_ != nullptr ? cur_ : plain_.get())->probe(p); }

 private:
  std::unique_ptr<ArrayEngine> plain_, scaled_;
  SimConfig cfg_;
  ArrayEngine* cur_ = nullptr;
};

}  // namespace

std::unique_ptr<ArrayEngine> with_finer_scales(std::unique_ptr<ArrayEngine> plain, const SimConfig& cfg) {
  return std::make_unique<FinerScalesEngine>(std::move(plain), cfg);
}

}  // namespace mfsim
