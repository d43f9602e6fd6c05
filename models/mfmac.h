// MF-MAC reference arithmetic: the product of two PoT4 codes without a multiplier.
//
//   zero gating: m_a = 0 or m_b = 0 -> no accumulate (counted separately)
//   sign:        s = s_a XOR s_b                       (the 1-bit XOR)
//   exponent:    p = m_a + m_b in [2, 14]              (3-bit + 3-bit -> 4-bit, the INT4 add)
//   term:        one-hot 1 << (p - 2), added to or subtracted from the accumulator
// The product's value is 2^(p-14) * 2^(E_A+E_B) = term * 2^(E_A+E_B-12). After K products the
// accumulator converts to a float by an exponent add: y = acc * 2^(E_A + E_B - 12) (ldexp).
// |acc| <= K * 2^12, so a 32-bit accumulator cannot overflow while K < 2^19.
#pragma once

#include <cmath>
#include <cstdint>

#include "models/pot4.h"

namespace mfsim {

constexpr int kMfMacFracBits = 12;  // the accumulator's LSB weighs 2^(E_A + E_B - 12)

struct MfMacProduct {
  bool zero;          // zero-gated: no accumulate happens
  bool negative;      // s_a XOR s_b
  unsigned exp_sum;   // p = m_a + m_b (0 when zero-gated)
  std::int64_t term() const {
    if (zero) return 0;
    std::int64_t onehot = std::int64_t{1} << (exp_sum - 2);
    return negative ? -onehot : onehot;
  }
};

constexpr MfMacProduct mfmac_product(Pot4Code a, Pot4Code b) {
  if (pot4_is_zero(a) || pot4_is_zero(b)) return MfMacProduct{true, false, 0};
  return MfMacProduct{false, pot4_negative(a) != pot4_negative(b), pot4_mag(a) + pot4_mag(b)};
}

// Largest |acc| that K products can reach: K * 2^12.
constexpr std::uint64_t mfmac_acc_bound(std::uint64_t k) { return k << kMfMacFracBits; }

inline double mfmac_acc_to_double(std::int64_t acc, int scale_exp_a, int scale_exp_b) {
  return std::ldexp(static_cast<double>(acc), scale_exp_a + scale_exp_b - kMfMacFracBits);
}
inline float mfmac_acc_to_float(std::int64_t acc, int scale_exp_a, int scale_exp_b) {
  return static_cast<float>(mfmac_acc_to_double(acc, scale_exp_a, scale_exp_b));
}

}  // namespace mfsim
