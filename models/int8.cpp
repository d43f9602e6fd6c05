#include "models/int8.h"

#include <cmath>

namespace mfsim {

float int_scale_for_max(float max_abs, int qmax) {
  if (!(max_abs > 0.0f) || !std::isfinite(max_abs)) return 1.0f;
  return max_abs / static_cast<float>(qmax);
}

std::int8_t int_quantize_nearest(float x, float scale, int qmax) {
  float r = x / scale;
  const auto q = static_cast<float>(qmax);
  if (std::isnan(r)) return 0;
  if (r >= q) return static_cast<std::int8_t>(qmax);
  if (r <= -q) return static_cast<std::int8_t>(-qmax);
  return int8_saturate(static_cast<std::int64_t>(std::nearbyint(r)));
}

}  // namespace mfsim
