#include "models/int8.h"

#include <cmath>

namespace mfsim {

float int8_scale_for_max(float max_abs) {
  if (!(max_abs > 0.0f) || !std::isfinite(max_abs)) return 1.0f;
  return max_abs / static_cast<float>(kInt8Max);
}

std::int8_t int8_quantize_nearest(float x, float scale) {
  float r = x / scale;
  if (std::isnan(r)) return 0;
  if (r >= static_cast<float>(kInt8Max)) return kInt8Max;
  if (r <= -static_cast<float>(kInt8Max)) return -kInt8Max;
  return int8_saturate(static_cast<std::int64_t>(std::nearbyint(r)));
}

}  // namespace mfsim
