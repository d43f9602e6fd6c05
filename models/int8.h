// INT8 with a symmetric per-tensor scale: v = q * scale, q in [-127, 127] (-128 is never
// produced, so the range is symmetric). The baseline INT8 training arithmetic of
// docs/number-formats.md: round to nearest (ties to even) for activations and weights.
#pragma once

#include <cstdint>

namespace mfsim {

constexpr int kInt8Max = 127;

constexpr int kInt4Max = 7;  // symmetric INT4: [-7, 7], the same rules with 7 for 127

// Clamps an integer to [-127, 127].
constexpr std::int8_t int8_saturate(std::int64_t v) {
  return static_cast<std::int8_t>(v > kInt8Max ? kInt8Max : (v < -kInt8Max ? -kInt8Max : v));
}

// The scale that maps max_abs to qmax (max_abs / qmax); 1 for an all-zero tensor.
float int_scale_for_max(float max_abs, int qmax);
inline float int8_scale_for_max(float max_abs) { return int_scale_for_max(max_abs, kInt8Max); }

// Round to nearest, ties to even, of x / scale, saturated to [-qmax, qmax]. NaN maps to 0.
std::int8_t int_quantize_nearest(float x, float scale, int qmax);
inline std::int8_t int8_quantize_nearest(float x, float scale) { return int_quantize_nearest(x, scale, kInt8Max); }

inline float int8_decode(std::int8_t q, float scale) { return static_cast<float>(q) * scale; }

}  // namespace mfsim
