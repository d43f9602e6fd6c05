#include "models/gemm_ref.h"

#include <cmath>

#include "models/mfmac.h"

namespace mfsim {

GemmStats gemm_pot4_ref(const GemmShape& s, const Pot4Code* a, const Pot4Code* b,
                        const AccumulatorSpec& spec, std::int64_t* c) {
  GemmStats st;
  st.products = s.macs();
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      std::int64_t acc = 0;
      for (std::int64_t k = 0; k < s.k; ++k) {
        MfMacProduct p = mfmac_product(a[i * s.k + k], b[k * s.n + j]);
        if (p.zero) {
          ++st.zero_gated;
          continue;
        }
        if (accumulate(acc, p.term(), spec, i, j, k)) ++st.saturations;
      }
      c[i * s.n + j] = acc;
    }
  }
  return st;
}

GemmStats gemm_int8_ref(const GemmShape& s, const std::int8_t* a, const std::int8_t* b,
                        const AccumulatorSpec& spec, std::int64_t* c) {
  GemmStats st;
  st.products = s.macs();
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      std::int64_t acc = 0;
      for (std::int64_t k = 0; k < s.k; ++k) {
        std::int64_t prod = std::int64_t{a[i * s.k + k]} * std::int64_t{b[k * s.n + j]};
        if (prod == 0) ++st.zero_gated;
        if (accumulate(acc, prod, spec, i, j, k)) ++st.saturations;
      }
      c[i * s.n + j] = acc;
    }
  }
  return st;
}

void gemm_fp32_ref(const GemmShape& s, const float* a, const float* b, bool fma, float* c) {
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      float acc = 0.0f;
      for (std::int64_t k = 0; k < s.k; ++k) {
        float x = a[i * s.k + k];
        float y = b[k * s.n + j];
        if (fma) {
          acc = std::fma(x, y, acc);
        } else {
          float prod = x * y;  // rounded to float: -std=c++17 disables FP contraction
          acc = acc + prod;
        }
      }
      c[i * s.n + j] = acc;
    }
  }
}

}  // namespace mfsim
