// ALS-POTQ and INT8 quantizers of the functional training core (docs/training-core.md).
//
// ALS-POTQ (project definition, docs/method.md sections 4 to 7):
//   - adaptive layer-wise scale: E from the tensor's largest magnitude each step (exponent
//     extraction and comparisons), then offset by rho <= 0 (PRC);
//   - activations and weights: deterministic rounding with threshold t (activations sqrt(2),
//     weights t chosen by WBC); errors: stochastic rounding, unbiased in the linear domain;
//   - PRC: rho in {0, -1, ..., -(candidates-1)} chosen by PrcCriterion (default: the least
//     sum |x - Q(x)|);
//   - WBC: the t on the 1/1024 grid of [1, 2) (ten bisection steps' resolution) whose
//     sum |Q(w)| is closest to sum |w|.
// No multiplication is used: frexp/ldexp, comparisons, additions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "models/apot.h"
#include "models/number_format.h"
#include "models/pot4.h"

namespace mfsim {

struct Pot4Tensor {
  std::vector<Pot4Code> codes;
  int scale_exp = 0;
  int rho = 0;              // PRC offset applied to the ALS exponent
  double threshold = 1.41421356237309515;  // deterministic rounding threshold used
};

// PRC's choice among the candidate offsets rho in {0, -1, ..., -(candidates-1)}:
//   l1     the least sum |x - Q(x)| (the project's definition)
//   mse    the least sum (x - Q(x))^2
//   range  the most clipping offset that clips at most 0.5% of the elements (|x| above 2^(E+rho))
enum class PrcCriterion : std::uint8_t { kL1, kMse, kRange };

struct PotqOptions {
  bool prc = true;
  int prc_candidates = 3;
  PrcCriterion prc_criterion = PrcCriterion::kL1;
  bool wbc = false;         // weights only
  int wbc_iterations = 8;
  bool error_scale_floor = false;  // errors: E = floor(log2 max) (clips the top octave) instead of ceil
};

// Largest |x| (NaN-free input assumed; NaN/inf make the tensor "non-finite").
float max_abs(const float* x, std::size_t n, bool* finite);

// Deterministic PoT4 quantization (activations with wbc = false, weights with wbc = true).
Pot4Tensor potq_deterministic(const float* x, std::size_t n, const PotqOptions& opt);

// Stochastic PoT4 quantization of errors; `key` seeds the counter-based random numbers.
Pot4Tensor potq_stochastic(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key);

// The same two quantizations writing each element's grid integer pot4_int(code) as a float to
// ints[0..n) instead of its code (the training core's GEMM operand; one pass less); the
// returned tensor has the scale, rho and threshold and no codes.
Pot4Tensor potq_deterministic_ints(const float* x, std::size_t n, const PotqOptions& opt, float* ints);
Pot4Tensor potq_stochastic_ints(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key, float* ints);

// One stochastic rounding of x to a PoT4 code under scale E (exposed for tests).
Pot4Code pot4_round_stochastic(float x, int scale_exp, float u);

// Sum of |Q(x)| for deterministic rounding at (E, t), used by WBC (exposed for tests).
double pot4_abs_sum(const float* x, std::size_t n, int scale_exp, double t);
// PRC's cost of each candidate offset of potq_deterministic (exposed for tests): writes
// cost[0..count) and returns count (1 without PRC; then cost[0] = 0).
int potq_candidate_costs(const float* x, std::size_t n, const PotqOptions& opt, double* cost);
// WBC's thresholds for the scale exponents es[0..count), as potq_deterministic computes them
// (exposed for tests): for each, the threshold 1 + j/1024 whose sum |Q(x)| is closest to sum |x|.
void wbc_thresholds(const float* x, std::size_t n, const int* es, int count, double* out);

// Symmetric integers in [-qmax, qmax] with a per-tensor scale (v = q * scale): INT8 (qmax 127)
// and INT4 (qmax 7). Nearest (ties to even) for activations and weights, stochastic for errors.
struct Int8Tensor {
  std::vector<std::int8_t> q;
  float scale = 1.0f;
};
Int8Tensor int8_nearest(const float* x, std::size_t n, int qmax = 127);
Int8Tensor int8_stochastic(const float* x, std::size_t n, std::uint64_t key, int qmax = 127);

// The same integers with a power-of-two scale, scale = 2^scale_exp with scale_exp the least
// integer such that qmax 2^scale_exp >= max|x| (0 for an all-zero tensor): scaling is an exponent
// subtraction and dequantization an exponent add, so a product of such an integer with a PoT4
// operand is a shift and the GEMM stays multiplication-free (the shift-add PE, sim/pe/shift.cpp).
// Nearest (ties to even) for activations and weights, stochastic (unbiased) for errors.
struct IntPot2Tensor {
  std::vector<std::int8_t> q;
  int scale_exp = 0;
};
IntPot2Tensor int_pot2_nearest(const float* x, std::size_t n, int qmax = 127);
IntPot2Tensor int_pot2_stochastic(const float* x, std::size_t n, std::uint64_t key, int qmax = 127);
// The scale exponent int_pot2_* choose for a largest magnitude m (exposed for tests).
int int_pot2_scale_exp(float m, int qmax);

// Two-term power-of-two (additive PoT, APoT) weights: integers whose magnitude is 0, 2^i or
// 2^i + 2^j (0 <= j < i <= 6), at most 96, with a power-of-two scale 2^scale_exp (the least with
// 96 2^scale_exp >= max|x|), rounded to the nearest level (a tie to the smaller magnitude). Each
// product with an INT8 value is two shifts and an add, with a PoT4 value two exponent adds: no
// multiplier. 29 levels: a sign, two 3-bit exponents.
IntPot2Tensor apot_nearest(const float* x, std::size_t n);
// The same levels and scale with stochastic rounding (errors): between adjacent levels lo < |x| <
// hi, hi with probability (|x| - lo) / (hi - lo), so the rounding is unbiased; `key` seeds it.
IntPot2Tensor apot_stochastic(const float* x, std::size_t n, std::uint64_t key);

// FP8 (E4M3 or E5M2) with a power-of-two per-tensor scale: v = q * 2^scale_exp, where
// scale_exp = ceil(log2(max|x| / max_fmt)) puts the largest magnitude at or below the format's
// largest value; q rounded to nearest (ties to even). BF16: no scale, nearest (ties to even).
// `q` holds the format's values as floats (exact).
struct FloatTensor {
  std::vector<float> q;
  int scale_exp = 0;
};
FloatTensor fp8_quantize(NumFormat f, const float* x, std::size_t n);
FloatTensor bf16_quantize(const float* x, std::size_t n);

}  // namespace mfsim
