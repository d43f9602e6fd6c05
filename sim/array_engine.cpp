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
  // An operand as w 2^s: a PoT4 code +-2^(m-1) as w = +-1 (0 for the zero code) and s = m - 1,
  // an integer x as w = x and s = 0; s then carries the group's exponent offset too. A product
  // is (w_a w_b) 2^(s_a + s_b): a sign XOR and a shift of the INT8 value, or a one-hot.
  struct Op {
    std::int16_t w;
    std::uint8_t valid;
    std::int8_t s;
  };
  using Acc = std::int64_t;
  static constexpr Op kBubble{0, 0, 0};
  static constexpr FormatKind kHolds = FormatKind::kInt;
  static Op make(int v) { return Op{static_cast<std::int16_t>(v), 1, 0}; }
  static Op make_scaled(int v, bool code, std::int8_t off) {
    if (!code) return Op{static_cast<std::int16_t>(v), 1, off};
    const auto c = static_cast<Pot4Code>(v);
    if (pot4_is_zero(c)) return Op{0, 1, 0};
    return Op{static_cast<std::int16_t>(pot4_negative(c) ? -1 : 1), 1,
              static_cast<std::int8_t>(static_cast<int>(pot4_mag(c)) - 1 + off)};
  }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) { return std::ldexp(static_cast<double>(o.w), o.s); }
  struct Pe {
    AccumulatorSpec spec;
    bool fma = false;
    template <bool kChecked>
    Acc mac(Acc acc, Op a, Op b, PeTally& tally, const ProductPos& pos) const {
      // Bubbles hold w = 0: their product is 0. A shift of the unsigned image: the reader bounds
      // every sum below 2^63 (models/scaled_gemm.h).
      const auto prod = static_cast<std::int64_t>(static_cast<std::uint64_t>(std::int64_t{a.w * b.w}) << (a.s + b.s));
      return tally_and_accumulate<kChecked>(acc, prod, a.valid, b.valid, spec, tally, pos);
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
