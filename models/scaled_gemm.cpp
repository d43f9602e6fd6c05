#include "models/scaled_gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace mfsim {

namespace {

// The least and greatest exponent of the groups of one operand holding a non-zero element.
// rows x cols row-major; `outer_rows`: the groups run along rows' K (A: m x k) or along
// columns' K (B: k x n).
bool group_range(const std::int32_t* v, std::int64_t rows, std::int64_t cols, bool a_side, const ScaleGroups& g,
                 std::int64_t k, int* lo, int* hi) {
  bool any = false;
  *lo = INT_MAX;
  *hi = INT_MIN;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      if (v[r * cols + c] == 0) continue;
      const int x = a_side ? g.at(r, c, k) : g.at(c, r, k);
      *lo = std::min(*lo, x);
      *hi = std::max(*hi, x);
      any = true;
    }
  }
  return any;
}

}  // namespace

bool scaled_lsb(std::int64_t m, std::int64_t n, std::int64_t k, const std::int32_t* a, const ScaleGroups& ga,
                const std::int32_t* b, const ScaleGroups& gb, std::int64_t max_term, ScaledLsb* out, std::string* why) {
  *out = ScaledLsb{};
  int lo_a = 0, hi_a = 0, lo_b = 0, hi_b = 0;
  if (!group_range(a, m, k, true, ga, k, &lo_a, &hi_a) || !group_range(b, k, n, false, gb, k, &lo_b, &hi_b)) {
    return true;  // a zero operand: every output is 0
  }
  out->min_a = lo_a;
  out->min_b = lo_b;
  out->lsb = lo_a + lo_b;
  out->span = (hi_a - lo_a) + (hi_b - lo_b);
  // k max_term 2^span < 2^63, in logarithms with a margin of rounding.
  const double bits = std::log2(static_cast<double>(k)) + std::log2(static_cast<double>(max_term)) + out->span;
  if (bits >= 62.999) {
    if (why != nullptr) {
      *why = fmt::format("the groups' exponents span {} octaves: K {} products of up to {} need {:.1f} bits, more "
                         "than the 64-bit aligned accumulator holds",
                         out->span, k, max_term, bits + 1);
    }
    return false;
  }
  return true;
}

void scaled_gemm_ref(std::int64_t m, std::int64_t n, std::int64_t k, const std::int32_t* a, const ScaleGroups& ga,
                     const std::int32_t* b, const ScaleGroups& gb, const ScaledLsb& lsb, std::int64_t* c) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      std::int64_t acc = 0;
      for (std::int64_t kk = 0; kk < k; ++kk) {
        const std::int64_t p = std::int64_t{a[i * k + kk]} * b[kk * n + j];
        if (p == 0) continue;
        const int sh = (ga.at(i, kk, k) - lsb.min_a) + (gb.at(j, kk, k) - lsb.min_b);
        acc += p * (std::int64_t{1} << sh);
      }
      c[i * n + j] = acc;
    }
  }
}

float aligned_to_float(std::int64_t acc, int lsb) {
  const std::int64_t lim = std::int64_t{1} << 53;
  if (acc > -lim && acc < lim) return static_cast<float>(std::ldexp(static_cast<double>(acc), lsb));
  return std::ldexp(static_cast<float>(acc), lsb);
}

bool scale_block_allowed(std::int64_t block, std::int64_t k) {
  return block == k || (block >= 16 && block < k && (block & (block - 1)) == 0);
}

bool power_of_two_exponent(float scale, int* e) {
  int ex = 0;
  if (std::frexp(scale, &ex) != 0.5f) return false;
  *e = ex - 1;
  return true;
}

std::int64_t scaled_chunk_length(std::int64_t k, std::int64_t block_a, std::int64_t block_b) {
  std::int64_t len = k;
  for (std::int64_t b : {block_a, block_b}) {
    if (b > 0) len = std::min(len, b);
  }
  return len;
}

std::int64_t scaled_chunks(std::int64_t k, std::int64_t block_a, std::int64_t block_b) {
  const std::int64_t len = scaled_chunk_length(k, block_a, block_b);
  return (k + len - 1) / len;
}

}  // namespace mfsim
