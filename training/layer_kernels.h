// The loops of the training core's layers that are not GEMMs (training/nn.cpp): im2col and
// col2im of a convolution, ReLU and the residual block's add-and-ReLU. Each is written for speed
// (contiguous runs, no zero-filling of what is then overwritten) and computes exactly what the
// plain loop documented with it computes, bit for bit: the same operations on the same values in
// the same order per element (tests/test_layer_kernels.cpp holds them to those loops). On x86-64
// with GCC each is also compiled for AVX2 and picked at run time: wider vectors of the same
// IEEE operations (no contraction into FMA: -ffp-contract=off; no reordered sums), so the same bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mfsim {

// The geometry of a convolution over a batch of NHWC images: n x h x w x c inputs, a k x k kernel
// with stride and zero padding, p x q outputs per image.
struct ConvShape {
  int n, h, w, c, k, stride, pad;
  int p() const { return (h + 2 * pad - k) / stride + 1; }
  int q() const { return (w + 2 * pad - k) / stride + 1; }
};

// cols[(b, y, x) row][(r, s, ch) column] = in[b][y stride + r - pad][x stride + s - pad][ch], or 0
// where that falls in the padding; a row has k k c elements, and every element is written.
void im2col(const ConvShape& s, const float* in, float* cols);

// The adjoint: for every row (b, y, x) in order and every tap (r, s) in order that falls inside the
// input, dx[b][y stride + r - pad][x stride + s - pad][ch] += cols[row][(r, s, ch)]. dx holds the
// starting values (zeros for a gradient); each element receives its additions in that order.
void col2im(const ConvShape& s, const float* cols, float* dx);

// ReLU: mask[i] = x[i] > 0, x[i] = mask[i] ? x[i] : 0 (NaN and -0 become +0).
void relu_forward(float* x, std::uint8_t* mask, std::size_t n);
// The residual block's output: v = x[i] + s[i] (FP32), mask[i] = v > 0, x[i] = mask[i] ? v : 0.
void add_relu_forward(float* x, const float* s, std::uint8_t* mask, std::size_t n);
// dy[i] = mask[i] ? dy[i] : 0.
void relu_backward(float* dy, const std::uint8_t* mask, std::size_t n);

// Batch normalisation of rows x c values (NHWC: channel j is every c-th value). Sums are in
// double, per channel over the rows in order.
// mean[j] = sum_r x / rows; var[j] = sum_r (x - mean[j])^2 / rows (double(x) - mean[j] squared).
void batchnorm_moments(const float* x, std::size_t rows, std::size_t c, double* mean, double* var);
// xhat = float((double(x) - mean[j]) * inv_std[j]); x = gamma[j] * xhat + beta[j] (FP32), in place.
void batchnorm_normalize(float* x, float* xhat, std::size_t rows, std::size_t c, const double* mean,
                         const float* inv_std, const float* gamma, const float* beta);
// sum_dy[j] += dy; sum_dy_xhat[j] += double(dy) * xhat (both start at the caller's values).
void batchnorm_grad_sums(const float* dy, const float* xhat, std::size_t rows, std::size_t c, double* sum_dy,
                         double* sum_dy_xhat);
// dy = float(scale[j] * (double(dy) - mean_dy[j] - double(xhat) * sum_dy_xhat[j] / n)), in place.
void batchnorm_grad_apply(float* dy, const float* xhat, std::size_t rows, std::size_t c, const float* scale,
                          const double* mean_dy, const double* sum_dy_xhat, double n);

}  // namespace mfsim
