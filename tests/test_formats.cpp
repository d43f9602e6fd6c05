// The narrow number formats (models/minifloat.h, models/int8.h with qmax 7) and their
// quantizers, against brute-force references over every code.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "models/minifloat.h"
#include "models/number_format.h"
#include "models/quantizer.h"

using namespace mfsim;

namespace {
// Every finite non-negative value of an FP8 format with its code, ascending.
std::vector<std::pair<float, std::uint8_t>> fp8_values(NumFormat f) {
  std::vector<std::pair<float, std::uint8_t>> v;
  for (unsigned c = 0; c < 0x80; ++c) {
    if (!fp8_is_nan(f, static_cast<std::uint8_t>(c))) v.emplace_back(fp8_decode(f, static_cast<std::uint8_t>(c)), c);
  }
  return v;
}
// Nearest value by search; ties to the even code (mantissa LSB 0), saturating at the largest.
float fp8_nearest_reference(NumFormat f, float x) {
  const auto vals = fp8_values(f);
  const double a = std::fabs(static_cast<double>(x));
  if (a >= vals.back().first) return std::copysign(vals.back().first, x);
  std::size_t best = 0;
  for (std::size_t i = 1; i < vals.size(); ++i) {
    const double d = std::fabs(vals[i].first - a), db = std::fabs(vals[best].first - a);
    if (d < db || (d == db && (vals[i].second & 1) == 0)) best = i;
  }
  return std::copysign(vals[best].first, x);
}
}  // namespace

TEST_CASE("FP8 E4M3 and E5M2: the formats' value sets, every code decoded and re-encoded", "[unit]") {
  const auto e4 = fp8_values(NumFormat::kFp8E4M3), e5 = fp8_values(NumFormat::kFp8E5M2);
  CHECK(e4.size() == 127);  // 128 codes less the NaN S.1111.111
  CHECK(e5.size() == 124);  // exponent 31 holds infinity and three NaNs
  CHECK(e4.back().first == 448.0f);
  CHECK(e5.back().first == 57344.0f);
  CHECK(e4[1].first == std::ldexp(1.0f, -9));   // smallest subnormal 2^-6 * 2^-3
  CHECK(e5[1].first == std::ldexp(1.0f, -16));  // 2^-14 * 2^-2
  for (NumFormat f : {NumFormat::kFp8E4M3, NumFormat::kFp8E5M2}) {
    for (unsigned c = 0; c < 256; ++c) {
      const auto code = static_cast<std::uint8_t>(c);
      if (fp8_is_nan(f, code)) {
        CHECK(std::isnan(fp8_decode(f, code)));
        continue;
      }
      std::uint8_t back = 0;
      REQUIRE(fp8_encode_exact(f, fp8_decode(f, code), &back));
      CHECK(back == code);
      CHECK(fp8_round(f, fp8_decode(f, code)) == fp8_decode(f, code));
    }
    std::uint8_t c = 0;
    CHECK_FALSE(fp8_encode_exact(f, 1.0f + 1.0f / 64, &c));  // between two values
    CHECK_FALSE(fp8_encode_exact(f, std::numeric_limits<float>::infinity(), &c));
  }
}

TEST_CASE("FP8 rounding is to nearest, ties to even, saturating: against a search over every value", "[unit]") {
  std::mt19937 rng(5);
  for (NumFormat f : {NumFormat::kFp8E4M3, NumFormat::kFp8E5M2}) {
    const auto vals = fp8_values(f);
    std::vector<float> xs = {0.0f, -0.0f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(), 1e-30f};
    for (std::size_t i = 0; i + 1 < vals.size(); ++i) {  // every midpoint and its neighbours
      const float mid = (vals[i].first + vals[i + 1].first) / 2;
      xs.insert(xs.end(), {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid});
    }
    std::uniform_real_distribution<float> u(-8.0f, 17.0f);
    for (int i = 0; i < 20000; ++i) xs.push_back((i % 2 ? -1.0f : 1.0f) * std::exp2(u(rng)));
    for (float x : xs) {
      INFO(to_string(f) << " x = " << x);
      CHECK(fp8_round(f, x) == fp8_nearest_reference(f, x));
    }
  }
}

TEST_CASE("BF16 rounds to nearest even and holds the upper half of binary32", "[unit]") {
  std::uint16_t c = 0;
  CHECK(bf16_round(1.0f) == 1.0f);
  CHECK(bf16_round(1.0f + std::ldexp(1.0f, -8)) == 1.0f);                 // a tie: to even
  CHECK(bf16_round(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));  // tie: up to even
  CHECK(bf16_round(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 1.0f + std::ldexp(1.0f, -7));
  CHECK(bf16_encode_exact(-2.5f, &c));
  CHECK(bf16_decode(c) == -2.5f);
  CHECK_FALSE(bf16_encode_exact(1.0f + std::ldexp(1.0f, -9), &c));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  for (int i = 0; i < 10000; ++i) {
    const float x = u(rng), r = bf16_round(x);
    REQUIRE(bf16_encode_exact(r, &c));
    // r is one of the two bf16 neighbours of x and no farther than the other.
    const float lo = bf16_decode(static_cast<std::uint16_t>(c - 1)), hi = bf16_decode(static_cast<std::uint16_t>(c + 1));
    CHECK(std::fabs(r - x) <= std::fabs(lo - x));
    CHECK(std::fabs(r - x) <= std::fabs(hi - x));
  }
}

TEST_CASE("FP8 and INT4 tensor quantizers: power-of-two scale, range and error bounds", "[unit]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 0.03f);
  std::vector<float> x(5000);
  for (auto& v : x) v = nd(rng);
  x[17] = 0.25f;  // the largest magnitude
  for (NumFormat f : {NumFormat::kFp8E4M3, NumFormat::kFp8E5M2}) {
    FloatTensor t = fp8_quantize(f, x.data(), x.size());
    const float fmax = f == NumFormat::kFp8E4M3 ? kFp8E4M3Max : kFp8E5M2Max;
    // The smallest power of two that brings 0.25 to at most the format's largest value.
    CHECK(std::ldexp(0.25f, -t.scale_exp) <= fmax);
    CHECK(std::ldexp(0.25f, -(t.scale_exp - 1)) > fmax);
    for (std::size_t i = 0; i < x.size(); ++i) {
      std::uint8_t c = 0;
      REQUIRE(fp8_encode_exact(f, t.q[i], &c));
      CHECK(t.q[i] == fp8_round(f, std::ldexp(x[i], -t.scale_exp)));
    }
  }
  Int8Tensor q4 = int8_nearest(x.data(), x.size(), 7);
  CHECK(q4.scale == Approx(0.25 / 7));
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(std::abs(q4.q[i]) <= 7);
    CHECK(std::fabs(q4.q[i] * q4.scale - x[i]) <= q4.scale / 2 * 1.0001f);
  }
  Int8Tensor s4 = int8_stochastic(x.data(), x.size(), 77, 7);
  for (auto v : s4.q) CHECK(std::abs(v) <= 7);
  CHECK(max_product_term(NumFormat::kInt4) == 49);
  CHECK(bits_per_element(NumFormat::kInt4) == 4);
  CHECK(bits_per_element(NumFormat::kBf16) == 16);
}

TEST_CASE("ALS-POTQ levers: PRC's range rule and the floor scale of errors", "[unit]") {
  std::vector<float> x(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.05f * static_cast<float>(i % 7) / 7.0f;
  x[3] = 1.0f;  // one outlier: clipping it costs 0.1% of the elements
  PotqOptions o;
  o.prc_criterion = PrcCriterion::kRange;
  Pot4Tensor t = potq_deterministic(x.data(), x.size(), o);
  CHECK(t.rho == -2);  // the most clipping of the three candidates that clips at most 0.5%
  for (std::size_t i = 0; i < 20; ++i) x[100 + i] = 0.9f;  // 2% near the top: no offset clips few enough
  CHECK(potq_deterministic(x.data(), x.size(), o).rho == 0);
  o.prc_criterion = PrcCriterion::kMse;
  const Pot4Tensor m = potq_deterministic(x.data(), x.size(), o);
  CHECK(m.rho <= 0);
  CHECK(m.rho >= -2);
  // Errors: E = ceil(log2 max) by default; floor clips the top octave.
  std::vector<float> g = {0.75f, -0.1f, 0.2f};
  PotqOptions e;
  e.prc = false;
  CHECK(potq_stochastic(g.data(), g.size(), e, 1).scale_exp == 0);
  e.error_scale_floor = true;
  CHECK(potq_stochastic(g.data(), g.size(), e, 1).scale_exp == -1);
  g[0] = 0.5f;  // a power of two: floor and ceil agree
  CHECK(potq_stochastic(g.data(), g.size(), e, 1).scale_exp == -1);
}
