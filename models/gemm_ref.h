// Reference GEMMs: the arithmetic every simulator and fast path must match bit for bit.
//
// All compute C[M x N] = A[M x K] . B[K x N] with A, B, C row-major and, for every output
// element, the products accumulated in ascending k. That order is the one every array
// dataflow of sim/ realises, and it matters where rounding (FP32) or saturation can occur.
//   pot4:  MF-MAC products (models/mfmac.h) into an integer accumulator of AccumulatorSpec.
//   int8:  int8 x int8 products into an integer accumulator (INT32 by default).
//   fp32:  acc = fl(acc + fl(a*b)) (separate multiply and add) or acc = fma(a, b, acc),
//          starting from +0.0f.
#pragma once

#include <cstdint>

#include "models/accumulator.h"
#include "models/pot4.h"

namespace mfsim {

struct GemmShape {
  std::int64_t m = 0, n = 0, k = 0;
  std::uint64_t macs() const {
    return static_cast<std::uint64_t>(m) * static_cast<std::uint64_t>(n) *
           static_cast<std::uint64_t>(k);
  }
};

struct GemmStats {
  std::uint64_t products = 0;     // M*N*K
  std::uint64_t zero_gated = 0;   // products with a zero operand (no accumulate)
  std::uint64_t saturations = 0;  // adds that clamped (OverflowPolicy::kSaturate only)
};

// Throws AccumulatorOverflow under OverflowPolicy::kError.
GemmStats gemm_pot4_ref(const GemmShape& s, const Pot4Code* a, const Pot4Code* b,
                        const AccumulatorSpec& acc, std::int64_t* c);

GemmStats gemm_int8_ref(const GemmShape& s, const std::int8_t* a, const std::int8_t* b,
                        const AccumulatorSpec& acc, std::int64_t* c);

void gemm_fp32_ref(const GemmShape& s, const float* a, const float* b, bool fma, float* c);

}  // namespace mfsim
