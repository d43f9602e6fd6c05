// MF-MAC arithmetic, accumulators and the reference GEMMs (models/mfmac.h, models/gemm_ref.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "models/gemm_ref.h"
#include "models/mfmac.h"

using namespace mfsim;

TEST_CASE("MF-MAC: all 16 x 16 code pairs equal the double product", "[model]") {
  const int ea = -3, eb = 5;
  for (unsigned ca = 0; ca < 16; ++ca) {
    for (unsigned cb = 0; cb < 16; ++cb) {
      auto a = static_cast<Pot4Code>(ca), b = static_cast<Pot4Code>(cb);
      MfMacProduct p = mfmac_product(a, b);
      double want = pot4_decode(a, ea) * pot4_decode(b, eb);
      INFO("codes " << ca << " x " << cb);
      CHECK(p.zero == (want == 0.0));
      if (!p.zero) {
        CHECK(p.exp_sum == (ca & 7u) + (cb & 7u));
        CHECK(p.exp_sum >= 2);
        CHECK(p.exp_sum <= 14);
        CHECK(p.exp_sum < 16);  // fits the 4-bit adder output
        CHECK(p.negative == (((ca ^ cb) & 8u) != 0));
      }
      CHECK(mfmac_acc_to_double(p.term(), ea, eb) == want);
      // The one-hot term is also the product of the INT8 images of the codes.
      CHECK(p.term() == static_cast<std::int64_t>(pot4_int(a)) * pot4_int(b));
    }
  }
}

TEST_CASE("accumulator overflow is caught at the exact boundary", "[model]") {
  for (int bits : {8, 16, 32, 63, 64}) {
    AccumulatorSpec spec{bits, OverflowPolicy::kError};
    INFO("bits " << bits);
    std::int64_t acc = spec.max() - 5;
    CHECK_FALSE(accumulate(acc, 5, spec, 0, 0, 0));
    CHECK(acc == spec.max());
    CHECK_THROWS_AS(accumulate(acc, 1, spec, 2, 3, 4), AccumulatorOverflow);
    CHECK(acc == spec.max());  // unchanged on error
    acc = spec.min() + 1;
    CHECK_FALSE(accumulate(acc, -1, spec, 0, 0, 0));
    CHECK(acc == spec.min());
    CHECK_THROWS_AS(accumulate(acc, -1, spec, 0, 0, 0), AccumulatorOverflow);

    AccumulatorSpec sat{bits, OverflowPolicy::kSaturate};
    acc = sat.max() - 1;
    CHECK_FALSE(accumulate(acc, 1, sat, 0, 0, 0));
    CHECK(accumulate(acc, 1, sat, 0, 0, 0));
    CHECK(acc == sat.max());
    acc = sat.min();
    CHECK(accumulate(acc, -7, sat, 0, 0, 0));
    CHECK(acc == sat.min());
    CHECK_FALSE(accumulate(acc, 7, sat, 0, 0, 0));
    CHECK(acc == sat.min() + 7);
  }
  AccumulatorSpec s32{32, OverflowPolicy::kError};
  CHECK(s32.max() == 2147483647);
  CHECK(s32.min() == -2147483648LL);
  try {
    std::int64_t acc = s32.max();
    accumulate(acc, 4096, s32, 2, 3, 4);
    FAIL("no overflow reported");
  } catch (const AccumulatorOverflow& e) {
    CHECK(std::string(e.what()) ==
          "32-bit accumulator overflow at output element (2, 3) after product k = 4; widen the "
          "accumulator or select saturation");
  }
}

TEST_CASE("pot4 GEMM overflows a 16-bit accumulator exactly when K * 4096 exceeds it", "[model]") {
  // All operands +2^E (m = 7): every product is the largest one-hot term 2^12.
  AccumulatorSpec s16{16, OverflowPolicy::kError};
  const Pot4Code big = pot4_encode(false, 7);
  std::vector<Pot4Code> a(8, big), b(8, big);
  std::int64_t c = 0;
  // 2^15 - 1 = 32767 = 7 * 4096 + 4095: seven products fit, the eighth overflows.
  CHECK_NOTHROW(gemm_pot4_ref(GemmShape{1, 1, 7}, a.data(), b.data(), s16, &c));
  CHECK(c == 7 * 4096);
  CHECK_THROWS_AS(gemm_pot4_ref(GemmShape{1, 1, 8}, a.data(), b.data(), s16, &c), AccumulatorOverflow);
  AccumulatorSpec sat{16, OverflowPolicy::kSaturate};
  GemmStats st = gemm_pot4_ref(GemmShape{1, 1, 8}, a.data(), b.data(), sat, &c);
  CHECK(c == 32767);
  CHECK(st.saturations == 1);
  CHECK(mfmac_acc_bound(7) == 7u * 4096u);
}

namespace {

std::vector<Pot4Code> random_codes(std::mt19937& rng, std::size_t n, int zero_percent) {
  std::uniform_int_distribution<int> code(0, 15), pct(0, 99);
  std::vector<Pot4Code> v(n);
  for (auto& c : v) c = pct(rng) < zero_percent ? Pot4Code{0} : static_cast<Pot4Code>(code(rng));
  return v;
}

}  // namespace

TEST_CASE("pot4 reference GEMM equals a naive double triple loop on odd shapes", "[model]") {
  const unsigned seed = 20261128;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (GemmShape s : {GemmShape{7, 5, 33}, GemmShape{1, 1, 1}, GemmShape{3, 11, 1},
                      GemmShape{13, 1, 64}, GemmShape{5, 9, 257}}) {
    for (int zeros : {0, 50, 95}) {
      auto a = random_codes(rng, static_cast<std::size_t>(s.m * s.k), zeros);
      auto b = random_codes(rng, static_cast<std::size_t>(s.k * s.n), zeros);
      const int ea = -2, eb = -7;
      std::vector<std::int64_t> c(static_cast<std::size_t>(s.m * s.n));
      GemmStats st = gemm_pot4_ref(s, a.data(), b.data(), AccumulatorSpec{}, c.data());
      std::uint64_t zero_products = 0;
      for (std::int64_t i = 0; i < s.m; ++i) {
        for (std::int64_t j = 0; j < s.n; ++j) {
          double sum = 0.0;  // exact: powers of two in a 13-exponent window, K small
          for (std::int64_t k = 0; k < s.k; ++k) {
            double x = pot4_decode(a[i * s.k + k], ea), y = pot4_decode(b[k * s.n + j], eb);
            zero_products += (x == 0.0 || y == 0.0) ? 1 : 0;
            sum += x * y;
          }
          INFO("shape " << s.m << "x" << s.n << "x" << s.k << " element " << i << "," << j);
          CHECK(mfmac_acc_to_double(c[i * s.n + j], ea, eb) == sum);
        }
      }
      CHECK(st.products == s.macs());
      CHECK(st.zero_gated == zero_products);
      CHECK(st.saturations == 0);
    }
  }
}

TEST_CASE("int8 reference GEMM equals a naive integer triple loop on odd shapes", "[model]") {
  const unsigned seed = 7;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> val(-127, 127);
  GemmShape s{7, 5, 33};
  std::vector<std::int8_t> a(static_cast<std::size_t>(s.m * s.k)), b(static_cast<std::size_t>(s.k * s.n));
  for (auto& x : a) x = static_cast<std::int8_t>(val(rng));
  for (auto& x : b) x = static_cast<std::int8_t>(val(rng));
  std::vector<std::int64_t> c(static_cast<std::size_t>(s.m * s.n));
  gemm_int8_ref(s, a.data(), b.data(), AccumulatorSpec{}, c.data());
  for (std::int64_t i = 0; i < s.m; ++i) {
    for (std::int64_t j = 0; j < s.n; ++j) {
      long long sum = 0;
      for (std::int64_t k = 0; k < s.k; ++k) sum += static_cast<long long>(a[i * s.k + k]) * b[k * s.n + j];
      CHECK(c[i * s.n + j] == sum);
    }
  }
  // INT32 accumulation overflows once K * 127^2 > 2^31 - 1: K = 133145 is the first that can.
  std::vector<std::int8_t> ones(133145, 127);
  std::int64_t out = 0;
  CHECK_NOTHROW(gemm_int8_ref(GemmShape{1, 1, 133144}, ones.data(), ones.data(), AccumulatorSpec{}, &out));
  CHECK(out == 133144LL * 127 * 127);
  CHECK_THROWS_AS(gemm_int8_ref(GemmShape{1, 1, 133145}, ones.data(), ones.data(), AccumulatorSpec{}, &out),
                  AccumulatorOverflow);
}

TEST_CASE("fp32 reference GEMM: exact on exact inputs, ascending-k rounding otherwise", "[model]") {
  const unsigned seed = 11;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> val(-127, 127);
  GemmShape s{7, 5, 33};
  std::vector<float> a(static_cast<std::size_t>(s.m * s.k)), b(static_cast<std::size_t>(s.k * s.n));
  // i * 2^-6 with |i| < 2^7: every partial sum is a multiple of 2^-12 below 33 * 2^14 * 2^-12,
  // i.e. fewer than 2^24 units: exact in FP32 whatever the order.
  for (auto& x : a) x = std::ldexp(static_cast<float>(val(rng)), -6);
  for (auto& x : b) x = std::ldexp(static_cast<float>(val(rng)), -6);
  for (bool fma : {false, true}) {
    std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
    gemm_fp32_ref(s, a.data(), b.data(), fma, c.data());
    for (std::int64_t i = 0; i < s.m; ++i) {
      for (std::int64_t j = 0; j < s.n; ++j) {
        double sum = 0.0;
        for (std::int64_t k = 0; k < s.k; ++k) sum += static_cast<double>(a[i * s.k + k]) * b[k * s.n + j];
        CHECK(static_cast<double>(c[i * s.n + j]) == sum);
      }
    }
  }
  // Where rounding happens the order is ascending k: 1 + 2^-24 + 2^-24 rounds twice to 1 in
  // that order, and a fused multiply-add differs from multiply-then-add.
  std::vector<float> x{1.0f, std::ldexp(1.0f, -24), std::ldexp(1.0f, -24)}, ones{1.0f, 1.0f, 1.0f};
  float c = -1.0f;
  gemm_fp32_ref(GemmShape{1, 1, 3}, x.data(), ones.data(), false, &c);
  CHECK(c == 1.0f);
  // a = {1, y}, b = {-1, y} with y = 1 + 2^-12: y*y = 1 + 2^-11 + 2^-24 is not a float.
  const float y = 1.0f + std::ldexp(1.0f, -12);
  std::vector<float> av{1.0f, y}, bv{-1.0f, y};
  float plain = 0.0f, fused = 0.0f;
  gemm_fp32_ref(GemmShape{1, 1, 2}, av.data(), bv.data(), false, &plain);
  gemm_fp32_ref(GemmShape{1, 1, 2}, av.data(), bv.data(), true, &fused);
  CHECK(plain == std::ldexp(1.0f, -11));                           // product rounded first
  CHECK(fused == std::ldexp(1.0f, -11) + std::ldexp(1.0f, -24));   // one rounding (exact here)
}
