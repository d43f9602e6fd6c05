// Finer power-of-two scales (docs/method.md section 10; docs/trace-format.md, "scale_block"):
// an operand of a GEMM whose elements carry the scale exponent of their group, a run of
// `block` consecutive elements along the reduction dimension K of one row of A (M x K) or one
// column of B (K x N). block = K is one scale per row of A or column of B ("outer" scales);
// block 0 is the one scale of the tensor.
//
// The arithmetic (the project's definition): each element is an integer v on its group's grid,
// value v 2^x with x the group's exponent (PoT4: v = +-2^(m-1) and x = E - 6; INT8 with a
// power-of-two scale: v = q and x = the scale's exponent). The GEMM's result is exact: an integer
// accumulator whose least significant bit weighs 2^L, L = (the least x of A's groups that hold
// a non-zero element) + (the same of B's), so every product v_a v_b 2^(x_a + x_b - L) is an
// integer (a left shift, never a truncation). The hardware (docs/energy-accounting.md, "Finer
// scales") sums each block's products in the PE's integer accumulator as usual, then shifts the
// block's sum by x_a + x_b - L and adds it into a 64-bit aligned accumulator: the same integer.
// A GEMM whose largest possible sum does not fit in 63 bits cannot be represented.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mfsim {

// The exponents of one operand's groups. A (M x K): group (i, b) covers row i, k in
// [b block, (b+1) block); B (K x N): group (j, b) covers column j, k in the same range.
struct ScaleGroups {
  std::int64_t block = 0;     // elements per group along K; 0: one exponent for the tensor
  int tensor_exp = 0;         // block 0: the exponent x of every element
  std::vector<int> exps;      // block > 0: outer x blocks(K) exponents, outer-major
  std::int64_t blocks(std::int64_t k) const { return block > 0 ? (k + block - 1) / block : 1; }
  int at(std::int64_t outer, std::int64_t kk, std::int64_t k) const {
    return block > 0 ? exps[static_cast<std::size_t>(outer * blocks(k) + kk / block)] : tensor_exp;
  }
};

// The accumulator's LSB exponent L of C = A . B (shape m x n x k, A and B row-major integers on
// their grids), and the exponents' offsets from it: x_a - min_a and x_b - min_b, with
// L = min_a + min_b over groups holding a non-zero element (L = 0, offsets 0, when either
// operand is all zero). `max_term` bounds |v_a v_b|. Returns false (and sets *why) when the
// largest possible sum, k max_term 2^(span_a + span_b), reaches 2^63.
struct ScaledLsb {
  int lsb = 0;
  int min_a = 0, min_b = 0;
  int span = 0;  // (max_a - min_a) + (max_b - min_b)
};
bool scaled_lsb(std::int64_t m, std::int64_t n, std::int64_t k, const std::int32_t* a, const ScaleGroups& ga,
                const std::int32_t* b, const ScaleGroups& gb, std::int64_t max_term, ScaledLsb* out, std::string* why);

// The exact result c[m x n] (integers at 2^L) of the reference loop: every product
// v_a v_b << (x_a - min_a + x_b - min_b), summed in ascending k.
void scaled_gemm_ref(std::int64_t m, std::int64_t n, std::int64_t k, const std::int32_t* a, const ScaleGroups& ga,
                     const std::int32_t* b, const ScaleGroups& gb, const ScaledLsb& lsb, std::int64_t* c);

// acc 2^lsb rounded to FP32 once (to nearest, ties to even): exact through binary64 when
// |acc| < 2^53, else from acc's own single rounding to FP32 (then an exact power-of-two scaling).
float aligned_to_float(std::int64_t acc, int lsb);

// Whether `block` (> 0) is a group length the format allows for reduction length k: k itself, or a
// power of two of at least 16 below it (so the two operands' blocks nest, and each chunk is long
// enough to hide its alignment).
bool scale_block_allowed(std::int64_t block, std::int64_t k);
// The exponent e of a power-of-two scale 2^e; false when `scale` is not a power of two.
bool power_of_two_exponent(float scale, int* e);

// The longest K-chunk the hardware aligns per output: the smaller of the operands' blocks (0: no
// blocks), or K. The number of chunks per output: K cut at both operands' group boundaries (blocks
// nest), 1 when neither has blocks.
std::int64_t scaled_chunk_length(std::int64_t k, std::int64_t block_a, std::int64_t block_b);
std::int64_t scaled_chunks(std::int64_t k, std::int64_t block_a, std::int64_t block_b);

}  // namespace mfsim
