// PE arithmetic policies of the systolic array (sim/array_core.h). The array code is shared;
// a policy says what an operand register holds, what a partial sum is, and what one PE does
// with an operand pair. Every operand register carries a valid bit, so bubbles (fill, drain,
// skew) are never mistaken for data. A PE type (sim/pe_type.h) picks a policy: MF-MAC; integer
// multiply-accumulate (INT8, INT4); binary32 multiply-add (FP32, and BF16 and FP8, whose products
// are exact in binary32).
//
// Each policy has: Op (the register), Acc (a partial sum), kBubble, kHolds (which operand vector
// of GemmOperands it reads: PoT4 codes, integers or floats), make(value) and value(op) (for the
// waveform), and Pe::mac.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "models/accumulator.h"
#include "models/mfmac.h"
#include "models/number_format.h"
#include "models/pot4.h"

namespace mfsim {

// Local event tallies of the hot loop (folded into EventCounts by the caller).
struct PeTally {
  std::uint64_t slots = 0;        // valid operand pairs (scheduled products)
  std::uint64_t zero = 0;         // valid pairs with a zero operand
  std::uint64_t saturations = 0;  // clamped accumulations (OverflowPolicy::kSaturate)
  std::uint64_t valid_operands = 0;  // valid operands in the two registers of each pair
};

// Where a product sits in the GEMM, for overflow messages.
struct ProductPos {
  std::int64_t row, col, k;
};

// The tallies and the integer accumulation of one product `prod` of an integer PE (0 when either
// register holds a bubble), shared by the integer policies: counted as a slot when both operands
// are valid, as a zero product when it is 0; range-checked (kChecked) against `spec`.
template <bool kChecked>
inline std::int64_t tally_and_accumulate(std::int64_t acc, std::int64_t prod, unsigned valid_a, unsigned valid_b,
                                         const AccumulatorSpec& spec, PeTally& tally, const ProductPos& pos) {
  const unsigned both = valid_a & valid_b;
  tally.slots += both;
  tally.valid_operands += valid_a + valid_b;
  tally.zero += both & static_cast<unsigned>(prod == 0);
  if constexpr (kChecked) {
    if (both != 0 && accumulate(acc, prod, spec, pos.row, pos.col, pos.k)) ++tally.saturations;
    return acc;
  } else {
    return acc + prod;
  }
}

// The MAC of a per-operand policy P (the shift PEs, sim/pe/shift.cpp and shift2.cpp): the operand
// whose register holds a code (Op::code) gives the shifter's amounts, the other its data;
// P::product(data, code) is their exact product. Bubbles never touch a partial sum: product 0.
template <class P>
struct CodeOperandPe {
  AccumulatorSpec spec;
  bool fma = false;
  template <bool kChecked>
  std::int64_t mac(std::int64_t acc, typename P::Op a, typename P::Op b, PeTally& tally, const ProductPos& pos) const {
    const std::int64_t prod = (a.valid & b.valid) == 0 ? 0 : a.code != 0 ? P::product(b, a) : P::product(a, b);
    return tally_and_accumulate<kChecked>(acc, prod, a.valid, b.valid, spec, tally, pos);
  }
};

// MF-MAC: the register holds a PoT4 code in bits 3..0 and the valid bit in bit 4.
struct MfMacPolicy {
  using Op = std::uint8_t;
  using Acc = std::int64_t;
  static constexpr Op kBubble = 0;
  static constexpr FormatKind kHolds = FormatKind::kPot4;
  static constexpr Op make(Pot4Code c) { return static_cast<Op>(0x10 | (c & 0xF)); }
  static unsigned valid(Op o) { return o >> 4; }
  static double value(Op o) { return (o >> 4) != 0 ? pot4_int(o & 0xF) : 0.0; }

  // One table entry per register pair (a << 5 | b): everything a PE needs in one load.
  struct Entry {
    std::int32_t term;   // one-hot term; 0 if gated or a bubble
    std::uint8_t slot;   // 1 if both operands are valid
    std::uint8_t zero;   // 1 if both valid and one is zero (gated)
    std::uint8_t valid;  // valid(a) + valid(b): operand registers holding data
    std::uint8_t pad;
  };
  struct Tables {
    std::array<Entry, 1024> e{};
    Tables() {
      for (unsigned a = 0; a < 32; ++a) {
        for (unsigned b = 0; b < 32; ++b) {
          bool both = (a >> 4) != 0 && (b >> 4) != 0;
          MfMacProduct p = mfmac_product(static_cast<Pot4Code>(a & 0xF), static_cast<Pot4Code>(b & 0xF));
          Entry& x = e[a << 5 | b];
          x.slot = both ? 1 : 0;
          x.zero = both && p.zero ? 1 : 0;
          x.term = both ? static_cast<std::int32_t>(p.term()) : 0;
          x.valid = static_cast<std::uint8_t>((a >> 4) + (b >> 4));
        }
      }
    }
  };
  static const Tables& tables() {
    static const Tables t;
    return t;
  }

  struct Pe {
    const Tables& t = tables();
    AccumulatorSpec spec;
    bool fma = false;
    template <bool kChecked>
    Acc mac(Acc acc, Op a, Op b, PeTally& tally, const ProductPos& pos) const {
      const Entry& x = t.e[static_cast<unsigned>(a) << 5 | b];
      tally.slots += x.slot;
      tally.zero += x.zero;
      tally.valid_operands += x.valid;
      if constexpr (kChecked) {
        if (x.term != 0 && accumulate(acc, x.term, spec, pos.row, pos.col, pos.k)) ++tally.saturations;
        return acc;
      } else {
        return acc + x.term;
      }
    }
  };
};

// Integer multiply (INT8: 8 x 8 bits; INT4: 4 x 4 bits), integer accumulation (pe.acc_bits).
struct IntMacPolicy {
  struct Op {
    std::int16_t v;
    std::uint8_t valid;
  };
  using Acc = std::int64_t;
  static constexpr Op kBubble{0, 0};
  static constexpr FormatKind kHolds = FormatKind::kInt;
  static constexpr Op make(int v) { return Op{static_cast<std::int16_t>(v), 1}; }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) { return o.v; }

  struct Pe {
    AccumulatorSpec spec;
    bool fma = false;
    template <bool kChecked>
    Acc mac(Acc acc, Op a, Op b, PeTally& tally, const ProductPos& pos) const {
      return tally_and_accumulate<kChecked>(acc, std::int64_t{a.v} * b.v /* 0 for bubbles */, a.valid, b.valid, spec,
                                            tally, pos);
    }
  };
};

// Binary32 multiply then add (two roundings) or fused multiply-add (one rounding). Narrow float
// operands (BF16, FP8) are held as their exact binary32 values: their products are exact, so
// multiply-then-add and FMA agree and the PE is a narrow multiplier with an FP32 accumulator.
struct FloatMacPolicy {
  struct Op {
    float v;
    std::uint8_t valid;
  };
  using Acc = float;
  static constexpr Op kBubble{0.0f, 0};
  static constexpr FormatKind kHolds = FormatKind::kFloat;
  static constexpr Op make(float v) { return Op{v, 1}; }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) { return o.v; }

  struct Pe {
    AccumulatorSpec spec;
    bool fma = false;
    template <bool kChecked>
    Acc mac(Acc acc, Op a, Op b, PeTally& tally, const ProductPos&) const {
      unsigned both = a.valid & b.valid;
      tally.slots += both;
      tally.valid_operands += a.valid + b.valid;
      tally.zero += both & static_cast<unsigned>(a.v == 0.0f || b.v == 0.0f);
      if (both == 0) return acc;  // bubbles never touch a partial sum
      if (fma) return std::fma(a.v, b.v, acc);
      float prod = a.v * b.v;
      return acc + prod;
    }
  };
};

}  // namespace mfsim
