#include "training/exact_gemm.h"

#include <cblas.h>

#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace mfsim {

void sgemm(bool ta, bool tb, int m, int n, int k, const float* a, const float* b, float* c, bool accumulate) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
              ta ? m : k, b, tb ? k : n, accumulate ? 1.0f : 0.0f, c, n);
}

void exact_int_gemm(bool ta, bool tb, int m, int n, int k, const float* a, const float* b, double max_product,
                    double* c) {
  const int chunk = std::max(1, static_cast<int>(16777215.0 / std::max(1.0, max_product)));
  std::vector<float> part(static_cast<std::size_t>(m) * n);
  std::fill(c, c + static_cast<std::size_t>(m) * n, 0.0);
  for (int k0 = 0; k0 < k; k0 += chunk) {
    const int kc = std::min(chunk, k - k0);
    // Sub-matrices of the K range [k0, k0 + kc).
    const float* ap = ta ? a + static_cast<std::size_t>(k0) * m : a + k0;
    const float* bp = tb ? b + k0 : b + static_cast<std::size_t>(k0) * n;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, kc, 1.0f, ap,
                ta ? m : k, bp, tb ? k : n, 0.0f, part.data(), n);
    for (std::size_t i = 0; i < part.size(); ++i) c[i] += static_cast<double>(part[i]);
  }
}

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }

std::string blas_info() {
  std::string s = openblas_get_config();
  const char* replaced = std::getenv(kBlasFallbackEnv);
  if (replaced != nullptr && *replaced != '\0') s += std::string(" (core chosen by mfsim; OpenBLAS picked ") + replaced + ")";
  return s;
}

std::string blas_core() { return openblas_get_corename(); }

std::string preferred_blas_core() {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced != nullptr && *forced != '\0') return "";
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return "";
  const std::string core = blas_core();
  // OpenBLAS's x86-64 cores with AVX2 kernels: its own choice is fine.
  for (const char* good : {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen", "Excavator"}) {
    if (strcasecmp(core.c_str(), good) == 0) return "";
  }
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  return avx512 ? "SkylakeX" : "Haswell";
}

}  // namespace mfsim
