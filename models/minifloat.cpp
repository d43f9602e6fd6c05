#include "models/minifloat.h"

#include <cmath>
#include <limits>

namespace mfsim {

namespace {

struct Fp8Spec {
  int mant_bits, bias;
  float max;
  bool ieee_specials;  // E5M2: the top exponent holds infinities and NaNs
};

Fp8Spec spec(NumFormat f) {
  return f == NumFormat::kFp8E4M3 ? Fp8Spec{3, 7, kFp8E4M3Max, false} : Fp8Spec{2, 15, kFp8E5M2Max, true};
}

std::uint32_t bits_of(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

}  // namespace

bool fp8_is_nan(NumFormat f, std::uint8_t code) {
  const Fp8Spec s = spec(f);
  const unsigned exp = (code & 0x7Fu) >> s.mant_bits;
  const unsigned top = (1u << (7 - s.mant_bits)) - 1;
  if (s.ieee_specials) return exp == top;
  return (code & 0x7Fu) == 0x7Fu;
}

float fp8_decode(NumFormat f, std::uint8_t code) {
  const Fp8Spec s = spec(f);
  if (fp8_is_nan(f, code)) return std::numeric_limits<float>::quiet_NaN();
  const bool neg = (code & 0x80u) != 0;
  const int exp = static_cast<int>((code & 0x7Fu) >> s.mant_bits);
  const int mant = static_cast<int>(code & ((1u << s.mant_bits) - 1));
  float v = exp == 0 ? std::ldexp(static_cast<float>(mant), 1 - s.bias - s.mant_bits)
                     : std::ldexp(static_cast<float>(mant + (1 << s.mant_bits)), exp - s.bias - s.mant_bits);
  return neg ? -v : v;
}

float fp8_round(NumFormat f, float x) {
  const Fp8Spec s = spec(f);
  const std::uint32_t ab = bits_of(x) & 0x7FFFFFFFu;
  if (ab > 0x7F800000u) return x;  // NaN
  float a;
  std::memcpy(&a, &ab, 4);
  if (a >= s.max) return std::copysign(s.max, x);  // saturating (infinities too)
  // Round a to a multiple of the quantum 2^q (ties to even) by adding and removing 2^(q + 23):
  // the sum lies in [2^(q+23), 2^(q+24)), whose binary32 spacing is exactly 2^q.
  const int k = static_cast<int>(ab >> 23) - 127;      // a in [2^k, 2^(k+1)) (binary32 subnormals: -127)
  const int lead = std::max(k, 1 - s.bias);            // FP8 subnormals share the smallest normal's quantum
  const int q = lead - s.mant_bits;
  const std::uint32_t cb = static_cast<std::uint32_t>(q + 23 + 127) << 23;
  float c;
  std::memcpy(&c, &cb, 4);
  const float r = std::min(s.max, (a + c) - c);
  return std::copysign(r, x);
}

bool fp8_encode_exact(NumFormat f, float x, std::uint8_t* code) {
  const Fp8Spec s = spec(f);
  if (!std::isfinite(x) || std::fabs(x) > s.max) return false;
  const std::uint8_t sign = std::signbit(x) ? 0x80u : 0u;
  const float a = std::fabs(x);
  if (a == 0.0f) {
    *code = sign;
    return true;
  }
  int e = 0;
  std::frexp(a, &e);
  const int lead = e - 1;
  int exp_field = 0;
  double mant = 0;
  if (lead < 1 - s.bias) {  // subnormal
    mant = std::ldexp(static_cast<double>(a), s.bias - 1 + s.mant_bits);
  } else {
    exp_field = lead + s.bias;
    mant = std::ldexp(static_cast<double>(a), s.mant_bits - lead) - (1 << s.mant_bits);
  }
  if (mant != std::floor(mant) || mant < 0 || mant >= (1 << s.mant_bits)) return false;
  const auto c = static_cast<std::uint8_t>(sign | (exp_field << s.mant_bits) | static_cast<int>(mant));
  if (fp8_is_nan(f, c)) return false;
  *code = c;
  return true;
}

std::uint8_t fp8_encode_nearest(NumFormat f, float x) {
  if (std::isnan(x)) return 0x7Fu;  // E4M3: S.1111.111; E5M2: exponent 31, mantissa 3
  std::uint8_t c = 0;
  fp8_encode_exact(f, fp8_round(f, x), &c);
  return c;
}

std::uint16_t bf16_encode_nearest(float x) {
  const std::uint32_t b = bits_of(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((b >> 16) | 0x40u);  // quiet NaN
  const std::uint32_t rounding = 0x7FFFu + ((b >> 16) & 1u);  // ties to even
  return static_cast<std::uint16_t>((b + rounding) >> 16);
}

float bf16_round(float x) { return bf16_decode(bf16_encode_nearest(x)); }

bool bf16_encode_exact(float x, std::uint16_t* code) {
  const std::uint32_t b = bits_of(x);
  if (!std::isfinite(x) || (b & 0xFFFFu) != 0) return false;
  *code = static_cast<std::uint16_t>(b >> 16);
  return true;
}

}  // namespace mfsim
