#include "models/quantizer.h"

#include "models/minifloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

float max_abs(const float* x, std::size_t n, bool* finite) {
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

// sum |x - Q(x)| (the PRC criterion; for the stochastic case a deterministic proxy) for each
// candidate c < count: scale exponent es[c] and rounding threshold ts[c] (its mantissa bits),
// in one pass. The range criterion reads es[0] as the top and es[c] = es[0] - c.
MFSIM_VECTOR_CLONES void quant_errors(const float* x, std::size_t n, const int* es, const std::uint32_t* ts, int count, double* err,
                  PrcCriterion crit) {
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
    return;
  }
  // Blocks of elements: the magnitudes |x - Q(x)| of every candidate computed without branches
  // (vectorisable), then summed in element order, exactly as the one-element-at-a-time loop
  // does (the sums, hence PRC's choices, are bit-identical to it). A block holding a subnormal,
  // an infinity or a NaN takes that loop.
  constexpr std::size_t kBlock = 256;
  float d[kMaxPrcCandidates][kBlock];
  const bool mse = crit == PrcCriterion::kMse;
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    const float* xb = x + i0;
    if (has_special(xb, len)) {
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
        const int level = static_cast<int>(b >> 23) - 127 + ((b & 0x7FFFFFu) >= t_mant ? 1 : 0);
        const int m = level - ec + 7;
        const int qexp = m > 7 ? ec : level;
        const std::uint32_t qb = (m < 1 || b == 0) ? 0u : static_cast<std::uint32_t>(qexp + 127) << 23;
        float a, q;
        std::memcpy(&a, &b, 4);
        std::memcpy(&q, &qb, 4);
        dc[j] = std::fabs(a - q);
      }
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
}

void quantize_into(const float* x, std::size_t n, int e, std::uint32_t t_mant, std::vector<Pot4Code>& out) {
  out.resize(n);
  Pot4Code* o = out.data();
  constexpr std::size_t kBlock = 256;
  for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
    const std::size_t len = std::min(kBlock, n - i0);
    const float* xb = x + i0;
    if (has_special(xb, len)) {  // subnormals, infinities or NaNs: the general routine
      for (std::size_t j = 0; j < len; ++j) o[i0 + j] = fast_quantize(xb[j], e, t_mant);
      continue;
    }
    for (std::size_t j = 0; j < len; ++j) {  // zeros and normal numbers: fast_quantize without branches
      const std::uint32_t b = float_bits(xb[j]);
      const int level = static_cast<int>((b >> 23) & 0xFFu) - 127 + ((b & 0x7FFFFFu) >= t_mant ? 1 : 0);
      int m = level - e + 7;
      m = m > 7 ? 7 : m;
      const unsigned sign = (b >> 31) != 0 ? kPot4SignBit : 0u;
      o[i0 + j] = static_cast<Pot4Code>(m < 1 || (b & 0x7FFFFFFFu) == 0 ? 0u : (sign | static_cast<unsigned>(m)));
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

// wbc_threshold_mant for the scale exponents es[0..count) from one pass over the weights. Every
// term of base and of a histogram bin is a power of two between 2^(E-6) and 2^E, so those sums
// are exact in double (n < 2^46) in any order: counting the weights per (level, mantissa bin)
// and multiplying gives the same bits as the element-by-element sums. `target` (sum |w|) is
// summed in the same order as there. Small tensors take the per-exponent passes.
void wbc_threshold_mants(const float* x, std::size_t n, const int* es, int count, std::uint32_t* out) {
  if (count == 1 || n < 8192) {
    for (int c = 0; c < count; ++c) out[c] = wbc_threshold_mant(x, n, es[c]);
    return;
  }
  const int kmax = *std::max_element(es, es + count), kmin = *std::min_element(es, es + count) - 7;
  const auto levels = static_cast<std::size_t>(kmax - kmin);
  std::vector<std::uint32_t> cnt(levels * 1024, 0);  // weights per level k in [kmin, kmax) and bin
  const double target = abs_sum_in_order(x, n);
  double ge = 0;  // weights with level >= kmax
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t b = float_bits(x[i]) & 0x7FFFFFFFu;
    const int exp = static_cast<int>(b >> 23);
    if (exp == 0 || exp == 255) continue;
    const int k = exp - 127;
    if (k >= kmax) {
      ge += 1;
    } else if (k >= kmin) {
      cnt[static_cast<std::size_t>(k - kmin) * 1024 + ((b & 0x7FFFFFu) >> 13)]++;
    }
  }
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
    out[c] = closest_threshold(hist.data(), base, target);
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
// PRC's candidates for deterministic rounding: scale exponents (clamped), thresholds (WBC's, or
// sqrt(2)) and the criterion's cost of each (0 for a single candidate).
struct DetCandidates {
  int count = 1;
  int es[kMaxPrcCandidates] = {};
  std::uint32_t ts[kMaxPrcCandidates] = {};
  double errs[kMaxPrcCandidates] = {};
};

DetCandidates det_candidates(const float* x, std::size_t n, const PotqOptions& opt) {
  DetCandidates k;
  const float m = max_abs(x, n, nullptr);
  const int e0 = std::max(kPot4ScaleExpMin, std::min(kPot4ScaleExpMax, pot4_scale_exp_deterministic(m, kSqrt2)));
  k.count = opt.prc ? std::clamp(opt.prc_candidates, 1, kMaxPrcCandidates) : 1;
  const std::uint32_t sqrt2_mant = threshold_mant(kSqrt2);
  int es_free[kMaxPrcCandidates] = {};  // the offsets of e0, unclamped
  std::uint32_t sqrt2s[kMaxPrcCandidates] = {};
  for (int c = 0; c < k.count; ++c) {
    k.es[c] = std::max(kPot4ScaleExpMin, e0 - c);
    es_free[c] = e0 - c;
    k.ts[c] = sqrt2s[c] = sqrt2_mant;
  }
  if (opt.wbc) wbc_threshold_mants(x, n, k.es, k.count, k.ts);
  if (k.count > 1) {
    // Without WBC (and for the range rule) the offsets of e0 at sqrt(2); with WBC each
    // candidate at its own exponent and threshold.
    const bool own = opt.wbc && opt.prc_criterion != PrcCriterion::kRange;
    quant_errors(x, n, own ? k.es : es_free, own ? k.ts : sqrt2s, k.count, k.errs, opt.prc_criterion);
  }
  return k;
}
}  // namespace

int potq_candidate_costs(const float* x, std::size_t n, const PotqOptions& opt, double* cost) {
  const DetCandidates k = det_candidates(x, n, opt);
  std::copy(k.errs, k.errs + k.count, cost);
  return k.count;
}

Pot4Tensor potq_deterministic(const float* x, std::size_t n, const PotqOptions& opt) {
  Pot4Tensor out;
  const DetCandidates k = det_candidates(x, n, opt);
  double best_err = std::numeric_limits<double>::infinity();
  std::uint32_t best_t = threshold_mant(kSqrt2);
  for (int c = 0; c < k.count; ++c) {
    if (k.errs[c] < best_err) {
      best_err = k.errs[c];
      out.scale_exp = k.es[c];
      out.rho = -c;
      best_t = k.ts[c];
    }
  }
  out.threshold = 1.0 + std::ldexp(static_cast<double>(best_t), -23);
  quantize_into(x, n, out.scale_exp, best_t, out.codes);
  return out;
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

Pot4Tensor potq_stochastic(const float* x, std::size_t n, const PotqOptions& opt, std::uint64_t key) {
  Pot4Tensor out;
  bool finite = true;
  const float m = max_abs(x, n, &finite);
  const int ceil_e = pot4_scale_exp_ceil(m);
  // floor(log2 max): one octave below ceil unless max is a power of two.
  const int scale_e = opt.error_scale_floor && m > 0.0f && std::ldexp(1.0f, ceil_e) > m ? ceil_e - 1 : ceil_e;
  const int base = std::max(kPot4ScaleExpMin, std::min(kPot4ScaleExpMax, scale_e));
  const int candidates = opt.prc ? std::clamp(opt.prc_candidates, 1, kMaxPrcCandidates) : 1;
  const std::uint32_t mid = threshold_mant(1.5);  // linear midpoint: the stochastic rounding's mean
  double best_err = std::numeric_limits<double>::infinity();
  double errs[kMaxPrcCandidates] = {0};
  if (candidates > 1) {
    int es[kMaxPrcCandidates];
    std::uint32_t ts[kMaxPrcCandidates];
    for (int c = 0; c < candidates; ++c) {
      es[c] = base - c;
      ts[c] = mid;
    }
    quant_errors(x, n, es, ts, candidates, errs, opt.prc_criterion);
  }
  for (int c = 0; c < candidates; ++c) {
    const int e = std::max(kPot4ScaleExpMin, base - c);
    const double err = errs[c];
    if (err < best_err) {
      best_err = err;
      out.scale_exp = e;
      out.rho = -c;
    }
  }
  out.threshold = 0;  // stochastic
  out.codes.resize(n);
  const int e = out.scale_exp;
  const int lowest = e - 6;  // the smallest level 2^(E-6)
  // Below the smallest level an element rounds up with probability p = |x| 2^-lowest (as
  // pot4_round_stochastic computes it: a multiplication by a power of two, rounded alike).
  // 2^-lowest is a normal binary32 for every scale exponent in range.
  static_assert(6 - kPot4ScaleExpMin <= 127 && 6 - kPot4ScaleExpMax >= -126, "2^-lowest must be normal");
  const float inv_lowest = std::ldexp(1.0f, -lowest);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t b = float_bits(x[i]);
    const std::uint32_t u24 = counter_u24(key, i);
    const int exp = static_cast<int>((b >> 23) & 0xFFu);
    const int k = exp - 127;  // |x| in [2^k, 2^(k+1))
    if ((exp == 0 && (b & 0x7FFFFFFFu) != 0) || exp == 255) {
      // subnormal or inf/NaN: the general routine (zeros take the shortcut: below the
      // smallest level, with probability 0)
      out.codes[i] = pot4_round_stochastic(x[i], e, static_cast<float>(u24) * (1.0f / 16777216.0f));
      continue;
    }
    const unsigned sign = (b >> 31) != 0 ? kPot4SignBit : 0u;
    // up with probability (|x| - 2^k) / 2^k = mant / 2^23, i.e. when u24 / 2^24 < mant / 2^23
    const int mid_mag = k - e + 7 + (u24 < ((b & 0x7FFFFFu) << 1) ? 1 : 0);
    std::uint32_t ab = b & 0x7FFFFFFFu;
    float a;
    std::memcpy(&a, &ab, 4);
    const bool low_up = static_cast<float>(u24) * (1.0f / 16777216.0f) < a * inv_lowest;
    const unsigned mag = k >= e ? 7u : (k < lowest ? (low_up ? 1u : 0u) : static_cast<unsigned>(mid_mag));
    out.codes[i] = static_cast<Pot4Code>(mag == 0 ? 0u : (sign | mag));
  }
  return out;
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
