// PoT4: the 4-bit power-of-two number format of ALS-POTQ (docs/number-formats.md).
//
// A code is one nibble: bit 3 is the sign s, bits 2..0 the magnitude code m.
//   m = 0      -> zero (the canonical zero has s = 0; code 0b1000 also reads as zero)
//   m = 1..7   -> |v| = 2^(E + m - 7), the seven levels 2^(E-6) .. 2^E
// E is the tensor's scale exponent (one signed integer per tensor per step). Decoding never
// multiplies: it builds the value with ldexp. In memory a code occupies one byte (low nibble);
// on disk two codes share a byte (pot4_pack).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mfsim {

using Pot4Code = std::uint8_t;

constexpr unsigned kPot4MaxMag = 7;      // largest magnitude code
constexpr unsigned kPot4SignBit = 0x8;   // sign bit within the nibble
// Range of the scale exponent E accepted in traces: every level 2^(E-6) .. 2^E is then a
// normal FP32 number.
constexpr int kPot4ScaleExpMin = -120;
constexpr int kPot4ScaleExpMax = 127;

constexpr Pot4Code pot4_encode(bool negative, unsigned mag) {
  return mag == 0 ? Pot4Code{0} : static_cast<Pot4Code>((negative ? kPot4SignBit : 0u) | (mag & 7u));
}
constexpr unsigned pot4_mag(Pot4Code c) { return c & 7u; }
constexpr bool pot4_negative(Pot4Code c) { return (c & kPot4SignBit) != 0; }
constexpr bool pot4_is_zero(Pot4Code c) { return pot4_mag(c) == 0; }
constexpr bool pot4_is_valid(Pot4Code c) { return c < 16; }

// The code as an integer on the grid 2^(E-6): 0 or +-2^(m-1), i.e. +-1 .. +-64. This is the
// exact INT8 (and FP32) representation of a PoT4 value: v = pot4_int(c) * 2^(E-6).
constexpr int pot4_int(Pot4Code c) {
  return pot4_is_zero(c) ? 0 : (pot4_negative(c) ? -1 : 1) * (1 << (pot4_mag(c) - 1));
}

// Exact value of a code under scale exponent E (ldexp, no multiplication).
double pot4_decode(Pot4Code c, int scale_exp);
float pot4_decode_float(Pot4Code c, int scale_exp);

// Packing: element i lives in byte i/2, low nibble for even i, high nibble for odd i; an odd
// count leaves the last high nibble 0.
constexpr std::size_t pot4_packed_bytes(std::size_t count) { return count / 2 + count % 2; }
void pot4_pack(const Pot4Code* codes, std::size_t count, std::uint8_t* packed);
void pot4_unpack(const std::uint8_t* packed, std::size_t count, Pot4Code* codes);

// Deterministic PoT4 quantizer Q(x; E, t) (the rule for activations and weights):
// |x| in [2^k, 2^(k+1)) rounds up to 2^(k+1) when |x| / 2^k >= t, else down to 2^k; levels
// above 2^E clip to 2^E; 2^(E-7) stands for zero when rounding below the smallest level, so
// |x| < 2^(E-7) and |x| in [2^(E-7), 2^(E-6)) with ratio < t become 0. t in [1, 2).
// The comparison |x|/2^k >= t is done on the frexp mantissa (no multiplication).
Pot4Code pot4_quantize(double x, int scale_exp, double threshold);

// Scale exponent of the ALS rule for deterministic rounding: the E such that the largest
// magnitude rounds to exactly 2^E (floor(log2 max), plus 1 when max / 2^floor >= t).
// Returns 0 for max_abs == 0. max_abs must be finite.
int pot4_scale_exp_deterministic(double max_abs, double threshold);

// Scale exponent for stochastic rounding: the smallest E with 2^E >= max_abs (0 for 0).
int pot4_scale_exp_ceil(double max_abs);

}  // namespace mfsim
