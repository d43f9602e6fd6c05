// The two-term power-of-two format (additive powers of two, APoT; NumFormat::kApot): an integer
// whose magnitude is 0, 2^i or 2^i + 2^j (0 <= j < i <= 6), at most 96, with a power-of-two scale
// (models/quantizer.h apot_nearest and apot_stochastic quantize to it). Its hardware form is a
// sign and two 3-bit exponent codes, each as a PoT4 magnitude code (0: no term; m: 2^(m-1)): a
// product with an integer x is x << (hi - 1), plus x << (lo - 1) when lo > 0; no multiplier.
#pragma once

#include <cstdint>

namespace mfsim {

constexpr int kApotMax = 96;  // 2^6 + 2^5

// Whether |v| is one of the 29 magnitudes: at most two bits set, at most 96.
constexpr bool apot_level(int v) {
  const unsigned a = static_cast<unsigned>(v < 0 ? -v : v);
  const unsigned rest = a & (a - 1U);  // a without its lowest set bit
  return a <= static_cast<unsigned>(kApotMax) && (rest & (rest - 1U)) == 0;
}

// The two exponent codes of a level's magnitude: hi, lo in 0..7 (PoT4 magnitude codes: 0 no
// term, m the term 2^(m-1)), hi > lo or both 0. |v| = (hi ? 2^(hi-1) : 0) + (lo ? 2^(lo-1) : 0).
struct ApotTerms {
  int hi = 0, lo = 0;
};
constexpr ApotTerms apot_terms(int v) {
  unsigned a = static_cast<unsigned>(v < 0 ? -v : v);
  ApotTerms t;
  int bit = 0;
  for (int i = 6; i >= 0; --i) {
    if ((a >> i) & 1U) {
      if (bit == 0) {
        t.hi = i + 1;
        bit = 1;
      } else {
        t.lo = i + 1;
        break;
      }
    }
  }
  return t;
}

}  // namespace mfsim
