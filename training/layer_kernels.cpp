#include "training/layer_kernels.h"

#include <algorithm>

// Each kernel also in an AVX2 build, chosen at run time (see the header: the same bits).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MFSIM_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define MFSIM_KERNEL
#endif

namespace mfsim {

namespace {
// The kernel columns s in [*s0, *s1) of output column x fall inside the input:
// 0 <= x stride + s - pad < w. Along one kernel row they are a contiguous run of the input row.
void tap_range(const ConvShape& s, int x, int* s0, int* s1) {
  *s0 = std::max(0, s.pad - x * s.stride);
  *s1 = std::max(*s0, std::min(s.k, s.w + s.pad - x * s.stride));
}
}  // namespace

MFSIM_KERNEL void im2col(const ConvShape& s, const float* in, float* cols) {
  const int p = s.p(), q = s.q();
  const std::size_t c = static_cast<std::size_t>(s.c), kc = static_cast<std::size_t>(s.k) * c;
  float* row = cols;
  for (int b = 0; b < s.n; ++b) {
    for (int y = 0; y < p; ++y) {
      for (int x = 0; x < q; ++x, row += s.k * kc) {
        int s0 = 0, s1 = 0;
        tap_range(s, x, &s0, &s1);
        for (int r = 0; r < s.k; ++r) {
          float* dst = row + r * kc;
          const int iy = y * s.stride + r - s.pad;
          if (iy < 0 || iy >= s.h || s0 == s1) {
            std::fill(dst, dst + kc, 0.0f);
            continue;
          }
          const float* src = in + ((static_cast<std::size_t>(b) * s.h + iy) * s.w + (x * s.stride + s0 - s.pad)) * c;
          std::fill(dst, dst + s0 * c, 0.0f);
          std::copy(src, src + (s1 - s0) * c, dst + s0 * c);
          std::fill(dst + s1 * c, dst + kc, 0.0f);
        }
      }
    }
  }
}

MFSIM_KERNEL void col2im(const ConvShape& s, const float* cols, float* dx) {
  const int p = s.p(), q = s.q();
  const std::size_t c = static_cast<std::size_t>(s.c), kc = static_cast<std::size_t>(s.k) * c;
  const float* row = cols;
  for (int b = 0; b < s.n; ++b) {
    for (int y = 0; y < p; ++y) {
      for (int x = 0; x < q; ++x, row += s.k * kc) {
        int s0 = 0, s1 = 0;
        tap_range(s, x, &s0, &s1);
        if (s0 == s1) continue;
        const std::size_t len = (s1 - s0) * c;
        for (int r = 0; r < s.k; ++r) {
          const int iy = y * s.stride + r - s.pad;
          if (iy < 0 || iy >= s.h) continue;
          // The taps (r, s0..s1) hit distinct input elements: one addition each, in row order.
          const float* src = row + r * kc + s0 * c;
          float* dst = dx + ((static_cast<std::size_t>(b) * s.h + iy) * s.w + (x * s.stride + s0 - s.pad)) * c;
          for (std::size_t i = 0; i < len; ++i) dst[i] += src[i];
        }
      }
    }
  }
}

MFSIM_KERNEL void relu_forward(float* x, std::uint8_t* mask, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    const bool pos = v > 0.0f;
    mask[i] = pos ? 1 : 0;
    x[i] = pos ? v : 0.0f;
  }
}

MFSIM_KERNEL void add_relu_forward(float* x, const float* s, std::uint8_t* mask, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i] + s[i];
    const bool pos = v > 0.0f;
    mask[i] = pos ? 1 : 0;
    x[i] = pos ? v : 0.0f;
  }
}

MFSIM_KERNEL void relu_backward(float* dy, const std::uint8_t* mask, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dy[i] = mask[i] != 0 ? dy[i] : 0.0f;
}

MFSIM_KERNEL void batchnorm_moments(const float* x, std::size_t rows, std::size_t c, double* mean, double* var) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * c;
    for (std::size_t j = 0; j < c; ++j) mean[j] += row[j];
  }
  for (std::size_t j = 0; j < c; ++j) mean[j] /= static_cast<double>(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * c;
    for (std::size_t j = 0; j < c; ++j) {
      const double d = row[j] - mean[j];
      var[j] += d * d;
    }
  }
  for (std::size_t j = 0; j < c; ++j) var[j] /= static_cast<double>(rows);
}

MFSIM_KERNEL void batchnorm_normalize(float* x, float* xhat, std::size_t rows, std::size_t c, const double* mean,
                                      const float* inv_std, const float* gamma, const float* beta) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* xr = x + r * c;
    float* hr = xhat + r * c;
    for (std::size_t j = 0; j < c; ++j) {
      const float t = static_cast<float>((xr[j] - mean[j]) * inv_std[j]);
      hr[j] = t;
      xr[j] = gamma[j] * t + beta[j];
    }
  }
}

MFSIM_KERNEL void batchnorm_grad_sums(const float* dy, const float* xhat, std::size_t rows, std::size_t c,
                                      double* sum_dy, double* sum_dy_xhat) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* dr = dy + r * c;
    const float* hr = xhat + r * c;
    for (std::size_t j = 0; j < c; ++j) {
      sum_dy[j] += dr[j];
      sum_dy_xhat[j] += static_cast<double>(dr[j]) * hr[j];
    }
  }
}

MFSIM_KERNEL void batchnorm_grad_apply(float* dy, const float* xhat, std::size_t rows, std::size_t c,
                                       const float* scale, const double* mean_dy, const double* sum_dy_xhat, double n) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* dr = dy + r * c;
    const float* hr = xhat + r * c;
    for (std::size_t j = 0; j < c; ++j) dr[j] = static_cast<float>(scale[j] * (dr[j] - mean_dy[j] - hr[j] * sum_dy_xhat[j] / n));
  }
}

}  // namespace mfsim
