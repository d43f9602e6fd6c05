// The narrow float formats: FP8 E4M3 and E5M2 (the OCP 8-bit floating point specification,
// the "hybrid FP8" pair: E4M3 for weights and activations, E5M2 for errors) and bfloat16.
// Every value of these formats is exactly a binary32 value, so decoding is exact; rounding is
// to nearest, ties to even, saturating to the largest finite value (OCP's saturating mode).
//
//   E4M3: bias 7, 3 mantissa bits, subnormals, no infinities, NaN = S.1111.111, max 448
//   E5M2: bias 15, 2 mantissa bits, subnormals, exponent 31 = infinities and NaNs, max 57344
//   BF16: the upper half of binary32 (bias 127, 7 mantissa bits)
#pragma once

#include <cstdint>

#include "models/number_format.h"

namespace mfsim {

constexpr float kFp8E4M3Max = 448.0f;
constexpr float kFp8E5M2Max = 57344.0f;

float fp8_decode(NumFormat f, std::uint8_t code);   // f: kFp8E4M3 or kFp8E5M2; NaN for NaN codes
bool fp8_is_nan(NumFormat f, std::uint8_t code);    // NaN codes (and E5M2 infinities)
// Nearest value (ties to even), saturated to +-max; NaN maps to the format's NaN code.
std::uint8_t fp8_encode_nearest(NumFormat f, float x);
float fp8_round(NumFormat f, float x);              // fp8_decode(fp8_encode_nearest(x))
// The code of x if x is exactly a finite value of the format.
bool fp8_encode_exact(NumFormat f, float x, std::uint8_t* code);

inline float bf16_decode(std::uint16_t code);
std::uint16_t bf16_encode_nearest(float x);         // ties to even; NaN stays NaN
float bf16_round(float x);
bool bf16_encode_exact(float x, std::uint16_t* code);  // finite and exactly a bf16 value

}  // namespace mfsim

#include <cstring>

namespace mfsim {
inline float bf16_decode(std::uint16_t code) {
  const std::uint32_t b = static_cast<std::uint32_t>(code) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
}  // namespace mfsim
