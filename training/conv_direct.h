// Direct FP32 convolution kernels of the training core (docs/training-core.md, "The direct
// convolution"): a convolution's three GEMMs computed from the NHWC tensors themselves, without
// the im2col matrix, its packed copies or the col2im pass that the BLAS path needs.
//
// For FP32 operands each output element is computed in one fixed order, the one OpenBLAS's level-3 driver and its
// AVX-512 (SkylakeX, Cooperlake) kernels use: the reduction of length n is cut into blocks by
// reduction_blocks(n); within a block the products are summed in index order by fused
// multiply-adds into an accumulator that starts at +0; the blocks' sums are added in order to the
// output, which starts at +0. The backward-data pass then adds each output pixel's contributions
// to the input gradient in pixel order, as col2im does. The padding's zero products are added as
// the BLAS path adds them (skipping them would change a sum whose other operand is infinite or
// NaN: 0 x Inf is NaN). The result is the same bits on every ISA (scalar, AVX2, AVX-512: wider
// vectors of the same per-element operations). For an integer arithmetic's operands (integers
// held in floats, training/exact_gemm.h) every sum is exact, so any order gives the BLAS path's
// bits, under every BLAS core; the training core takes these kernels for them without a check.
//
// Whether the BLAS sums in this order depends on its kernel (OpenBLAS's Haswell kernel does not in
// some edge tiles): ConvPathChooser checks it on each shape before it lets the training core use
// these kernels in place of the BLAS, so the training results are the BLAS path's bits.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "training/layer_kernels.h"

namespace mfsim {

// The blocks (lengths, in order) that a reduction of length n is summed in: OpenBLAS's level-3
// rule with its SGEMM block length q (320 in its Cooperlake kernels, 448 in SkylakeX's) and
// unroll 16: blocks of q while at least 2q remain; a remainder between q and 2q is cut in two, the
// first part rounded up to a multiple of the unroll.
constexpr int kDefaultReductionBlock = 320;
std::vector<int> reduction_blocks(int n, int q = kDefaultReductionBlock, int unroll = 16);

// The block length q of the BLAS's level-3 driver, measured: the first of the values OpenBLAS's
// x86-64 kernels use whose reduction_blocks reproduce the bits of two long sgemm reductions;
// 0 when none does (its kernels sum in another order).
int measured_reduction_block();

// The zero-padded copy of an NHWC input: n x (h + 2 pad) x (w + 2 pad) x c.
std::size_t padded_size(const ConvShape& s);
void pad_input(const ConvShape& s, const float* x, float* xpad);
// x = the interior of xpad (the inverse of pad_input's copy).
void crop_input(const ConvShape& s, const float* xpad, float* x);

// y (n p q x cout, row-major) = the convolution of the padded input with w (k k c x cout,
// row-major: the BLAS path's weight matrix); what sgemm(cols, w) gives.
void conv_forward_direct(const ConvShape& s, int cout, const float* xpad, const float* w, float* y,
                         int q = kDefaultReductionBlock);
// dxpad (padded_size, holding its starting values) += the input gradient of g (n p q x cout):
// for each output pixel in order, its row of g times w^T added to the taps it read; what
// sgemm(g, w^T) followed by col2im gives (on the padded tensor: crop it after).
// `factor`: each sum is multiplied by it before the col2im additions (an integer GEMM's
// dequantization, IntGemmPlan::as_multiplier); 1 leaves the sums as they are.
void conv_backward_data_direct(const ConvShape& s, int cout, const float* g, const float* w, float* dxpad,
                               int q = kDefaultReductionBlock, float factor = 1.0f);
// dw (k k c x cout) = the weight gradient cols^T g, summed over the output pixels in
// reduction_blocks(n p q).
void conv_backward_weight_direct(const ConvShape& s, int cout, const float* xpad, const float* g, float* dw,
                                 int q = kDefaultReductionBlock);
// Integer-valued operands (an integer arithmetic's grids): dw (k k c x cout, in double) = the exact
// weight-gradient sums, in chunks of `chunk` output pixels whose float sums are exact (chunk times
// the largest product below 2^24), added in double: exact, so the same values in any order.
void conv_backward_weight_exact(const ConvShape& s, int cout, const float* xpad, const float* g, int chunk, double* dw);

// The instruction set the kernels run with: the widest this machine has ("avx512", "avx2" or
// "scalar"), unless conv_direct_use_isa chose another (tests: every build gives the same bits).
const char* conv_direct_isa();
// Selects "scalar", "avx2", "avx512" or "best"; false (and no change) when this machine lacks it.
bool conv_direct_use_isa(const std::string& isa);

// Which path a convolution's GEMMs take (mfsim train --conv-path).
enum class ConvPath {
  kAuto,    // the direct kernels where they give the BLAS's bits (checked per shape), else the BLAS
  kBlas,    // always im2col + BLAS sgemm + col2im
  kDirect,  // always the direct kernels (their order, whatever the BLAS's)
};
bool parse_conv_path(const std::string& s, ConvPath* p);
const char* to_string(ConvPath p);

// The per-run choice of path for each convolution GEMM shape. The kernels use the BLAS's
// measured block length (measured_reduction_block; kDefaultReductionBlock when it has none). Under
// kAuto the first use of a shape runs both paths on pseudo-random operands of that shape and keeps
// the direct kernels only when every output bit agrees.
class ConvPathChooser {
 public:
  enum Gemm { kForward = 0, kBackwardData = 1, kBackwardWeight = 2 };
  explicit ConvPathChooser(ConvPath path) : path_(path) {}
  bool direct(Gemm gemm, const ConvShape& s, int cout);
  ConvPath path() const { return path_; }
  // The block length the kernels use (measured on first use).
  int block();
  // Records that an integer arithmetic's GEMM of this shape took the direct kernels (exact: no
  // check) or the BLAS path (a reduction too long for one exact float chunk), for the counts.
  void record_exact(Gemm gemm, const ConvShape& s, int cout, bool direct);
  // Shapes (geometry, batch, output channels, GEMM; FP32 and integer counted apart) so far on each
  // path.
  int direct_shapes() const;
  int blas_shapes() const;

 private:
  ConvPath path_;
  int block_ = -1;  // -1: not measured yet
  std::map<std::tuple<int, int, int, int, int, int, int, int, int>, bool> chosen_;
};

// Runs both paths on pseudo-random operands of this shape; true when every output bit agrees.
bool conv_direct_matches_blas(ConvPathChooser::Gemm gemm, const ConvShape& s, int cout, int q);

}  // namespace mfsim
