// The functional training core: exact fast GEMMs, quantizers, gradients, training, traces.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "training/exact_gemm.h"
#include "models/gemm_ref.h"
#include "training/nn.h"
#include "training/quant_gemm.h"
#include "models/quantizer.h"
#include "models/rng.h"
#include "training/trainer.h"
#include "training/policy.h"
#include "traces/gemm_recorder.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"
#include "models/scaled_gemm.h"
#include "tests/test_util.h"
#include "common/error.h"

using namespace mfsim;

TEST_CASE("exact float GEMM equals the MF-MAC reference bit for bit", "[model]") {
  const unsigned seed = 42;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 15), pct(0, 99);
  // Odd shapes, many zeros, and K past one float chunk (4095 products of 2^12).
  for (auto [m, n, k, zeros] : {std::tuple{7, 5, 33, 0}, std::tuple{7, 5, 33, 90}, std::tuple{1, 1, 1, 0},
                                std::tuple{3, 2, 9000, 10}, std::tuple{16, 9, 4095, 0}, std::tuple{5, 11, 4097, 50}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        std::vector<Pot4Code> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
        for (auto& c : a) c = pct(rng) < zeros ? Pot4Code{0} : static_cast<Pot4Code>(code(rng));
        for (auto& c : b) c = pct(rng) < zeros ? Pot4Code{0} : static_cast<Pot4Code>(code(rng));
        std::vector<std::int64_t> ref(static_cast<std::size_t>(m * n));
        gemm_pot4_ref(GemmShape{m, n, k}, a.data(), b.data(), AccumulatorSpec{}, ref.data());
        // Operands as integer images, stored transposed when asked.
        std::vector<float> fa(a.size()), fb(b.size());
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < k; ++j) {
            float v = static_cast<float>(pot4_int(a[static_cast<std::size_t>(i * k + j)]));
            fa[ta ? static_cast<std::size_t>(j * m + i) : static_cast<std::size_t>(i * k + j)] = v;
          }
        }
        for (int i = 0; i < k; ++i) {
          for (int j = 0; j < n; ++j) {
            float v = static_cast<float>(pot4_int(b[static_cast<std::size_t>(i * n + j)]));
            fb[tb ? static_cast<std::size_t>(j * k + i) : static_cast<std::size_t>(i * n + j)] = v;
          }
        }
        std::vector<double> c(ref.size());
        exact_int_gemm(ta, tb, m, n, k, fa.data(), fb.data(), 4096.0, c.data());
        INFO(m << "x" << n << "x" << k << " zeros " << zeros << "% ta " << ta << " tb " << tb);
        for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(static_cast<std::int64_t>(c[i]) == ref[i]);
      }
    }
  }
}

TEST_CASE("fast quantizers equal the reference rounding code for code", "[unit]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(20000);
  for (auto& v : x) v = g(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10);
  x[0] = 0.0f;
  x[1] = -0.0f;
  x[2] = 1e-40f;  // subnormal
  x[3] = INFINITY;
  x[4] = -INFINITY;
  for (bool wbc : {false, true}) {
    for (bool prc : {false, true}) {
      PotqOptions o;
      o.wbc = wbc;
      o.prc = prc;
      Pot4Tensor t = potq_deterministic(x.data(), x.size(), o);
      for (std::size_t i = 0; i < x.size(); ++i) {
        REQUIRE(t.codes[i] < 16);
        REQUIRE(t.codes[i] == pot4_quantize(x[i], t.scale_exp, t.threshold));
      }
    }
  }
  // Stochastic: the fast path equals the general routine with the same random numbers.
  PotqOptions o;
  o.prc = false;
  const std::uint64_t key = 77;
  Pot4Tensor s = potq_stochastic(x.data(), x.size(), o, key);
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(s.codes[i] == pot4_round_stochastic(x[i], s.scale_exp, counter_uniform(key, i)));
  }
}

// The blocked, branch-free quantizer paths on tensors like a ReLU network's: half zeros, blocks
// with and without subnormals, infinities and NaNs, and PRC's choice against a plain reference.
TEST_CASE("fast quantizers on sparse tensors and PRC's choice against a direct sum", "[unit]") {
  std::mt19937 rng(21);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<float> x(3000);
    for (auto& v : x) v = rng() % 2 == 0 ? 0.0f : g(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 12) - 20);
    if (trial % 2 == 1) {  // specials in the second block only
      x[300] = 3e-41f;
      x[301] = NAN;
      x[302] = -INFINITY;
    }
    if (trial == 4) {  // one outlier seven octaves above the rest: PRC clips it
      for (auto& v : x) v = v == 0.0f ? 0.0f : g(rng) * 0.01f;
      x[7] = 1.0f;
    }
    for (PrcCriterion crit : {PrcCriterion::kL1, PrcCriterion::kMse}) {
      PotqOptions o;
      o.prc_criterion = crit;
      const Pot4Tensor t = potq_deterministic(x.data(), x.size(), o);
      for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(t.codes[i] == pot4_quantize(x[i], t.scale_exp, t.threshold));
      const std::uint64_t key = 1000 + static_cast<std::uint64_t>(trial);
      const Pot4Tensor s = potq_stochastic(x.data(), x.size(), o, key);
      for (std::size_t i = 0; i < x.size(); ++i) {
        REQUIRE(s.codes[i] == pot4_round_stochastic(x[i], s.scale_exp, counter_uniform(key, i)));
      }
      if (trial % 2 == 1) continue;  // a NaN or infinity makes every candidate's error infinite
      // PRC without WBC: the offset whose sum of |x - Q(x)| (or its square) is least, summed
      // here in double from the reference rounding (threshold sqrt(2); the errors' proxy 1.5).
      auto best_offset = [&](int e0, double thr) {
        double best = INFINITY;
        int rho = 0;
        for (int c = 0; c < o.prc_candidates; ++c) {
          double err = 0;
          for (float v : x) {
            const double d = std::fabs(std::fabs(static_cast<double>(v)) -
                                       pot4_decode(pot4_quantize(std::fabs(v), e0 - c, thr), e0 - c));
            err += crit == PrcCriterion::kMse ? d * d : d;
          }
          if (err < best) {
            best = err;
            rho = -c;
          }
        }
        return rho;
      };
      CHECK(t.rho == best_offset(t.scale_exp - t.rho, std::sqrt(2.0)));
      CHECK(s.rho == best_offset(s.scale_exp - s.rho, 1.5));
      // PRC's costs, bit for bit: each candidate's sum in element order of |x| - Q(x) (float
      // subtraction, then double), with WBC at its own exponent and its own WBC threshold.
      PotqOptions ow = o;
      ow.wbc = true;
      for (const PotqOptions& opt : {o, ow}) {
        const Pot4Tensor tq = potq_deterministic(x.data(), x.size(), opt);
        const int e0 = tq.scale_exp - tq.rho;
        const int es[3] = {e0, e0 - 1, e0 - 2};
        const double sqrt2_grid = 1.0 + std::ldexp(std::ceil(std::ldexp(std::sqrt(2.0) - 1.0, 23)), -23);  // on binary32's mantissa
        double thr[3] = {sqrt2_grid, sqrt2_grid, sqrt2_grid};
        if (opt.wbc) wbc_thresholds(x.data(), x.size(), es, 3, thr);
        double cost[16];
        REQUIRE(potq_candidate_costs(x.data(), x.size(), opt, cost) == 3);
        double best = INFINITY;
        int rho = 0;
        for (int c = 0; c < 3; ++c) {
          double ref = 0;
          for (float v : x) {
            const auto q = static_cast<float>(pot4_decode(pot4_quantize(std::fabs(v), es[c], thr[c]), es[c]));
            const double d = std::fabs(std::fabs(v) - q);
            ref += crit == PrcCriterion::kMse ? d * d : d;
          }
          INFO("wbc " << opt.wbc << " candidate " << c);
          CHECK(cost[c] == ref);
          if (ref < best) {
            best = ref;
            rho = -c;
          }
        }
        CHECK(tq.rho == rho);
        CHECK(tq.threshold == thr[-rho]);
      }
      const Pot4Tensor tw = potq_deterministic(x.data(), x.size(), ow);
      for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(tw.codes[i] == pot4_quantize(x[i], tw.scale_exp, tw.threshold));
      if (trial == 4 && crit == PrcCriterion::kL1) CHECK(t.rho < 0);  // (MSE keeps the outlier)
    }
  }
}

// The training core's quantizer entry points write grid integers instead of codes: the same
// elements, on sizes that leave partial vector groups and blocks, with specials in some blocks.
TEST_CASE("PoT4 quantizers writing grid integers equal their codes", "[unit]") {
  std::mt19937 rng(31);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (std::size_t n : {std::size_t{7}, std::size_t{3001}, std::size_t{20005}, std::size_t{20006}}) {
    std::vector<float> x(n);
    for (auto& v : x) v = rng() % 3 == 0 ? 0.0f : g(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 16) - 8);
    if (n == 3001 || n == 20006) {  // (the others take the sums in any order: no special)
      x[515] = 2e-40f;
      x[516] = -INFINITY;
    }
    for (bool wbc : {false, true}) {
      for (bool prc : {false, true}) {
        PotqOptions o;
        o.wbc = wbc;
        o.prc = prc;
        std::vector<float> ints(n);
        const Pot4Tensor t = potq_deterministic(x.data(), n, o);
        const Pot4Tensor ti = potq_deterministic_ints(x.data(), n, o, ints.data());
        CHECK(ti.scale_exp == t.scale_exp);
        CHECK(ti.rho == t.rho);
        CHECK(ti.threshold == t.threshold);
        for (std::size_t i = 0; i < n; ++i) {
          REQUIRE(t.codes[i] == pot4_quantize(x[i], t.scale_exp, t.threshold));
          REQUIRE(ints[i] == static_cast<float>(pot4_int(t.codes[i])));
          REQUIRE(!std::signbit(ints[i]) == (t.codes[i] == 0 || !pot4_negative(t.codes[i])));  // zeros are +0
        }
        const std::uint64_t key = 40 + n;
        const Pot4Tensor s = potq_stochastic(x.data(), n, o, key);
        const Pot4Tensor si = potq_stochastic_ints(x.data(), n, o, key, ints.data());
        CHECK(si.scale_exp == s.scale_exp);
        CHECK(si.rho == s.rho);
        for (std::size_t i = 0; i < n; ++i) {
          REQUIRE(s.codes[i] == pot4_round_stochastic(x[i], s.scale_exp, counter_uniform(key, i)));
          REQUIRE(ints[i] == static_cast<float>(pot4_int(s.codes[i])));
          REQUIRE(!std::signbit(ints[i]) == (s.codes[i] == 0 || !pot4_negative(s.codes[i])));  // zeros are +0
        }
      }
    }
  }
}

// PRC decides from sums in another order only when that provably picks the element-order
// choice. Built from terms the costs hold exactly: the maximum 1 (candidate 1, E = -1, clips it:
// cost 1/2), 64 elements of magnitude 2^-7 (candidate 0, E = 0, flushes them: cost 64 * 2^-7 =
// 1/2), and n copies of 0.75 (cost 1/4 under both): candidates 0 and 1 tie exactly and the
// element-order rule keeps the first. One element 0.75 - 2^-24 then costs 1/4 + 2^-24 under
// candidate 0 and 1/4 - 2^-24 under candidate 1: a margin of 2^-23, far below a float partial
// sum's resolution, which the element-order double sums resolve (candidate 1 wins) and a sum in
// float lanes would not (a choice taken from such sums without the bound's check fails here).
TEST_CASE("PRC on exact and near ties picks what the element-order sums pick", "[unit]") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1000}, std::size_t{100000}}) {
    std::vector<float> x(n, 0.75f);
    x.push_back(1.0f);
    for (int i = 0; i < 64; ++i) x.push_back(i % 2 == 0 ? 0x1p-7f : -0x1p-7f);
    PotqOptions o;
    double cost[16];
    REQUIRE(potq_candidate_costs(x.data(), x.size(), o, cost) == 3);
    INFO("n " << n << " costs " << cost[0] << " " << cost[1] << " " << cost[2]);
    CHECK(cost[0] == cost[1]);
    CHECK(cost[2] > cost[0]);
    std::vector<float> ints(x.size() + 1);
    CHECK(potq_deterministic(x.data(), x.size(), o).rho == 0);
    CHECK(potq_deterministic_ints(x.data(), x.size(), o, ints.data()).rho == 0);
    x.insert(x.begin() + static_cast<std::ptrdiff_t>(n / 2), 0.75f - 0x1p-24f);
    REQUIRE(potq_candidate_costs(x.data(), x.size(), o, cost) == 3);
    CHECK(cost[0] > cost[1]);
    CHECK(cost[2] > cost[1]);
    CHECK(potq_deterministic(x.data(), x.size(), o).rho == -1);
    CHECK(potq_deterministic_ints(x.data(), x.size(), o, ints.data()).rho == -1);
  }
}

// --prc-operands: PRC clips an outlier's tensor in the roles it applies to, and leaves the
// others at the ALS scale (as without PRC).
TEST_CASE("PRC per operand kind: the roles without it keep the ALS scale", "[unit]") {
  std::mt19937 rng(8);
  std::normal_distribution<float> g(0.0f, 0.01f);
  std::vector<float> x(4096);
  for (auto& v : x) v = g(rng);
  x[7] = 1.0f;  // seven octaves above the rest: PRC clips it
  PotqOptions plain;
  plain.prc = false;
  const int als_det = potq_deterministic(x.data(), x.size(), plain).scale_exp;
  const int als_sto = potq_stochastic(x.data(), x.size(), plain, 5).scale_exp;
  for (int off = -1; off < 3; ++off) {  // -1: PRC everywhere; else PRC everywhere but role `off`
    StepContext ctx;
    ctx.arith = NumFormat::kPot4;
    ctx.wbc = false;
    if (off >= 0) ctx.prc_roles[off] = false;
    for (int role = 0; role < 3; ++role) {
      const Grid q = quantize(x.data(), x.size(), static_cast<Role>(role), ctx, 5);
      const int als = role == 2 ? als_sto : als_det;
      INFO("without PRC for role " << off << ", role " << role);
      if (role == off) {
        CHECK(q.e == als);
      } else {
        CHECK(q.e < als);
      }
    }
  }
}

// WBC: each candidate's threshold (one pass for large tensors, one pass per candidate for small
// ones) is the 1/1024 grid point whose sum |Q(w)| is closest to sum |w|, searched here point by
// point with the reference rounding (ties: the smallest threshold); and potq_deterministic uses
// its chosen candidate's.
TEST_CASE("WBC's thresholds equal a search over every grid point", "[unit]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 0.05f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (std::size_t n : {std::size_t{3000}, std::size_t{12000}}) {
    for (int dist = 0; dist < 2; ++dist) {  // Gaussian; log-uniform over 12 octaves
      std::vector<float> w(n);
      for (auto& v : w) v = dist == 0 ? g(rng) : std::ldexp(u(rng) < 0.5f ? -1.0f : 1.0f, -12) * std::exp2(12 * u(rng));
      w[1] = 0.0f;
      w[2] = dist == 0 ? 0.4f : 2.0f;  // an outlier, so that PRC may clip
      PotqOptions o;
      o.wbc = true;
      const Pot4Tensor t = potq_deterministic(w.data(), n, o);
      const int e0 = t.scale_exp - t.rho;
      const int es[3] = {e0, e0 - 1, e0 - 2};
      double got[3];
      wbc_thresholds(w.data(), n, es, 3, got);
      double target = 0;
      for (float v : w) target += std::fabs(v);
      for (int c = 0; c < 3; ++c) {
        double best = INFINITY, best_t = 0;
        for (int j = 1023; j >= 0; --j) {
          const double thr = 1.0 + j / 1024.0;
          const double d = std::fabs(pot4_abs_sum(w.data(), n, es[c], thr) - target);
          if (d <= best) {
            best = d;
            best_t = thr;
          }
        }
        INFO("n " << n << " dist " << dist << " candidate " << c << " scale " << es[c]);
        CHECK(got[c] == best_t);
        if (es[c] == t.scale_exp) CHECK(t.threshold == best_t);
        if (c == 0) {  // without PRC: the one candidate e0 (the same passes, one exponent)
          PotqOptions one = o;
          one.prc = false;
          CHECK(potq_deterministic(w.data(), n, one).threshold == best_t);
          double got1 = 0;
          wbc_thresholds(w.data(), n, es, 1, &got1);
          CHECK(got1 == best_t);
        }
      }
    }
  }
}

TEST_CASE("WBC: a target whose any-order sum falls on the other side of a midpoint is settled in element order",
          "[unit]") {
  // 8192 weights 1.0 (scale exponent 0, above every level: the base of every grid point's sum),
  // one weight just below 1.5 * 2^-6 (mantissa bin 511: it rounds down for thresholds above bin
  // 511 and up otherwise, so there are two sums, 1 + 2^-6 and 1 + 2^-5 on top of the base, with
  // the midpoint at 1.5 * 2^-6), then 4096 weights of 1.5 * 2^-41 (below every level: they
  // quantize to 0). In element order each tiny weight is less than half an ulp of the running
  // sum 2^13 and is lost: the target is 2^-29 below the midpoint, so the lower sum is closer
  // (threshold 1.5). Summed in lanes (any order), the tiny weights add up (1.5 * 2^-29) and the
  // target lands above the midpoint (threshold 1.0). The any-order sum's error bound covers the
  // difference, so the fast path must fall back to the element-order sum.
  std::vector<float> w(8192, 1.0f);
  w.push_back(std::ldexp(1.5f - 0x1p-23f, -6));
  w.insert(w.end(), 4096, std::ldexp(1.5f, -41));
  const std::size_t n = w.size();
  double in_order = 0, lanes[8] = {};
  for (std::size_t i = 0; i < n; ++i) {
    in_order += w[i];
    lanes[i % 8] += w[i];
  }
  double any_order = 0;
  for (double l : lanes) any_order += l;
  const double midpoint = 8192.0 + 1.5 * 0x1p-6;
  REQUIRE(in_order < midpoint);   // the construction straddles the midpoint ...
  REQUIRE(any_order > midpoint);  // ... the two sums on either side
  const int es[1] = {0};
  double got = 0;
  wbc_thresholds(w.data(), n, es, 1, &got);
  CHECK(got == 1.5);  // the element-order choice: the first grid point of the lower sum
  CHECK(pot4_abs_sum(w.data(), n, 0, got) == 8192.0 + 0x1p-6);
  PotqOptions o;
  o.wbc = true;
  o.prc = false;
  const Pot4Tensor t = potq_deterministic(w.data(), n, o);
  CHECK(t.scale_exp == 0);
  CHECK(t.threshold == 1.5);
}

TEST_CASE("quantizer properties: scale rule, WBC, unbiased stochastic rounding", "[unit]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 0.05f);
  std::vector<float> w(50000);
  for (auto& v : w) v = g(rng);
  PotqOptions plain;
  plain.prc = false;
  Pot4Tensor t = potq_deterministic(w.data(), w.size(), plain);
  // ALS: the largest magnitude maps to exactly 2^E (code 7).
  std::size_t imax = 0;
  for (std::size_t i = 0; i < w.size(); ++i) imax = std::fabs(w[i]) > std::fabs(w[imax]) ? i : imax;
  CHECK(pot4_mag(t.codes[imax]) == 7);
  // WBC keeps the mean magnitude closer to the real weights' than t = sqrt(2).
  double sum_w = 0;
  for (float v : w) sum_w += std::fabs(v);
  PotqOptions wbc = plain;
  wbc.wbc = true;
  Pot4Tensor tw = potq_deterministic(w.data(), w.size(), wbc);
  CHECK(tw.scale_exp == t.scale_exp);
  const double bias_sqrt2 = std::fabs(pot4_abs_sum(w.data(), w.size(), t.scale_exp, t.threshold) - sum_w);
  const double bias_wbc = std::fabs(pot4_abs_sum(w.data(), w.size(), tw.scale_exp, tw.threshold) - sum_w);
  INFO("sum|w| " << sum_w << " sqrt2 bias " << bias_sqrt2 << " WBC bias " << bias_wbc << " t " << tw.threshold);
  CHECK(bias_wbc < bias_sqrt2 / 10);
  CHECK(tw.threshold > 1.3);
  CHECK(tw.threshold < 1.6);
  // Stochastic rounding is unbiased: the mean over many draws is x within 5 standard errors.
  const int e = 0;
  for (float x : {0.3f, -0.77f, 0.011f, 0.0021f, 0.9999f}) {
    const int draws = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < draws; ++i) {
      double v = pot4_decode(pot4_round_stochastic(x, e, counter_uniform(123, static_cast<std::uint64_t>(i))), e);
      sum += v;
      sum2 += v * v;
    }
    const double mean = sum / draws, sd = std::sqrt(sum2 / draws - mean * mean);
    INFO("x " << x << " mean " << mean << " sd " << sd);
    CHECK(std::fabs(mean - x) < 5 * sd / std::sqrt(static_cast<double>(draws)) + 1e-12);
  }
}

namespace {

// A deterministic toy data set: 10 classes, each a fixed random 8x8 pattern plus noise.
Dataset toy_dataset(std::size_t n, std::uint64_t seed) {
  Dataset d;
  d.rows = d.cols = 8;
  SplitMix64 pat(99), rng(seed);
  std::vector<float> patterns(10 * 64);
  for (auto& p : patterns) p = static_cast<float>(pat.uniform() * 2 - 1);
  for (std::size_t i = 0; i < n; ++i) {
    int label = static_cast<int>(rng.below(10));
    d.labels.push_back(label);
    for (int j = 0; j < 64; ++j) {
      d.images.push_back(patterns[static_cast<std::size_t>(label * 64 + j)] + static_cast<float>(rng.uniform() - 0.5));
    }
  }
  return d;
}

// The first n toy examples as an n x hw x hw x 1 batch, labels folded into `classes`.
Tensor toy_batch(const Dataset& d, int n, int hw, int classes, std::vector<int>* labels) {
  Tensor x;
  x.n = n;
  x.h = x.w = hw;
  x.c = 1;
  x.v.assign(d.images.begin(), d.images.begin() + static_cast<std::ptrdiff_t>(n) * hw * hw);
  labels->assign(d.labels.begin(), d.labels.begin() + n);
  for (int& l : *labels) l %= classes;
  return x;
}

// One parameter element's analytic gradient (one FP32 backward pass of the softmax
// cross-entropy) and its central difference with step eps.
struct GradientSample {
  std::size_t param, index;
  double analytic, numeric;
};

// Samples every parameter tensor of `net` at `per_param` evenly spaced elements (at least every
// element when smaller). *param_count: the number of parameter tensors.
std::vector<GradientSample> gradient_samples(Network& net, const Tensor& x, const std::vector<int>& labels,
                                             std::size_t per_param, float eps, std::size_t* param_count) {
  StepContext ctx;
  ctx.arith = NumFormat::kFp32;
  auto loss_of = [&]() {
    Tensor logits = net.forward(x, ctx, true);
    return softmax_cross_entropy(logits, labels, nullptr, nullptr);
  };
  Tensor logits = net.forward(x, ctx, true);
  Tensor dl;
  softmax_cross_entropy(logits, labels, &dl, nullptr);
  net.backward(dl, ctx);
  auto params = net.params();
  *param_count = params.size();
  std::vector<GradientSample> samples;
  for (std::size_t p = 0; p < params.size(); ++p) {
    auto& w = *params[p].first;
    const std::vector<float> grad = *params[p].second;
    for (std::size_t i = 0; i < w.size(); i += std::max<std::size_t>(1, w.size() / per_param)) {
      const float orig = w[i];
      w[i] = orig + eps;
      const double up = loss_of();
      w[i] = orig - eps;
      const double down = loss_of();
      w[i] = orig;
      samples.push_back(GradientSample{p, i, grad[i], (up - down) / (2 * eps)});
    }
  }
  return samples;
}

}  // namespace

TEST_CASE("FP32 gradients of every layer match finite differences", "[model]") {
  // conv (stride 1, padding 1), ReLU, max-pool, flatten, fully connected, softmax cross-entropy.
  Network net("conv:3:3:1:1,relu,maxpool:2,conv:2:3:2:1,relu,flatten,fc:5,relu,fc:4", 8, 8, 1, 7);
  std::vector<int> labels;
  const Tensor x = toy_batch(toy_dataset(6, 5), 6, 8, 4, &labels);
  std::size_t params = 0;
  const auto samples = gradient_samples(net, x, labels, 7, 1e-2f, &params);
  REQUIRE(params == 8);  // 4 linear layers x (weights, bias)
  for (const auto& g : samples) {
    INFO("param " << g.param << " index " << g.index << " analytic " << g.analytic << " numeric " << g.numeric);
    CHECK(g.analytic == Approx(g.numeric).margin(2e-3).epsilon(3e-2));
  }
  CHECK(samples.size() > 40);
}

TEST_CASE("batch normalisation: gradients match finite differences, evaluation uses running statistics", "[model]") {
  // No ReLU here: batch-normalised values sit around 0, where a kink would defeat finite differences.
  Network net("conv:3:3:1:1,bn,flatten,fc:5,bn,fc:4", 6, 6, 1, 11);
  std::vector<int> labels;
  const Tensor x = toy_batch(toy_dataset(8, 5), 8, 6, 4, &labels);
  std::size_t params = 0;
  const auto samples = gradient_samples(net, x, labels, 5, 1e-2f, &params);
  REQUIRE(params == 3 * 2 + 2 * 2);  // 3 linear layers (w, b) and 2 batch norms (gamma, beta)
  for (const auto& g : samples) {
    INFO("param " << g.param << " index " << g.index << " analytic " << g.analytic << " numeric " << g.numeric);
    CHECK(g.analytic == Approx(g.numeric).margin(2e-3).epsilon(3e-2));
  }
  CHECK(samples.size() > 20);
  StepContext ctx;
  ctx.arith = NumFormat::kFp32;
  // Evaluation normalises with the running statistics: the same input, one example at a time,
  // gives the same logits as the whole batch (batch statistics would make them differ).
  Tensor all = net.forward(x, ctx, false);
  Tensor one;
  one.n = 1;
  one.h = one.w = 6;
  one.c = 1;
  one.v.assign(x.v.begin(), x.v.begin() + 36);
  Tensor first = net.forward(one, ctx, false);
  for (int j = 0; j < 4; ++j) CHECK(first.v[static_cast<std::size_t>(j)] == Approx(all.v[static_cast<std::size_t>(j)]));
}

TEST_CASE("residual blocks and global average pooling: gradients match finite differences", "[model]") {
  // Identity and projection shortcuts; batch norms and the block's ReLUs (small steps keep clear
  // of their kinks).
  Network net("conv:2:3:1:1,res:2:1,res:3:2,gap,fc:4", 6, 6, 1, 5);
  std::vector<int> labels;
  const Tensor x = toy_batch(toy_dataset(8, 5), 8, 6, 4, &labels);
  std::size_t params = 0;
  const auto samples = gradient_samples(net, x, labels, 3, 2e-3f, &params);
  // conv (2) + res1 (2 convs, 2 bns: 8) + res2 (3 convs, 3 bns: 12) + fc (2)
  REQUIRE(params == 24);
  int checked = 0, agree = 0;
  for (const auto& g : samples) {
    INFO("param " << g.param << " index " << g.index << " analytic " << g.analytic << " numeric " << g.numeric);
    ++checked;
    if (g.analytic == Approx(g.numeric).margin(2e-3).epsilon(5e-2)) ++agree;
  }
  CHECK(checked > 60);
  CHECK(agree >= checked - 2);  // a step may still cross a ReLU kink
}

TEST_CASE("a short training run lowers the loss in every arithmetic", "[model]") {
  Dataset train = toy_dataset(640, 1), test = toy_dataset(200, 2);
  for (NumFormat a : {NumFormat::kFp32, NumFormat::kInt8, NumFormat::kPot4, NumFormat::kBf16, NumFormat::kFp8E4M3,
                      NumFormat::kInt4}) {
    TrainOptions o;
    o.spec = "conv:4:3:1:1,relu,maxpool:2,flatten,fc:16,relu,fc:10";
    o.arith = a;
    o.epochs = 4;
    o.batch = 32;
    o.lr = 0.05;
    o.progress = false;
    auto rep = train_network(o, train, test);
    auto losses = rep["train_loss_per_epoch"].get<std::vector<double>>();
    INFO(arith_name(a) << " losses " << losses.front() << " -> " << losses.back());
    CHECK(losses.back() < 0.5 * losses.front());
    CHECK(rep["test_accuracy"].get<double>() > 0.5);  // 10 classes: chance is 0.1
    // Deterministic: the same seed gives the same result bit for bit.
    auto again = train_network(o, train, test);
    CHECK(again["train_loss_per_epoch"] == rep["train_loss_per_epoch"]);
    CHECK(again["test_accuracy"] == rep["test_accuracy"]);
  }
}

TEST_CASE("two-term power-of-two weights: the 29 levels, the least covering scale, the nearest level", "[unit]") {
  // Levels: 0, 2^i and 2^i + 2^j (0 <= j < i <= 6), enumerated independently.
  std::vector<int> levels;
  for (int v = 0; v <= 127; ++v) {
    if (v == 0 || __builtin_popcount(static_cast<unsigned>(v)) <= 2) {
      if (v <= 96 && (v == 0 || 31 - __builtin_clz(static_cast<unsigned>(v)) <= 6)) levels.push_back(v);
    }
  }
  CHECK(levels.size() == 29);
  for (int v = -127; v <= 127; ++v) {
    INFO("v = " << v);
    CHECK(apot_level(v) == (std::find(levels.begin(), levels.end(), v < 0 ? -v : v) != levels.end()));
  }
  SplitMix64 rng(11);
  std::vector<float> x(3000);
  for (auto& v : x) v = static_cast<float>((rng.uniform() * 2 - 1) * std::exp(6 * rng.uniform() - 3));
  const IntPot2Tensor t = apot_nearest(x.data(), x.size());
  float m = 0;
  for (float v : x) m = std::max(m, std::fabs(v));
  CHECK(std::ldexp(96.0, t.scale_exp) >= m);
  CHECK(std::ldexp(96.0, t.scale_exp - 1) < m);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = std::ldexp(static_cast<double>(x[i]), -t.scale_exp);
    const int q = t.q[i];
    REQUIRE(apot_level(q));
    REQUIRE((q == 0 || (q < 0) == (r < 0)));
    for (int l : levels) {  // no level is nearer; a tie goes to the smaller magnitude
      const double dq = std::fabs(std::fabs(r) - std::abs(q)), dl = std::fabs(std::fabs(r) - l);
      REQUIRE((dq < dl || (dq == dl && std::abs(q) <= l)));
    }
  }
  // Stochastic rounding (errors): every value a level, one of the two around it, and unbiased: the
  // mean of many roundings of one value is the value (a 5-sigma bound).
  const IntPot2Tensor ts = apot_stochastic(x.data(), x.size(), 7);
  CHECK(ts.scale_exp == t.scale_exp);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = std::fabs(std::ldexp(static_cast<double>(x[i]), -ts.scale_exp));
    const int q = std::abs(int{ts.q[i]});
    REQUIRE(apot_level(q));
    for (int l : levels) REQUIRE(!(l > std::min<double>(r, q) && l < std::max<double>(r, q)));  // no level between
  }
  // The rule to the bit: the upper level exactly when counter_uniform(key, i) < (a - lo) / (hi - lo),
  // lo and hi the levels around a = |x| 2^-E found by a plain search (the quantizer uses a table).
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double a = std::min(96.0, std::fabs(std::ldexp(static_cast<double>(x[i]), -ts.scale_exp)));
    int lo = 0, hi = 96;
    for (int l : levels) {
      if (l <= a) lo = std::max(lo, l);
      if (l >= a) hi = std::min(hi, l);
    }
    const int q = lo == hi ? hi : static_cast<double>(counter_uniform(7, i)) < (a - lo) / (hi - lo) ? hi : lo;
    REQUIRE(std::abs(int{ts.q[i]}) == q);
  }
  std::vector<float> same(20000, 70.5f);
  same[0] = 96.0f;  // scale 2^0: 70.5 lies between the levels 68 and 72
  const IntPot2Tensor tm = apot_stochastic(same.data(), same.size(), 3);
  double sum = 0;
  for (std::size_t i = 1; i < same.size(); ++i) {
    REQUIRE((tm.q[i] == 68 || tm.q[i] == 72));
    sum += tm.q[i];
  }
  const double mean = sum / static_cast<double>(same.size() - 1), sd = std::sqrt(2.5 * 1.5) / std::sqrt(19999.0);
  CHECK(std::fabs(mean - 70.5) < 5 * sd);
  const float ties[3] = {96.0f, 88.0f, -7.0f};  // 88: between 80 and 96; 7: between 6 and 8
  const IntPot2Tensor tt = apot_nearest(ties, 3);
  CHECK(tt.scale_exp == 0);
  CHECK(tt.q[1] == 80);
  CHECK(tt.q[2] == -6);
}

TEST_CASE("INT8 with a power-of-two scale: the least covering exponent, nearest and unbiased stochastic rounding",
          "[unit]") {
  // The least E with 127 2^E >= m, checked against a direct search.
  for (float m : {1.0f, 127.0f, 127.5f, 254.0f, 254.001f, 3e-7f, 5e5f, 0.49f}) {
    const int e = int_pot2_scale_exp(m, 127);
    INFO("m = " << m);
    CHECK(std::ldexp(127.0, e) >= m);
    CHECK(std::ldexp(127.0, e - 1) < m);
  }
  CHECK(int_pot2_scale_exp(0.0f, 127) == 0);
  CHECK(int_pot2_scale_exp(NAN, 127) == 0);
  // Nearest: every value within half a step 2^E; the largest magnitude maps into [-127, 127].
  SplitMix64 rng(5);
  std::vector<float> x(4000);
  for (auto& v : x) v = static_cast<float>((rng.uniform() * 2 - 1) * 3.7);
  const IntPot2Tensor t = int_pot2_nearest(x.data(), x.size());
  CHECK(t.scale_exp == int_pot2_scale_exp(3.7f, 127));  // max |x| is just below 3.7
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = std::ldexp(static_cast<double>(t.q[i]), t.scale_exp);
    REQUIRE(std::fabs(v - x[i]) <= std::ldexp(0.5, t.scale_exp));
    REQUIRE(std::abs(static_cast<int>(t.q[i])) <= 127);
  }
  // Against a direct computation in double (x 2^-E, nearest even, clamped), over scales from
  // 2^-120 to 2^60 and tensors with tiny elements beside the largest.
  for (int scale : {-120, -60, -8, 0, 9, 60}) {
    std::vector<float> z(500);
    for (auto& v : z) v = static_cast<float>(std::ldexp((rng.uniform() * 2 - 1), scale - static_cast<int>(rng.below(40))));
    z[7] = std::ldexp(1.0f, scale);
    const IntPot2Tensor tz = int_pot2_nearest(z.data(), z.size());
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double want = std::max(-127.0, std::min(127.0, std::nearbyint(std::ldexp(static_cast<double>(z[i]), -tz.scale_exp))));
      REQUIRE(tz.q[i] == static_cast<std::int8_t>(want));
    }
  }
  // Ties to even: 2.5 steps -> 2, 3.5 steps -> 4.
  const float ties[2] = {std::ldexp(2.5f, -3), std::ldexp(127.0f, -3)};  // max 127 2^-3: E = -3
  const IntPot2Tensor tt = int_pot2_nearest(ties, 2);
  CHECK(tt.scale_exp == -3);
  CHECK(tt.q[0] == 2);
  // Stochastic: the mean over keys equals the value (unbiased in the linear domain).
  const float y[2] = {std::ldexp(0.3f, -3), std::ldexp(127.0f, -3)};
  double sum = 0;
  for (std::uint64_t key = 0; key < 20000; ++key) sum += int_pot2_stochastic(y, 2, key).q[0];
  CHECK(sum / 20000 == Approx(0.3).margin(0.02));
}

namespace {
// Records every GEMM's operand formats (no operands kept).
class FormatRecorder : public GemmRecorder {
 public:
  std::vector<TraceRecord> records;
  void add_pot4(const TraceRecord& r, const Pot4Code*, const Pot4Code*, const std::int64_t*) override { records.push_back(r); }
  void add_int8(const TraceRecord& r, const std::int8_t*, const std::int8_t*, const std::int64_t*) override {
    records.push_back(r);
  }
  void add_fp32(const TraceRecord& r, const float*, const float*, const float*) override { records.push_back(r); }
  void add_pot4_int8(const TraceRecord& r, const Pot4Code*, const std::int8_t*, const std::int64_t*) override {
    records.push_back(r);
  }
};
}  // namespace

TEST_CASE("per-layer precision: each class's INT8 operand lands in exactly the GEMMs that use it", "[model]") {
  // conv (first) - fc (hidden) - fc (last): for each single INT8 operand, every GEMM has a PoT4
  // operand and the INT8 one sits where the policy puts it.
  Dataset data = toy_dataset(64, 1);
  struct Case {
    const char* spec;
    std::uint8_t masks[4];
  } cases[] = {{"a", {1, 1, 1, 1}}, {"g", {4, 4, 4, 4}}, {"w", {2, 2, 2, 2}}, {"a@first,w@last,g@hidden", {1, 4, 2, 0}}};
  for (const auto& c : cases) {
    TrainOptions o;
    o.spec = "conv:4:3:1:1,relu,maxpool:2,flatten,fc:16,relu,fc:10";
    o.arith = NumFormat::kPot4;
    parse_int8_operands(c.spec, "test", o.int8_roles);
    for (int k = 0; k < 4; ++k) REQUIRE(o.int8_roles[k] == c.masks[k]);
    CHECK(int8_operands_spec(o.int8_roles) == c.spec);
    CHECK(multiplication_free(o));
    StepContext ctx = make_context(o);
    FormatRecorder rec;
    ctx.trace = &rec;
    Network net(o.spec, 8, 8, 1, 1);
    Tensor x;
    x.n = 8;
    x.h = x.w = 8;
    x.c = 1;
    x.v.assign(data.images.begin(), data.images.begin() + 8 * 64);
    // The numbers, not only the formats: the first convolution's output (bias 0 at initialisation)
    // is exactly the sum of the products of its operands' grid values, whatever their formats.
    {
      LayerClassScope first(ctx, kFirstLayer);
      const Grid xg = quantize(x.v.data(), x.v.size(), Role::kActivation, ctx, 0);
      const std::vector<float>& w = *net.params()[0].first;  // conv1: 3 x 3 x 1 x 4 (k x n)
      const Grid wg = quantize(w.data(), w.size(), Role::kWeight, ctx, 0);
      const Tensor y1 = net.layers()[0]->forward(x, ctx, false);
      REQUIRE(y1.v.size() == static_cast<std::size_t>(8 * 8 * 8 * 4));
      for (int b = 0; b < 8; ++b) {
        for (int p = 0; p < 8; ++p) {
          for (int q = 0; q < 8; ++q) {
            for (int j = 0; j < 4; ++j) {
              long double sum = 0;
              for (int r = 0; r < 3; ++r) {
                for (int t = 0; t < 3; ++t) {
                  const int iy = p + r - 1, ix = q + t - 1;
                  if (iy < 0 || iy >= 8 || ix < 0 || ix >= 8) continue;
                  sum += static_cast<long double>(grid_value(xg, static_cast<std::size_t>((b * 8 + iy) * 8 + ix))) *
                         grid_value(wg, static_cast<std::size_t>((r * 3 + t) * 4 + j));
                }
              }
              REQUIRE(y1.v[static_cast<std::size_t>(((b * 8 + p) * 8 + q) * 4 + j)] == static_cast<float>(sum));
            }
          }
        }
      }
    }
    rec.records.clear();  // the check's own GEMM
    Tensor y = net.forward(x, ctx, true);
    Tensor dy;
    const std::vector<int> labels(data.labels.begin(), data.labels.begin() + 8);
    softmax_cross_entropy(y, labels, &dy, nullptr);
    net.backward(dy, ctx);
    REQUIRE(rec.records.size() == 8);  // 3 layers x 3 GEMMs, less the first layer's bwd_data
    for (const auto& r : rec.records) {
      const int cls = r.layer == "conv1" ? kFirstLayer : r.layer == "fc1" ? kHiddenLayer : kLastLayer;
      // The slots of each phase's operands: fwd A.W, bwd_data G.W^T, bwd_weight A^T.G.
      const int slot_a = r.phase == Phase::kBwdData ? 2 : 0, slot_b = r.phase == Phase::kFwd ? 1 : r.phase == Phase::kBwdData ? 1 : 2;
      INFO(c.spec << " " << r.layer << " " << to_string(r.phase));
      CHECK(r.a.format == (((c.masks[cls] >> slot_a) & 1) ? NumFormat::kInt8 : NumFormat::kPot4));
      CHECK(r.b.format == (((c.masks[cls] >> slot_b) & 1) ? NumFormat::kInt8 : NumFormat::kPot4));
      CHECK((r.a.format == NumFormat::kPot4 || r.b.format == NumFormat::kPot4));
      if (r.a.format == NumFormat::kInt8) CHECK(std::log2(r.a.scale) == std::round(std::log2(r.a.scale)));
      if (r.b.format == NumFormat::kInt8) CHECK(std::log2(r.b.scale) == std::round(std::log2(r.b.scale)));
    }
  }
}

TEST_CASE("a grid's copies keep its format and scale", "[unit]") {
  Grid g;
  g.format = NumFormat::kInt8;
  g.e = -9;
  g.scale = std::ldexp(1.0f, -9);
  g.pot2 = true;
  g.v = {1, 2, 3};
  const Grid c = g.like();
  CHECK(c.format == g.format);
  CHECK(c.e == g.e);
  CHECK(c.scale == g.scale);
  CHECK(c.pot2 == g.pot2);
  CHECK(c.v.empty());
}

TEST_CASE("per-layer precision: bad --int8-operands items and second INT8 operands are refused", "[unit]") {
  std::uint8_t m[4];
  auto err = [&](const std::string& spec) {
    try {
      parse_int8_operands(spec, "train: --int8-operands", m);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(err("a,g") == "train: --int8-operands: \"g\" makes a second operand of the first layers INT8 in \"a,g\"; at most "
                      "one per layer, or its INT8 x INT8 products need multipliers");
  CHECK(err("a@first,w@edges") == "train: --int8-operands: \"w@edges\" makes a second operand of the first layers INT8 "
                                  "in \"a@first,w@edges\"; at most one per layer, or its INT8 x INT8 products need "
                                  "multipliers");
  CHECK(err("x") == "train: --int8-operands: bad item \"x\" in \"x\"; expected OPERAND[@CLASS] with OPERAND a, w or g "
                    "and CLASS all, first, hidden, last, attention or edges");
  CHECK(err("a@middle") == "train: --int8-operands: bad item \"a@middle\" in \"a@middle\"; expected OPERAND[@CLASS] with "
                           "OPERAND a, w or g and CLASS all, first, hidden, last, attention or edges");
  CHECK(err("a@first,a@first") == "train: --int8-operands: \"a@first\" repeats an operand of first layers in "
                                  "\"a@first,a@first\"");
  CHECK(err("g@hidden,a@first") == "accepted");
  CHECK(int8_operands_spec(m) == "a@first,g@hidden");
  // Every policy parses, names its parts, and is multiplication-free unless it keeps INT8 x INT8 edges.
  for (const auto& p : policies()) {
    TrainOptions o;
    apply_policy(find_policy(p.name), o, {});
    INFO(p.name);
    CHECK(multiplication_free(o) == (std::string(find_policy(p.name).first_last) == "potq"));
  }
  TrainOptions o;
  o.prc_roles[0] = false;
  apply_policy(find_policy("int8-errors"), o, {"prc-operands"});  // an explicit option wins
  CHECK(!o.prc_roles[0]);
  CHECK(o.int8_roles[kHiddenLayer] == 4);
  CHECK(o.policy == "int8-errors");
}

TEST_CASE("finer scales: each group is quantized as a tensor of its own, and the grouped GEMM is exact", "[model]") {
  SplitMix64 rng(17);
  const int m = 9, k = 70, n = 5;  // k not a multiple of the blocks: a partial last block
  std::vector<float> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(k) * n);
  for (auto& v : a) v = static_cast<float>((rng.uniform() * 2 - 1) * std::exp(4 * rng.uniform()));
  for (auto& v : b) v = static_cast<float>((rng.uniform() * 2 - 1) * std::exp(4 * rng.uniform()));
  TrainOptions o;
  o.arith = NumFormat::kPot4;
  StepContext ctx = make_context(o);
  // Groups along the columns of a (one per row, blocks of 16): each equals the block quantized alone.
  const Grid ga = quantize_grouped(a.data(), m, k, true, 16, Role::kActivation, ctx, 0);
  PotqOptions po = ctx.potq;
  po.prc = ctx.prc_roles[0];
  for (int i = 0; i < m; ++i) {
    for (int k0 = 0; k0 < k; k0 += 16) {
      const int len = std::min(16, k - k0);
      std::vector<float> ints(static_cast<std::size_t>(len));
      const Pot4Tensor t = potq_deterministic_ints(&a[static_cast<std::size_t>(i) * k + k0], static_cast<std::size_t>(len), po,
                                                   ints.data());
      REQUIRE(ga.group_exp(i, k0) == t.scale_exp);
      for (int c = 0; c < len; ++c) REQUIRE(ga.v[static_cast<std::size_t>(i) * k + k0 + c] == ints[static_cast<std::size_t>(c)]);
    }
  }
  // Every grain combination (A: outer, block16, block32; B: tensor, outer, block64), both
  // orientations of B: the output is the exact sum of the grouped values, rounded to FP32 once.
  for (int grain_a : {kScaleOuter, 16, 32}) {
    for (int grain_b : {kScaleTensor, kScaleOuter, 64}) {
      for (bool tb : {false, true}) {
        ctx.scale_grain[0] = grain_a;
        ctx.scale_grain[1] = grain_b;
        const std::vector<float> bs = tb ? transpose(b.data(), k, n) : b;  // stored n x k when tb
        const Grid qa = quantize(a.data(), a.size(), Role::kActivation, ctx, 0);
        const Grid qb = quantize(bs.data(), bs.size(), Role::kWeight, ctx, 0);
        const GemmSource sa{a.data(), Role::kActivation}, sb{bs.data(), Role::kWeight};
        std::vector<float> out(static_cast<std::size_t>(m) * n);
        linear_gemm(ctx, "t", nullptr, Phase::kFwd, false, tb, m, n, k, qa, qb, out.data(), LayerType::kFc, &sa,
                    grain_b != kScaleTensor ? &sb : nullptr);
        // The reference: the same groups, values summed exactly in long double.
        const Grid ra = quantize_grouped(a.data(), m, k, true, grain_a > 0 ? grain_a : 0, Role::kActivation, ctx, 0);
        Grid rb = grain_b != kScaleTensor
                      ? quantize_grouped(bs.data(), tb ? n : k, tb ? k : n, tb, grain_b > 0 ? grain_b : 0, Role::kWeight, ctx, 0)
                      : qb;
        if (rb.ge.empty()) {
          rb.rows = tb ? n : k;
          rb.cols = tb ? k : n;
          rb.g_rows = rb.rows;
          rb.g_cols = rb.cols;
        }
        INFO("grains " << grain_a << " " << grain_b << " tb " << tb);
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < n; ++j) {
            long double sum = 0;
            for (int t = 0; t < k; ++t) {
              const long double va = std::ldexp(static_cast<long double>(ra.v[static_cast<std::size_t>(i) * k + t]), ra.group_exp(i, t) - 6);
              const std::size_t bi = tb ? static_cast<std::size_t>(j) * k + t : static_cast<std::size_t>(t) * n + j;
              const long double vb = std::ldexp(static_cast<long double>(rb.v[bi]), (tb ? rb.group_exp(j, t) : rb.group_exp(t, j)) - 6);
              sum += va * vb;
            }
            REQUIRE(out[static_cast<std::size_t>(i) * n + j] == static_cast<float>(sum));
          }
        }
      }
    }
  }
  // A policy's INT8 activations (power-of-two scale, per tensor) with finer scales on the PoT4
  // weights: the shift-add pair, exact as well (INT8 values at 2^e, PoT4 at 2^(e_group - 6)).
  for (int c = 0; c < kLayerClasses; ++c) ctx.int8_roles[c] = 1;  // A in INT8
  for (int grain_b : {kScaleOuter, 16, 64}) {
    for (bool tb : {false, true}) {
      ctx.scale_grain[0] = kScaleOuter;  // ignored: A is INT8
      ctx.scale_grain[1] = grain_b;
      const std::vector<float> bs = tb ? transpose(b.data(), k, n) : b;
      const Grid qa = quantize(a.data(), a.size(), Role::kActivation, ctx, 0);
      REQUIRE(qa.format == NumFormat::kInt8);
      REQUIRE(qa.pot2);
      const Grid qb = quantize_operand(bs.data(), bs.size(), Role::kWeight, ctx, 0);
      REQUIRE(qb.deferred);  // no per-tensor copy is made for a finer-scaled operand
      const GemmSource sb{bs.data(), Role::kWeight};
      std::vector<float> out(static_cast<std::size_t>(m) * n);
      linear_gemm(ctx, "t", nullptr, Phase::kFwd, false, tb, m, n, k, qa, qb, out.data(), LayerType::kFc, nullptr, &sb);
      const Grid rb = quantize_grouped(bs.data(), tb ? n : k, tb ? k : n, tb, grain_b > 0 ? grain_b : 0, Role::kWeight, ctx, 0);
      INFO("INT8 A, grain " << grain_b << " tb " << tb);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
          long double sum = 0;
          for (int t = 0; t < k; ++t) {
            const long double va = std::ldexp(static_cast<long double>(qa.v[static_cast<std::size_t>(i) * k + t]), qa.e);
            const std::size_t bi = tb ? static_cast<std::size_t>(j) * k + t : static_cast<std::size_t>(t) * n + j;
            const long double vb = std::ldexp(static_cast<long double>(rb.v[bi]), (tb ? rb.group_exp(j, t) : rb.group_exp(t, j)) - 6);
            sum += va * vb;
          }
          REQUIRE(out[static_cast<std::size_t>(i) * n + j] == static_cast<float>(sum));
        }
      }
    }
  }
  for (int c = 0; c < kLayerClasses; ++c) ctx.int8_roles[c] = 0;
  // A transposed left operand (the backward-weight GEMM's A^T, stored k x m and grouped along its
  // rows), against the same long-double reference.
  {
    ctx.scale_grain[0] = 16;
    ctx.scale_grain[1] = kScaleOuter;
    const std::vector<float> at = transpose(a.data(), m, k);  // stored k x m
    const Grid qa = quantize_operand(at.data(), at.size(), Role::kActivation, ctx, 0);
    const Grid qb = quantize_operand(b.data(), b.size(), Role::kWeight, ctx, 0);
    const GemmSource sa{at.data(), Role::kActivation}, sb{b.data(), Role::kWeight};
    std::vector<float> out(static_cast<std::size_t>(m) * n);
    linear_gemm(ctx, "t", nullptr, Phase::kBwdWeight, true, false, m, n, k, qa, qb, out.data(), LayerType::kFc, &sa, &sb);
    const Grid ra = quantize_grouped(at.data(), k, m, false, 16, Role::kActivation, ctx, 0);
    const Grid rb = quantize_grouped(b.data(), k, n, false, 0, Role::kWeight, ctx, 0);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        long double sum = 0;
        for (int t = 0; t < k; ++t) {
          sum += std::ldexp(static_cast<long double>(ra.v[static_cast<std::size_t>(t) * m + i]), ra.group_exp(t, i) - 6) *
                 std::ldexp(static_cast<long double>(rb.v[static_cast<std::size_t>(t) * n + j]), rb.group_exp(t, j) - 6);
        }
        REQUIRE(out[static_cast<std::size_t>(i) * n + j] == static_cast<float>(sum));
      }
    }
  }
  // The aligned sum is rounded to FP32 once: 2^53 + 2^29 + 1 is above the halfway point between
  // 2^53 and 2^53 + 2^30 (through binary64 it would round twice, to 2^53); 3 2^-150 is halfway
  // between two subnormals and rounds to the even one, 2^-148.
  CHECK(aligned_to_float((std::int64_t{1} << 53) + (std::int64_t{1} << 29) + 1, 0) == std::ldexp(1.0f, 53) + std::ldexp(1.0f, 30));
  CHECK(aligned_to_float(3, -150) == std::ldexp(1.0f, -148));
  CHECK(aligned_to_float(-5, 2) == -20.0f);
  // A traced step records each group's exponent: the trace's exact aligned sums, scaled by 2^L
  // (models/scaled_gemm.h), are the training core's outputs, and the reader's reference agrees.
  for (const auto& [grain_a, grain_b, tb] : {std::tuple{kScaleOuter, kScaleTensor, false}, std::tuple{16, 64, true},
                                             std::tuple{kScaleTensor, 32, false}}) {
    test::TempDir dir;
    TraceWriter writer(dir.file("s.json"), "test");
    ctx.trace = &writer;
    ctx.scale_grain[0] = grain_a;
    ctx.scale_grain[1] = grain_b;
    const std::vector<float> bs = tb ? transpose(b.data(), k, n) : b;
    const Grid qa = quantize_operand(a.data(), a.size(), Role::kActivation, ctx, 0);
    const Grid qb = quantize_operand(bs.data(), bs.size(), Role::kWeight, ctx, 0);
    const GemmSource sa{a.data(), Role::kActivation}, sb{bs.data(), Role::kWeight};
    std::vector<float> out(static_cast<std::size_t>(m) * n);
    linear_gemm(ctx, "t", nullptr, Phase::kFwd, false, tb, m, n, k, qa, qb, out.data(), LayerType::kFc, &sa, &sb);
    writer.commit();
    ctx.trace = nullptr;
    TraceReader reader(dir.file("s.json"));
    REQUIRE(reader.trace().records.size() == 1);
    const TraceRecord& r = reader.trace().records[0];
    INFO("grains " << grain_a << " " << grain_b << " tb " << tb);
    CHECK(r.scaled());
    CHECK(r.a.scale_block == (grain_a == kScaleTensor ? 0 : grain_a == kScaleOuter ? k : grain_a));
    CHECK(r.b.scale_block == (grain_b == kScaleTensor ? 0 : grain_b == kScaleOuter ? k : grain_b));
    CHECK(r.accumulator.bits == 64);
    const RecordPayload p = reader.read_payload(0);
    CHECK(check_record_result(r, p).empty());
    const std::vector<std::int32_t> ia = record_operand_ints(r, true, p), ib = record_operand_ints(r, false, p);
    ScaledLsb lsb;
    std::string why;
    REQUIRE(scaled_lsb(m, n, k, ia.data(), record_scale_groups(r, true, p), ib.data(), record_scale_groups(r, false, p),
                       r.max_product_term(), &lsb, &why));
    for (std::size_t i = 0; i < out.size(); ++i) {
      REQUIRE(out[i] == aligned_to_float(p.expected_acc[i], lsb.lsb));
    }
  }
  int grains[3];
  parse_scales("w=outer,a=block32", "test", grains);
  CHECK(scales_spec(grains) == "a=block32,w=outer");
  CHECK_THROWS_WITH(parse_scales("w=block8", "train: --scales", grains),
                    "train: --scales: bad item \"w=block8\" in \"w=block8\"; expected OPERAND=GRAIN with OPERAND a, w or g "
                    "and GRAIN tensor, outer, block16, block32 or block64");
}
