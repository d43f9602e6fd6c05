#include "models/quantizer.h"

#include "models/minifloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "models/int8.h"
#include "models/rng.h"

// The hot element loops get an AVX2 clone beside the baseline one, chosen at load time (GCC's
// target_clones; the same operations either way, so results are identical).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__)  // ifunc
#define MFSIM_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MFSIM_VECTOR_CLONES
#endif

namespace mfsim {

namespace {
constexpr int kMaxPrcCandidates = 16;  // the candidate arrays below hold this many
constexpr double kSqrt2 = 1.41421356237309515;
}

MFSIM_VECTOR_CLONES float max_abs(const float* x, std::size_t n, bool* finite) {
  // On the bits: |x| orders like its bit pattern (vectorisable). Without a NaN that is the
  // answer; a NaN (bits above infinity's) takes the loop below, which skips NaNs.
  std::uint32_t top = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t b;
    std::memcpy(&b, &x[i], 4);
    b &= 0x7FFFFFFFu;
    top = b > top ? b : top;
  }
  if (top <= 0x7F800000u) {
    if (finite != nullptr) *finite = top < 0x7F800000u;
    float m;
    std::memcpy(&m, &top, 4);
    return m;
  }
  float m = 0.0f;
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) {
    float a = std::fabs(x[i]);
    ok = ok && std::isfinite(a);
    m = a > m ? a : m;
  }
  if (finite != nullptr) *finite = ok;
  return m;
}

namespace {

// Fast exact PoT4 rounding on the bits of a float (the same result as pot4_quantize; tested):
// |x| = 1.mant * 2^k; round up when 1.mant >= t, i.e. mant >= t_mant = ceil((t - 1) * 2^23).
inline std::uint32_t float_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

inline std::uint32_t threshold_mant(double t) {
  return static_cast<std::uint32_t>(std::ceil(std::ldexp(t - 1.0, 23)));
}

inline Pot4Code fast_quantize(float x, int e, std::uint32_t t_mant) {
  const std::uint32_t b = float_bits(x);
  const int exp = static_cast<int>((b >> 23) & 0xFFu);
  const bool neg = (b >> 31) != 0;
  if ((b & 0x7FFFFFFFu) == 0) return 0;
  if (exp == 0) return pot4_quantize(x, e, 1.0 + std::ldexp(static_cast<double>(t_mant), -23));  // subnormal
  if (exp == 255) return (b & 0x7FFFFFu) != 0 ? Pot4Code{0} : pot4_encode(neg, kPot4MaxMag);
  const int level = exp - 127 + ((b & 0x7FFFFFu) >= t_mant ? 1 : 0);
  int m = level - e + 7;
  if (m > 7) m = 7;
  if (m < 1) return 0;
  return pot4_encode(neg, static_cast<unsigned>(m));
}

// |value| of a code under scale E, built from exponent bits (E + m - 7 >= -126: normal).
inline float fast_magnitude(Pot4Code c, int e) {
  if (pot4_is_zero(c)) return 0.0f;
  const std::uint32_t b = static_cast<std::uint32_t>(e + static_cast<int>(pot4_mag(c)) - 7 + 127) << 23;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Whether x[0..n) holds a subnormal, an infinity or a NaN (zeros and normal numbers take the
// blocked, branch-free paths below; a block with one of these takes the general routine).
inline bool has_special(const float* x, std::size_t n) {
  std::uint32_t special = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint32_t b = float_bits(x[j]) & 0x7FFFFFFFu;
    const std::uint32_t exp = b >> 23;
    special |= static_cast<std::uint32_t>(exp == 255) | (static_cast<std::uint32_t>(exp == 0) & static_cast<std::uint32_t>(b != 0));
  }
  return special != 0;
}

// Q(|x|)'s bits for |x|'s bits b (zero or normal): deterministic rounding at scale exponent ec
// and threshold t_mant, without branches (the same value as fast_magnitude(fast_quantize(..))).
inline std::uint32_t quantized_bits(std::uint32_t b, int ec, std::uint32_t t_mant) {
  const int level = static_cast<int>(b >> 23) - 127 + ((b & 0x7FFFFFu) >= t_mant ? 1 : 0);
  const int m = level - ec + 7;
  const int qexp = m > 7 ? ec : level;
  return (m < 1 || b == 0) ? 0u : static_cast<std::uint32_t>(qexp + 127) << 23;
}

// sum |x - Q(x)| (the PRC criterion; for the stochastic case a deterministic proxy) for each
// candidate c < count: scale exponent es[c] and rounding threshold ts[c] (its mantissa bits),
// in one pass. The range criterion reads es[0] as the top and es[c] = es[0] - c.
//
// any_order: the sums in eight lanes per candidate instead (no add chain through every element;
// what certified_choice() below reads); returns false, leaving err[] undefined, on a block with
// a subnormal, an infinity or a NaN. In element order it always returns true.
MFSIM_VECTOR_CLONES bool quant_errors(const float* x, std::size_t n, const int* es, const std::uint32_t* ts, int count, double* err,
                  PrcCriterion crit, bool any_order = false) {
  for (int c = 0; c < count; ++c) err[c] = 0;
  const int e = es[0];
  if (crit == PrcCriterion::kRange) {
    // The cost of an offset: 0 while it clips at most 0.5% of the elements, and a small
    // preference for the most clipping (finest resolution) such offset; else infinite.
    std::vector<std::size_t> clipped(static_cast<std::size_t>(count), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const float a = std::fabs(x[i]);
      for (int c = 0; c < count; ++c) clipped[static_cast<std::size_t>(c)] += a > std::ldexp(1.0f, e - c) ? 1 : 0;
    }
    for (int c = 0; c < count; ++c) {
      const bool ok = c == 0 || static_cast<double>(clipped[static_cast<std::size_t>(c)]) <= 0.005 * static_cast<double>(n);
      err[c] = ok ? -static_cast<double>(c) : std::numeric_limits<double>::infinity();
    }
    return true;
  }
  // Blocks of elements: the magnitudes |x - Q(x)| of every candidate computed without branches
  // (vectorisable), then summed in element order, exactly as the one-element-at-a-time loop
  // does (the sums, hence PRC's choices, are bit-identical to it). A block holding a subnormal,
  // an infinity or a NaN takes that loop.
  constexpr std::size_t kBlock = 256;
  constexpr std::size_t kLanes = 8;
  float d[kMaxPrcCandidates][kBlock];
  double lane[kMaxPrcCandidates][kLanes] = {};
  const bool mse = crit == PrcCriterion::kMse;
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    const float* xb = x + i0;
    if (has_special(xb, len)) {
      if (any_order) return false;
      for (std::size_t j = 0; j < len; ++j) {
        const float a = std::fabs(xb[j]);
        for (int c = 0; c < count; ++c) {
          const float q = fast_magnitude(fast_quantize(a, es[c], ts[c]), es[c]);
          const double dd = std::fabs(a - q);
          err[c] += mse ? dd * dd : dd;
        }
      }
      continue;
    }
    for (int c = 0; c < count; ++c) {
      const int ec = es[c];
      const std::uint32_t t_mant = ts[c];
      float* dc = d[c];
      for (std::size_t j = 0; j < len; ++j) {
        const std::uint32_t b = float_bits(xb[j]) & 0x7FFFFFFFu;
        const std::uint32_t qb = quantized_bits(b, ec, t_mant);
        float a, q;
        std::memcpy(&a, &b, 4);
        std::memcpy(&q, &qb, 4);
        dc[j] = std::fabs(a - q);
      }
    }
    if (any_order) {
      for (int c = 0; c < count; ++c) {
        double* l = lane[c];
        const float* dc = d[c];
        std::size_t j = 0;
        for (; j + kLanes <= len; j += kLanes) {
          for (std::size_t q = 0; q < kLanes; ++q) {
            const double v = dc[j + q];
            l[q] += mse ? v * v : v;
          }
        }
        for (; j < len; ++j) {
          const double v = dc[j];
          l[0] += mse ? v * v : v;
        }
      }
      continue;
    }
    // The sums in registers (err[] in memory would put a store-to-load round trip on each add);
    // PRC's usual three candidates interleaved, so that their three add chains overlap.
    if (count == 3) {
      double s0 = err[0], s1 = err[1], s2 = err[2];
      const float *d0 = d[0], *d1 = d[1], *d2 = d[2];
      if (mse) {
        for (std::size_t j = 0; j < len; ++j) {
          s0 += static_cast<double>(d0[j]) * static_cast<double>(d0[j]);
          s1 += static_cast<double>(d1[j]) * static_cast<double>(d1[j]);
          s2 += static_cast<double>(d2[j]) * static_cast<double>(d2[j]);
        }
      } else {
        for (std::size_t j = 0; j < len; ++j) {
          s0 += static_cast<double>(d0[j]);
          s1 += static_cast<double>(d1[j]);
          s2 += static_cast<double>(d2[j]);
        }
      }
      err[0] = s0;
      err[1] = s1;
      err[2] = s2;
      continue;
    }
    for (int c = 0; c < count; ++c) {
      double s = err[c];
      const float* dc = d[c];
      if (mse) {
        for (std::size_t j = 0; j < len; ++j) s += static_cast<double>(dc[j]) * static_cast<double>(dc[j]);
      } else {
        for (std::size_t j = 0; j < len; ++j) s += static_cast<double>(dc[j]);
      }
      err[c] = s;
    }
  }
  if (any_order) {
    for (int c = 0; c < count; ++c) {
      double s = 0;
      for (std::size_t q = 0; q < kLanes; ++q) s += lane[c][q];
      err[c] = s;
    }
  }
  return true;
}

// u_n = n u / (1 - n u), u the unit roundoff: the relative error bound of a sum of n - 1 additions
// of terms >= 0, in any order of addition (Higham, Accuracy and Stability of Numerical
// Algorithms, 4.2), for n u < 1/2 (callers keep n far below). Rounded up by 1%.
inline double gamma_bound(double n, double u) { return 1.01 * n * u / (1.0 - n * u); }

// How far apart, relative to the smaller, two sums of the same n terms >= 0 in double can lie:
// the element-order one and one in any order. Each is within gamma_n of the exact sum.
inline double order_bound(std::size_t n) { return 2.0 * gamma_bound(static_cast<double>(n), 0x1p-53); }

// PRC's choice (the first smallest cost, as the element-order loop picks it) from costs summed in
// another order, each within a relative distance g of its element-order sum: the choice when it
// is provably the element-order one (every other cost either an exact tie at 0, which is zero in
// every order, or farther from the smallest than both of their bounds); else -1.
int certified_choice(const double* s, int count, double g) {
  int best = 0;
  for (int c = 0; c < count; ++c) {
    if (!std::isfinite(s[c])) return -1;
    if (s[c] < s[best]) best = c;
  }
  for (int c = 0; c < count; ++c) {
    if (c == best || (s[c] == 0 && s[best] == 0)) continue;
    if (!(s[c] * (1.0 - 2.0 * g) > s[best] * (1.0 + 2.0 * g))) return -1;  // (2x: the roundings of this test)
  }
  return best;
}

// GCC/Clang vector extensions (eight lanes: one AVX2 register, two SSE ones in the baseline clone).
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));

// The L1 costs of three candidates in one pass: each |x - Q(x)| computed as quant_errors does,
// summed in float in eight lanes over chunks of 256 elements, the chunks' lane sums added in
// double. Returns false (err[] undefined) on a chunk with a subnormal, an infinity or a NaN.
// The relative distance of these sums from the element-order ones: l1_fused_bound(n) (a lane
// adds at most 32 terms in float; the double sums add 8 lane sums per chunk of 256 and the last
// n mod 8 elements: at most 8 ceil(n / 256) + 8 <= n / 32 + 16 terms).
inline double l1_fused_bound(std::size_t n) {
  return gamma_bound(32, 0x1p-24) + gamma_bound(static_cast<double>(n / 32 + 16), 0x1p-53) + order_bound(n) / 2;
}
MFSIM_VECTOR_CLONES bool l1_costs3_fused(const float* x, std::size_t n, const int* es, const std::uint32_t* ts, double* err) {
  constexpr int kC = 3;
  constexpr std::size_t kChunk = 256;
  V8i eb[kC], low[kC], t[kC];
  for (int c = 0; c < kC; ++c) {
    const int b = es[c] + 127;  // the scale's biased exponent
    for (int q = 0; q < 8; ++q) {
      eb[c][q] = b;
      low[c][q] = b - 7;  // a level must exceed this to be kept (m >= 1)
      t[c][q] = static_cast<std::int32_t>(ts[c]);
    }
  }
  double acc[kC] = {0, 0, 0};
  std::size_t i0 = 0;
  for (; i0 + 8 <= n; i0 += kChunk) {
    const std::size_t len = std::min(kChunk, n - i0) & ~std::size_t{7};
    V8f lane[kC] = {};
    V8i special = {};
    for (std::size_t j = 0; j < len; j += 8) {
      V8i b;
      std::memcpy(&b, x + i0 + j, 32);
      b &= 0x7FFFFFFF;
      const V8i bexp = b >> 23;  // (b >= 0: a logical shift)
      const V8i mant = b & 0x7FFFFF;
      const V8i nz = b != 0;
      special |= (bexp == 255) | ((bexp == 0) & nz);
      V8f a;
      std::memcpy(&a, &b, 32);
      for (int c = 0; c < kC; ++c) {
        const V8i level = bexp - (mant >= t[c]);  // biased; +1 where rounding up (the mask is -1)
        const V8i qexp = level < eb[c] ? level : eb[c];
        const V8i qb = (qexp << 23) & ((level > low[c]) & nz);
        V8f q;
        std::memcpy(&q, &qb, 32);
        const V8f diff = a - q;
        V8i db;
        std::memcpy(&db, &diff, 32);
        db &= 0x7FFFFFFF;
        V8f d;
        std::memcpy(&d, &db, 32);
        lane[c] += d;
      }
    }
    for (int q = 0; q < 8; ++q) {
      if (special[q] != 0) return false;
    }
    for (int c = 0; c < kC; ++c) {
      for (int q = 0; q < 8; ++q) acc[c] += static_cast<double>(lane[c][q]);
    }
    if (len < kChunk) {
      i0 += len;
      break;
    }
  }
  if (has_special(x + i0, n - i0)) return false;
  for (; i0 < n; ++i0) {  // the last n mod 8 elements, one by one (the same values as above)
    const std::uint32_t b = float_bits(x[i0]) & 0x7FFFFFFFu;
    float a;
    std::memcpy(&a, &b, 4);
    for (int c = 0; c < kC; ++c) {
      const std::uint32_t qb = quantized_bits(b, es[c], ts[c]);
      float q;
      std::memcpy(&q, &qb, 4);
      acc[c] += static_cast<double>(std::fabs(a - q));
    }
  }
  for (int c = 0; c < kC; ++c) err[c] = acc[c];
  return true;
}

// PRC's costs for the choice: summed in another order when that decides the choice provably,
// else in element order (costs[] then holds those sums). Returns the chosen candidate (-1 when
// every cost is NaN).
int prc_choice(const float* x, std::size_t n, const int* es, const std::uint32_t* ts, int count, double* costs,
               PrcCriterion crit) {
  if (crit != PrcCriterion::kRange && n < (std::size_t{1} << 40)) {
    int c = -1;
    if (crit == PrcCriterion::kL1 && count == 3) {
      if (l1_costs3_fused(x, n, es, ts, costs)) c = certified_choice(costs, count, l1_fused_bound(n));
    } else if (quant_errors(x, n, es, ts, count, costs, crit, true)) {
      c = certified_choice(costs, count, order_bound(n));
    }
    if (c >= 0) return c;
  }
  quant_errors(x, n, es, ts, count, costs, crit);
  int best = -1;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c < count; ++c) {
    if (costs[c] < best_err) {
      best_err = costs[c];
      best = c;
    }
  }
  return best;
}

// Where the quantizers put element i, of sign `sign` (a float's sign bit, 0x80000000 or 0) and
// magnitude `mag` (0 to 7; 0 is zero): its code (Pot4Code), or its grid integer pot4_int as a
// float (Out = float), built from its bits: +0, or +-2^(mag-1). Without branches.
template <class Out>
inline void put_mag(Out* o, std::size_t i, std::uint32_t sign, unsigned mag) {
  if constexpr (std::is_same_v<Out, float>) {
    const std::uint32_t v = mag == 0 ? 0u : (sign | ((mag + 126u) << 23));
    std::memcpy(&o[i], &v, 4);
  } else {
    o[i] = static_cast<Pot4Code>(mag == 0 ? 0u : ((sign != 0 ? kPot4SignBit : 0u) | mag));
  }
}
// The same for a code.
template <class Out>
inline void put(Out* o, std::size_t i, Pot4Code c) {
  put_mag(o, i, pot4_negative(c) ? 0x80000000u : 0u, pot4_mag(c));
}

// Deterministic rounding of x[0..n) at scale e and threshold t_mant into out[0..n): codes, or
// their grid integers (the same elements either way).
template <class Out>
MFSIM_VECTOR_CLONES void quantize_into(const float* x, std::size_t n, int e, std::uint32_t t_mant, Out* o) {
  constexpr std::size_t kBlock = 256;
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    const float* xb = x + i0;
    if (has_special(xb, len)) {  // subnormals, infinities or NaNs: the general routine
      for (std::size_t j = 0; j < len; ++j) put(o, i0 + j, fast_quantize(xb[j], e, t_mant));
      continue;
    }
    for (std::size_t j = 0; j < len; ++j) {  // zeros and normal numbers: fast_quantize without branches
      const std::uint32_t b = float_bits(xb[j]);
      const int level = static_cast<int>((b >> 23) & 0xFFu) - 127 + ((b & 0x7FFFFFu) >= t_mant ? 1 : 0);
      int m = level - e + 7;
      m = m > 7 ? 7 : m;
      const bool zero = m < 1 || (b & 0x7FFFFFFFu) == 0;
      put_mag(o, i0 + j, b & 0x80000000u, zero ? 0u : static_cast<unsigned>(m));
    }
  }
}

// 2^k as a double, built from its exponent bits (|k| < 1000).
inline double pow2(int k) {
  const std::uint64_t b = static_cast<std::uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}

// The threshold of every suffix sum: the 1/1024 grid point whose sum |Q| is closest to target.
std::uint32_t closest_threshold(const double* hist, double base, double target) {
  double suffix = 0, best = std::numeric_limits<double>::infinity();
  std::uint32_t best_j = 424;  // sqrt(2) on the grid
  for (int j = 1023; j >= 0; --j) {
    suffix += hist[j];
    const double d = std::fabs(base + suffix - target);
    if (d <= best) {
      best = d;
      best_j = static_cast<std::uint32_t>(j);
    }
  }
  return best_j << 13;
}

// WBC: the threshold t in [1, 2) on the 1/1024 grid (what ten bisection steps reach) whose
// sum |Q(w)| is closest to sum |w|. Sum |Q| as a function of t is a suffix sum of a histogram
// of the weights' mantissas (top ten bits), weighted by the level they may round up from, so
// all 1024 candidates cost one pass over the weights.
std::uint32_t wbc_threshold_mant(const float* x, std::size_t n, int e) {
  std::vector<double> hist(1024, 0.0);
  double base = 0, target = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    target += a;
    const std::uint32_t b = float_bits(a);
    const int exp = static_cast<int>(b >> 23);
    if (exp == 0 || exp == 255) continue;
    const int k = exp - 127;
    const std::uint32_t bin = (b & 0x7FFFFFu) >> 13;
    if (k >= e) {
      base += pow2(e);
    } else if (k == e - 7) {
      hist[bin] += pow2(e - 6);
    } else if (k > e - 7) {
      base += pow2(k);
      hist[bin] += pow2(k);
    }
  }
  return closest_threshold(hist.data(), base, target);
}


// sum |x| in double, element by element (the add chain kept in a register).
__attribute__((noinline)) double abs_sum_in_order(const float* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::fabs(x[i]);
  return s;
}

// sum |x| in double in eight lanes (any order: no add chain through every element).
MFSIM_VECTOR_CLONES double abs_sum_any_order(const float* x, std::size_t n) {
  constexpr std::size_t kLanes = 8;
  double l[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t q = 0; q < kLanes; ++q) l[q] += std::fabs(x[i + q]);
  }
  for (; i < n; ++i) l[0] += std::fabs(x[i]);
  double s = 0;
  for (std::size_t q = 0; q < kLanes; ++q) s += l[q];
  return s;
}

// closest_threshold's choice when its target is known only to within +-bound: the threshold
// when every grid point whose sum differs from the chosen one's is farther from the target by
// more than twice the bound (with the roundings of the distances), so the exact target picks it
// too; kUncertain when not. Grid points with the same sum tie alike for every target.
constexpr std::uint32_t kUncertain = 0xFFFFFFFFu;
std::uint32_t closest_threshold_certain(const double* hist, double base, double target, double bound) {
  const std::uint32_t t = closest_threshold(hist, base, target);
  double p[1024];  // each grid point's sum |Q|, by the same operations as closest_threshold's
  double suffix = 0;
  for (int j = 1023; j >= 0; --j) {
    suffix += hist[j];
    p[j] = base + suffix;
  }
  const double p_best = p[t >> 13];
  const double d_best = std::fabs(p_best - target);
  double d_other = std::numeric_limits<double>::infinity();
  for (int j = 0; j < 1024; ++j) {
    if (p[j] != p_best) d_other = std::min(d_other, std::fabs(p[j] - target));
  }
  const double u = 0x1p-53;
  if (!std::isfinite(target)) return kUncertain;
  if (std::isinf(d_other)) return t;  // every grid point has the chosen one's sum
  if (!(d_other - d_best > 2.5 * bound + 8 * u * (d_other + d_best))) return kUncertain;
  return t;
}

// wbc_threshold_mants' counts: all[row * 1024 + bin] += 1 for each weight, row 1 + k - kmin for a
// level k in [kmin, kmin + levels), row levels + 1 for the levels above, row 0 for the rest
// (below kmin, zeros, subnormals, infinities, NaNs); bin: the top ten mantissa bits. Per block,
// the indices first (branch-free, vectorisable), then the increments.
MFSIM_VECTOR_CLONES void count_rows(const float* x, std::size_t n, int kmin, int levels, std::uint32_t* all) {
  constexpr std::size_t kBlock = 256;
  std::uint32_t idx[kBlock];
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    for (std::size_t j = 0; j < len; ++j) {
      const std::uint32_t b = float_bits(x[i0 + j]) & 0x7FFFFFFFu;
      const int exp = static_cast<int>(b >> 23);
      int row = exp - 127 - kmin + 1;
      row = row < 0 ? 0 : row;
      row = row > levels + 1 ? levels + 1 : row;
      row = (exp == 0 || exp == 255) ? 0 : row;
      idx[j] = (static_cast<std::uint32_t>(row) << 10) | ((b & 0x7FFFFFu) >> 13);
    }
    for (std::size_t j = 0; j < len; ++j) all[idx[j]]++;
  }
}

// wbc_threshold_mant for the scale exponents es[0..count) from one pass over the weights. Every
// term of base and of a histogram bin is a power of two between 2^(E-6) and 2^E, so those sums
// are exact in double (n < 2^46) in any order: counting the weights per (level, mantissa bin)
// and multiplying gives the same bits as the element-by-element sums. `target` (sum |w|) is
// summed in any order, and again in element order (as there) only when its rounding could move
// a threshold (closest_threshold_certain). Small tensors take the per-exponent passes.
void wbc_threshold_mants(const float* x, std::size_t n, const int* es, int count, std::uint32_t* out) {
  if (n < 8192 || n >= (std::size_t{1} << 32)) {  // (32-bit counts below)
    for (int c = 0; c < count; ++c) out[c] = wbc_threshold_mant(x, n, es[c]);
    return;
  }
  const int kmax = *std::max_element(es, es + count), kmin = *std::min_element(es, es + count) - 7;
  const auto levels = static_cast<std::size_t>(kmax - kmin);
  // sum |w| in any order; in element order only when that could change a threshold.
  const double target_any = abs_sum_any_order(x, n);
  double target_in_order = 0;
  bool in_order = false;
  // Weights per row and mantissa bin (count_rows): the levels in [kmin, kmax), those above, the rest.
  std::vector<std::uint32_t> all((levels + 2) * 1024, 0);
  count_rows(x, n, kmin, static_cast<int>(levels), all.data());
  const std::uint32_t* cnt = &all[1024];  // the level rows
  double ge = 0;  // weights with level >= kmax
  for (std::size_t j = 0; j < 1024; ++j) ge += all[(levels + 1) * 1024 + j];
  std::vector<double> rows(levels, 0.0);
  for (std::size_t r = 0; r < levels; ++r) {
    for (std::size_t j = 0; j < 1024; ++j) rows[r] += cnt[r * 1024 + j];
  }
  std::vector<double> hist(1024);
  for (int c = 0; c < count; ++c) {
    const int e = es[c];
    std::fill(hist.begin(), hist.end(), 0.0);
    double base = ge * pow2(e);
    for (int k = kmin; k < kmax; ++k) {
      const std::size_t r = static_cast<std::size_t>(k - kmin);
      const std::uint32_t* row = &cnt[r * 1024];
      if (k >= e) {
        base += rows[r] * pow2(e);
      } else if (k == e - 7) {
        const double w = pow2(e - 6);
        for (std::size_t j = 0; j < 1024; ++j) hist[j] += row[j] * w;
      } else if (k > e - 7) {
        const double w = pow2(k);
        base += rows[r] * w;
        for (std::size_t j = 0; j < 1024; ++j) hist[j] += row[j] * w;
      }
    }
    out[c] = closest_threshold_certain(hist.data(), base, target_any, order_bound(n) * target_any);
    if (out[c] == kUncertain) {
      if (!in_order) target_in_order = abs_sum_in_order(x, n);
      in_order = true;
      out[c] = closest_threshold(hist.data(), base, target_in_order);
    }
  }
}

}  // namespace

void wbc_thresholds(const float* x, std::size_t n, const int* es, int count, double* out) {
  std::vector<std::uint32_t> t(static_cast<std::size_t>(count));
  wbc_threshold_mants(x, n, es, count, t.data());
  for (int c = 0; c < count; ++c) out[c] = 1.0 + std::ldexp(static_cast<double>(t[static_cast<std::size_t>(c)]), -23);
}

double pot4_abs_sum(const float* x, std::size_t n, int e, double t) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::fabs(pot4_decode(pot4_quantize(x[i], e, t), e));
  return s;
}

namespace {
// PRC's candidates for deterministic rounding: scale exponents (clamped) and thresholds (WBC's,
// or sqrt(2)), and the exponents and thresholds the criterion prices them at.
struct DetCandidates {
  int count = 1;
  int es[kMaxPrcCandidates] = {};
  std::uint32_t ts[kMaxPrcCandidates] = {};
  int es_free[kMaxPrcCandidates] = {};  // the offsets of e0, unclamped
  std::uint32_t sqrt2s[kMaxPrcCandidates] = {};
  // Without WBC (and for the range rule) the criterion prices the offsets of e0 at sqrt(2); with
  // WBC each candidate at its own exponent and threshold.
  bool own = false;
  const int* cost_es() const { return own ? es : es_free; }
  const std::uint32_t* cost_ts() const { return own ? ts : sqrt2s; }
};

DetCandidates det_candidates(const float* x, std::size_t n, const PotqOptions& opt) {
  DetCandidates k;
  const float m = max_abs(x, n, nullptr);
  const int e0 = std::max(kPot4ScaleExpMin, std::min(kPot4ScaleExpMax, pot4_scale_exp_deterministic(m, kSqrt2)));
  k.count = opt.prc ? std::clamp(opt.prc_candidates, 1, kMaxPrcCandidates) : 1;
  const std::uint32_t sqrt2_mant = threshold_mant(kSqrt2);
  for (int c = 0; c < k.count; ++c) {
    k.es[c] = std::max(kPot4ScaleExpMin, e0 - c);
    k.es_free[c] = e0 - c;
    k.ts[c] = k.sqrt2s[c] = sqrt2_mant;
  }
  if (opt.wbc) wbc_threshold_mants(x, n, k.es, k.count, k.ts);
  k.own = opt.wbc && opt.prc_criterion != PrcCriterion::kRange;
  return k;
}
}  // namespace

int potq_candidate_costs(const float* x, std::size_t n, const PotqOptions& opt, double* cost) {
  const DetCandidates k = det_candidates(x, n, opt);
  if (k.count == 1) {
    cost[0] = 0;
  } else {
    quant_errors(x, n, k.cost_es(), k.cost_ts(), k.count, cost, opt.prc_criterion);
  }
  return k.count;
}

namespace {
// potq_deterministic writing codes or grid integers to o[0..n) (meta: scale, rho, threshold).
template <class Out>
Pot4Tensor potq_deterministic_to(const float* x, std::size_t n, const PotqOptions& opt, Out* o) {
  Pot4Tensor out;
  const DetCandidates k = det_candidates(x, n, opt);
  double costs[kMaxPrcCandidates] = {};
  const int c = k.count > 1 ? prc_choice(x, n, k.cost_es(), k.cost_ts(), k.count, costs, opt.prc_criterion) : 0;
  std::uint32_t best_t = threshold_mant(kSqrt2);
  if (c >= 0) {  // (none when every cost is NaN)
    out.scale_exp = k.es[c];
    out.rho = -c;
    best_t = k.ts[c];
  }
  out.threshold = 1.0 + std::ldexp(static_cast<double>(best_t), -23);
  quantize_into(x, n, out.scale_exp, best_t, o);
  return out;
}
}  // namespace

Pot4Tensor potq_deterministic(const float* x, std::size_t n, const PotqOptions& opt) {
  std::vector<Pot4Code> codes(n);
  Pot4Tensor t = potq_deterministic_to(x, n, opt, codes.data());
  t.codes = std::move(codes);
  return t;
}

Pot4Tensor potq_deterministic_ints(const float* x, std::size_t n, const PotqOptions& opt, float* ints) {
  return potq_deterministic_to(x, n, opt, ints);
}

Pot4Code pot4_round_stochastic(float x, int e, float u) {
  if (x == 0.0f || std::isnan(x)) return 0;
  const bool neg = std::signbit(x);
  const float a = std::fabs(x);
  if (std::isinf(a)) return pot4_encode(neg, kPot4MaxMag);
  const int lowest = e - 6;  // smallest level 2^(E-6)
  int k = 0;
  float f = std::frexp(a, &k);  // a = f 2^k, f in [0.5, 1): a in [2^(k-1), 2^k)
  int level;
  if (k - 1 >= e) {
    level = e;  // clip (only possible when rho < 0)
  } else if (k - 1 < lowest) {
    // Below the smallest level: 0 or 2^(E-6) with probability a / 2^(E-6).
    float p = std::ldexp(a, -lowest);
    if (!(u < p)) return 0;
    level = lowest;
  } else {
    // Between 2^(k-1) and 2^k: up with probability (a - 2^(k-1)) / 2^(k-1) = 2f - 1.
    float p = std::ldexp(f, 1) - 1.0f;
    level = u < p ? k : k - 1;
  }
  return pot4_encode(neg, static_cast<unsigned>(level - e + 7));
}

namespace {
// One zero or normal element (bits b) rounded stochastically at scale e with the random u24,
// written to o[i] (code or grid integer), without branches.
template <class Out>
inline void put_stochastic(Out* o, std::size_t i, std::uint32_t b, std::uint32_t u24, int e, int lowest, float inv_lowest) {
  const int k = static_cast<int>((b >> 23) & 0xFFu) - 127;  // |x| in [2^k, 2^(k+1))
  // up with probability (|x| - 2^k) / 2^k = mant / 2^23, i.e. when u24 / 2^24 < mant / 2^23
  const int up = static_cast<int>(u24 < ((b & 0x7FFFFFu) << 1));
  std::uint32_t ab = b & 0x7FFFFFFFu;
  float a;
  std::memcpy(&a, &ab, 4);
  // (u24 < 2^24: the same float through a signed conversion, which vectorises)
  const int low_up = static_cast<int>(static_cast<float>(static_cast<std::int32_t>(u24)) * (1.0f / 16777216.0f) < a * inv_lowest);
  int mag = k - e + 7 + up;
  mag = k < lowest ? low_up : mag;
  mag = k >= e ? 7 : mag;
  put_mag(o, i, b & 0x80000000u, static_cast<unsigned>(mag));
}

// put_stochastic for the eight zero or normal elements x[0..8) with indices i..i+7, in vectors:
// counter_u24 in four 64-bit lanes (the same modular arithmetic: key + (i + q + 1) G is the
// first lane's value plus q G), the rest in eight 32-bit lanes. The same results (tested).
typedef std::uint64_t V4u64 __attribute__((vector_size(32)));
typedef std::int32_t V4i __attribute__((vector_size(16)));
typedef std::uint8_t V8u8 __attribute__((vector_size(8)));
inline void splitmix64_mix4(V4u64& z) {  // (by reference: no vector in the ABI)
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
}
template <class Out>
inline void stochastic8(const float* x, std::uint64_t key, std::size_t i, int e, int lowest, float inv_lowest, Out* o) {
  constexpr std::uint64_t kG = 0x9e3779b97f4a7c15ull;  // counter_u24's increment
  const std::uint64_t first = key + (static_cast<std::uint64_t>(i) + 1) * kG;
  const V4u64 steps0 = {0, kG, 2 * kG, 3 * kG}, steps1 = {4 * kG, 5 * kG, 6 * kG, 7 * kG};
  V4u64 z0 = first + steps0, z1 = first + steps1;
  splitmix64_mix4(z0);
  splitmix64_mix4(z1);
  const V4i lo = __builtin_convertvector(z0 >> 40, V4i);
  const V4i hi = __builtin_convertvector(z1 >> 40, V4i);
  V8i u24;
  std::memcpy(&u24, &lo, 16);
  std::memcpy(reinterpret_cast<char*>(&u24) + 16, &hi, 16);
  V8i b;
  std::memcpy(&b, x, 32);
  const V8i k = ((b >> 23) & 0xFF) - 127;
  const V8i up = u24 < ((b & 0x7FFFFF) << 1);  // -1 where rounding up
  const V8i ab = b & 0x7FFFFFFF;
  V8f a;
  std::memcpy(&a, &ab, 32);
  const V8i low_up = __builtin_convertvector(u24, V8f) * (1.0f / 16777216.0f) < a * inv_lowest;
  V8i mag = k - e + 7 - up;
  mag = k < lowest ? -low_up : mag;
  mag = k >= e ? 7 : mag;
  if constexpr (std::is_same_v<Out, float>) {
    const V8i v = mag == 0 ? 0 : ((b & static_cast<std::int32_t>(0x80000000u)) | ((mag + 126) << 23));
    std::memcpy(o, &v, 32);
  } else {
    const V8i sign = (b >> 31) & static_cast<std::int32_t>(kPot4SignBit);
    const V8u8 c = __builtin_convertvector(mag == 0 ? 0 : (sign | mag), V8u8);
    std::memcpy(o, &c, 8);
  }
}

// The stochastic rounding of x[0..n) at scale e into o[0..n): codes or grid integers.
template <class Out>
MFSIM_VECTOR_CLONES void round_stochastic_into(const float* x, std::size_t n, int e, std::uint64_t key, Out* o) {
  const int lowest = e - 6;  // the smallest level 2^(E-6)
  // Below the smallest level an element rounds up with probability p = |x| 2^-lowest (as
  // pot4_round_stochastic computes it: a multiplication by a power of two, rounded alike).
  // 2^-lowest is a normal binary32 for every scale exponent in range.
  static_assert(6 - kPot4ScaleExpMin <= 127 && 6 - kPot4ScaleExpMax >= -126, "2^-lowest must be normal");
  const float inv_lowest = std::ldexp(1.0f, -lowest);
  constexpr std::size_t kBlock = 256;
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    const float* xb = x + i0;
    if (has_special(xb, len)) {  // a subnormal, an infinity or a NaN: element by element
      for (std::size_t i = i0; i < i0 + len; ++i) {
        const std::uint32_t b = float_bits(x[i]);
        const int exp = static_cast<int>((b >> 23) & 0xFFu);
        if ((exp == 0 && (b & 0x7FFFFFFFu) != 0) || exp == 255) {
          // the general routine (zeros take the path below: under the smallest level, with
          // probability 0)
          put(o, i, pot4_round_stochastic(x[i], e, static_cast<float>(counter_u24(key, i)) * (1.0f / 16777216.0f)));
        } else {
          put_stochastic(o, i, b, counter_u24(key, i), e, lowest, inv_lowest);
        }
      }
      continue;
    }
    std::size_t i = i0;
    for (; i + 8 <= i0 + len; i += 8) stochastic8(x + i, key, i, e, lowest, inv_lowest, o + i);
    for (; i < i0 + len; ++i) put_stochastic(o, i, float_bits(x[i]), counter_u24(key, i), e, lowest, inv_lowest);
  }
}

// potq_stochastic writing codes or grid integers to o[0..n) (meta: scale, rho).
template <class Out>
Pot4Tensor potq_stochastic_to(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key, Out* o) {
  Pot4Tensor out;
  bool finite = true;
  const float m = max_abs(x, n, &finite);
  const int ceil_e = pot4_scale_exp_ceil(m);
  // floor(log2 max): one octave below ceil unless max is a power of two.
  const int scale_e = opt.error_scale_floor && m > 0.0f && std::ldexp(1.0f, ceil_e) > m ? ceil_e - 1 : ceil_e;
  const int base = std::max(kPot4ScaleExpMin, std::min(kPot4ScaleExpMax, scale_e));
  const int candidates = opt.prc ? std::clamp(opt.prc_candidates, 1, kMaxPrcCandidates) : 1;
  const std::uint32_t mid = threshold_mant(1.5);  // linear midpoint: the stochastic rounding's mean
  int chosen = 0;
  if (candidates > 1) {
    int es[kMaxPrcCandidates];
    std::uint32_t ts[kMaxPrcCandidates];
    for (int c = 0; c < candidates; ++c) {
      es[c] = base - c;
      ts[c] = mid;
    }
    double costs[kMaxPrcCandidates];
    chosen = prc_choice(x, n, es, ts, candidates, costs, opt.prc_criterion);
  }
  if (chosen >= 0) {  // (none when every cost is NaN)
    out.scale_exp = std::max(kPot4ScaleExpMin, base - chosen);
    out.rho = -chosen;
  }
  out.threshold = 0;  // stochastic
  round_stochastic_into(x, n, out.scale_exp, key, o);
  return out;
}
}  // namespace

Pot4Tensor potq_stochastic(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key) {
  std::vector<Pot4Code> codes(n);
  Pot4Tensor t = potq_stochastic_to(x, n, opt, key, codes.data());
  t.codes = std::move(codes);
  return t;
}

Pot4Tensor potq_stochastic_ints(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key, float* ints) {
  return potq_stochastic_to(x, n, opt, key, ints);
}

Int8Tensor int8_nearest(const float* x, std::size_t n, int qmax) {
  Int8Tensor t;
  t.scale = int_scale_for_max(max_abs(x, n, nullptr), qmax);
  t.q.resize(n);
  for (std::size_t i = 0; i < n; ++i) t.q[i] = int_quantize_nearest(x[i], t.scale, qmax);
  return t;
}

Int8Tensor int8_stochastic(const float* x, std::size_t n, std::uint64_t key, int qmax) {
  Int8Tensor t;
  const auto qm = static_cast<float>(qmax);
  t.scale = int_scale_for_max(max_abs(x, n, nullptr), qmax);
  t.q.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    float r = x[i] / t.scale;
    if (std::isnan(r)) {
      t.q[i] = 0;
      continue;
    }
    float fl = std::floor(r);
    float v = fl + ((counter_uniform(key, i) < r - fl) ? 1.0f : 0.0f);
    t.q[i] = int8_saturate(static_cast<std::int64_t>(std::max(-qm, std::min(qm, v))));
  }
  return t;
}

int int_pot2_scale_exp(float m, int qmax) {
  if (!(m > 0.0f) || !std::isfinite(m)) return 0;
  // The least E with qmax 2^E >= m: start from the exponent of m / qmax (frexp: m/qmax in
  // [2^(e-1), 2^e)) and step down while qmax 2^(E-1) still covers m (ldexp: exact).
  int e = 0;
  std::frexp(static_cast<double>(m) / qmax, &e);
  while (std::ldexp(static_cast<double>(qmax), e - 1) >= m) --e;
  while (std::ldexp(static_cast<double>(qmax), e) < m) ++e;
  return e;
}

namespace {
// x 2^-E as a double: exact (a power-of-two factor; float values stay far from double's range).
inline double pot2_unscale(float x, int e) { return std::ldexp(static_cast<double>(x), -e); }
inline std::int8_t clamp_q(double v, int qmax) {
  return static_cast<std::int8_t>(std::max(-static_cast<double>(qmax), std::min(static_cast<double>(qmax), v)));
}
}  // namespace

IntPot2Tensor int_pot2_nearest(const float* x, std::size_t n, int qmax) {
  IntPot2Tensor t;
  bool finite = true;
  t.scale_exp = int_pot2_scale_exp(max_abs(x, n, &finite), qmax);
  t.q.resize(n);
  if (t.scale_exp > -100 && t.scale_exp < 100) {
    // x 2^-E by a float product with an exact power of two: the same value as pot2_unscale
    // whenever it is a normal float, and values below 2^-126 2^-E round to 0 either way.
    const float inv = std::ldexp(1.0f, -t.scale_exp);
    const auto qm = static_cast<float>(qmax);
    for (std::size_t i = 0; i < n; ++i) {
      const float r = x[i] * inv;
      t.q[i] = std::isnan(r) ? 0 : static_cast<std::int8_t>(std::max(-qm, std::min(qm, std::nearbyint(r))));
    }
    return t;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double r = pot2_unscale(x[i], t.scale_exp);
    t.q[i] = std::isnan(r) ? 0 : clamp_q(std::nearbyint(r), qmax);  // the default mode: ties to even
  }
  return t;
}

IntPot2Tensor int_pot2_stochastic(const float* x, std::size_t n, std::uint64_t key, int qmax) {
  IntPot2Tensor t;
  bool finite = true;
  t.scale_exp = int_pot2_scale_exp(max_abs(x, n, &finite), qmax);
  t.q.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double r = pot2_unscale(x[i], t.scale_exp);
    if (std::isnan(r)) {
      t.q[i] = 0;
      continue;
    }
    const double fl = std::floor(r);
    t.q[i] = clamp_q(fl + (static_cast<double>(counter_uniform(key, i)) < r - fl ? 1.0 : 0.0), qmax);
  }
  return t;
}

namespace {
const std::vector<int>& apot_levels() {  // ascending, with 0: the magnitudes apot_level (models/apot.h) accepts
  static const std::vector<int> l = [] {
    std::vector<int> v;
    for (int a = 0; a <= kApotMax; ++a) {
      if (apot_level(a)) v.push_back(a);
    }
    return v;
  }();
  return l;
}

// The two-term levels and scale of apot_nearest/_stochastic: element i's magnitude a = |x| 2^-E
// (at most 96) lies in [lo, hi] between adjacent levels (lo == hi on a level); pick(i, a, lo, hi)
// chooses one, and the sign is x's.
template <class Pick>
IntPot2Tensor apot_quantize(const float* x, std::size_t n, Pick pick) {
  IntPot2Tensor t;
  bool finite = true;
  t.scale_exp = int_pot2_scale_exp(max_abs(x, n, &finite), kApotMax);
  t.q.resize(n);
  // The levels around each integer c in [0, 96]: above[c] the least level >= c, below[c] the level
  // before it (itself for 0). The levels are integers, so the least level >= a is above[ceil(a)].
  struct Neighbours {
    int above[kApotMax + 1], below[kApotMax + 1];
  };
  static const Neighbours nb = [] {
    Neighbours v{};
    const std::vector<int>& l = apot_levels();  // ascending, from 0; 96 is a level
    for (int c = 0; c <= kApotMax; ++c) {
      const auto it = std::lower_bound(l.begin(), l.end(), c);
      v.above[c] = *it;
      v.below[c] = it == l.begin() ? *it : *(it - 1);
    }
    return v;
  }();
  // |x| 2^-E as a product by the exact power of two in double: pot2_unscale's value (E is within
  // +-160 for any float maximum, far inside double's exponent range).
  const double inv = std::ldexp(1.0, -t.scale_exp);
  for (std::size_t i = 0; i < n; ++i) {
    const double r = static_cast<double>(x[i]) * inv;
    if (std::isnan(r)) {
      t.q[i] = 0;
      continue;
    }
    const double a = std::min(std::fabs(r), static_cast<double>(kApotMax));
    const int c = static_cast<int>(std::ceil(a));
    const int hi = nb.above[c], lo = hi == a ? hi : nb.below[c];
    const int q = lo == hi ? hi : pick(i, a, lo, hi);
    t.q[i] = static_cast<std::int8_t>(r < 0 ? -q : q);
  }
  return t;
}
}  // namespace

IntPot2Tensor apot_nearest(const float* x, std::size_t n) {  // the nearer level, the smaller on a tie
  return apot_quantize(x, n, [](std::size_t, double a, int lo, int hi) { return a - lo <= hi - a ? lo : hi; });
}

IntPot2Tensor apot_stochastic(const float* x, std::size_t n, std::uint64_t key) {  // hi with probability (a - lo) / (hi - lo)
  return apot_quantize(x, n, [key](std::size_t i, double a, int lo, int hi) {
    return static_cast<double>(counter_uniform(key, i)) < (a - lo) / (hi - lo) ? hi : lo;
  });
}

FloatTensor fp8_quantize(NumFormat f, const float* x, std::size_t n) {
  FloatTensor t;
  bool finite = true;
  const float m = max_abs(x, n, &finite);
  const float fmt_max = f == NumFormat::kFp8E4M3 ? kFp8E4M3Max : kFp8E5M2Max;
  if (m > 0.0f && finite) {
    int e = 0;
    const float ratio = m / fmt_max;  // 2^scale_exp >= ratio, the smallest such power of two
    const float fr = std::frexp(ratio, &e);
    t.scale_exp = fr == 0.5f ? e - 1 : e;
  }
  t.q.resize(n);
  // x * 2^-scale_exp is exact (a power of two) while that factor is a normal binary32.
  const float inv = std::ldexp(1.0f, -t.scale_exp);
  const bool normal = t.scale_exp > -127 && t.scale_exp < 127;
  for (std::size_t i = 0; i < n; ++i) t.q[i] = fp8_round(f, normal ? x[i] * inv : std::ldexp(x[i], -t.scale_exp));
  return t;
}

FloatTensor bf16_quantize(const float* x, std::size_t n) {
  FloatTensor t;
  t.q.resize(n);
  for (std::size_t i = 0; i < n; ++i) t.q[i] = bf16_round(x[i]);
  return t;
}

}  // namespace mfsim
