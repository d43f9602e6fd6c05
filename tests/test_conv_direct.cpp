// The direct convolution kernels (training/conv_direct.h) against plain reference loops written
// from the documented order, bit for bit, in every instruction-set build this machine runs; the
// reduction blocks against OpenBLAS's rule; and the per-shape choice of path.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tests/test_util.h"
#include "training/conv_direct.h"
#include "training/layer_kernels.h"
#include "training/quant_gemm.h"

using namespace mfsim;

namespace {

using test::same_bits;

// Mixed magnitudes and signs (so the order of the sums shows in the bits), with zeros and
// negative zeros. (No NaN: which NaN payload an FMA returns depends on its operand order.)
std::vector<float> random_values(std::mt19937& rng, std::size_t n) { return test::mixed_values(rng, n, 10, 20, false); }

// The input value reduction index kk of output pixel `row` reads (0 in the padding).
float tap_value(const ConvShape& s, const std::vector<float>& x, int row, int kk) {
  const int p = s.p(), q = s.q();
  const int b = row / (p * q), y = row / q % p, xo = row % q;
  const int r = kk / (s.k * s.c), t = kk / s.c % s.k, ch = kk % s.c;
  const int iy = y * s.stride + r - s.pad, ix = xo * s.stride + t - s.pad;
  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return 0.0f;
  return x[((static_cast<std::size_t>(b) * s.h + iy) * s.w + ix) * s.c + ch];
}

// sum over blocks (in order, from +0) of fused multiply-add chains from +0 over each block.
template <class Product>
float blocked_sum(const std::vector<int>& blocks, Product product) {
  float c = 0.0f;
  int i0 = 0;
  for (int len : blocks) {
    float acc = 0.0f;
    for (int i = i0; i < i0 + len; ++i) {
      float a = 0, b = 0;
      product(i, &a, &b);
      acc = std::fma(a, b, acc);
    }
    c = c + acc;
    i0 += len;
  }
  return c;
}

struct Case {
  ConvShape s;
  int cout;
};

// Puts the widest build back however a test ends (the choice is global).
struct IsaGuard {
  ~IsaGuard() { conv_direct_use_isa("best"); }
};

}  // namespace

TEST_CASE("conv direct: the reduction blocks follow OpenBLAS's level-3 rule", "[unit]") {
  using V = std::vector<int>;
  CHECK(reduction_blocks(0) == V{});
  CHECK(reduction_blocks(9) == V{9});
  CHECK(reduction_blocks(320) == V{320});
  CHECK(reduction_blocks(321) == V{160, 161});  // 321 / 2 rounded up to a multiple of 16, then the rest
  CHECK(reduction_blocks(576) == V{288, 288});
  CHECK(reduction_blocks(639) == V{320, 319});
  CHECK(reduction_blocks(640) == V{320, 320});
  CHECK(reduction_blocks(800) == V{320, 240, 240});
  for (int n : {1, 17, 333, 1000, 3136, 50176}) {
    const V b = reduction_blocks(n);
    long sum = 0;
    for (int len : b) {
      CHECK(len > 0);
      CHECK(len <= 320);
      sum += len;
    }
    CHECK(sum == n);
  }
}

TEST_CASE("conv direct: pad_input and crop_input are inverse copies with a zero border", "[unit]") {
  std::mt19937 rng(5);
  const ConvShape s{2, 5, 4, 3, 3, 1, 2};
  const std::vector<float> x = random_values(rng, static_cast<std::size_t>(s.n) * s.h * s.w * s.c);
  std::vector<float> xpad(padded_size(s), 7.0f), back(x.size());
  pad_input(s, x.data(), xpad.data());
  crop_input(s, xpad.data(), back.data());
  CHECK(same_bits(x, back));
  double border = 0;
  for (float v : xpad) border += std::fabs(v);
  double inner = 0;
  for (float v : x) inner += std::fabs(v);
  CHECK(border == inner);  // every padding element is zero (none kept the 7s)
}

TEST_CASE("conv direct: forward, backward-data and backward-weight equal the reference order bit for bit in every ISA",
          "[unit]") {
  // Tiles and vector tails: pixel counts that are not multiples of a tile, output channels that
  // need 16-, 8- and 1-lane vectors, reductions over 320 (several blocks), strides and paddings.
  const std::vector<Case> cases = {
      {{2, 7, 6, 3, 3, 1, 1}, 16},  {{1, 9, 9, 8, 3, 2, 1}, 8},   {{3, 5, 5, 40, 3, 1, 1}, 32},
      {{2, 20, 20, 4, 1, 1, 0}, 64}, {{1, 6, 6, 2, 5, 1, 2}, 24},  {{1, 4, 4, 3, 3, 1, 1}, 5},
      {{1, 3, 3, 2, 3, 1, 1}, 336}, {{2, 8, 8, 16, 3, 2, 1}, 32}, {{1, 28, 28, 1, 5, 1, 2}, 8},
  };
  std::mt19937 rng(11);
  IsaGuard guard;
  for (const Case& c : cases) {
    const ConvShape& s = c.s;
    const int k = s.k * s.k * s.c, m = s.n * s.p() * s.q(), cout = c.cout;
    const std::size_t nx = static_cast<std::size_t>(s.n) * s.h * s.w * s.c;
    const std::vector<float> x = random_values(rng, nx), w = random_values(rng, static_cast<std::size_t>(k) * cout),
                             g = random_values(rng, static_cast<std::size_t>(m) * cout);
    // The reference: every element's blocked fused multiply-add chains, written out.
    std::vector<float> y_ref(static_cast<std::size_t>(m) * cout), dw_ref(static_cast<std::size_t>(k) * cout),
        dcols(static_cast<std::size_t>(m) * k), dx_ref(nx, 0.0f);
    const std::vector<int> kb = reduction_blocks(k), cb = reduction_blocks(cout), mb = reduction_blocks(m);
    for (int row = 0; row < m; ++row) {
      for (int co = 0; co < cout; ++co) {
        y_ref[static_cast<std::size_t>(row) * cout + co] = blocked_sum(kb, [&](int kk, float* a, float* b) {
          *a = tap_value(s, x, row, kk);
          *b = w[static_cast<std::size_t>(kk) * cout + co];
        });
      }
      for (int kk = 0; kk < k; ++kk) {
        dcols[static_cast<std::size_t>(row) * k + kk] = blocked_sum(cb, [&](int co, float* a, float* b) {
          *a = g[static_cast<std::size_t>(row) * cout + co];
          *b = w[static_cast<std::size_t>(kk) * cout + co];
        });
      }
    }
    col2im(s, dcols.data(), dx_ref.data());  // pixel order (tests/test_layer_kernels.cpp holds it)
    for (int kk = 0; kk < k; ++kk) {
      for (int co = 0; co < cout; ++co) {
        dw_ref[static_cast<std::size_t>(kk) * cout + co] = blocked_sum(mb, [&](int row, float* a, float* b) {
          *a = tap_value(s, x, row, kk);
          *b = g[static_cast<std::size_t>(row) * cout + co];
        });
      }
    }
    int isas = 0;
    for (const char* isa : {"scalar", "avx2", "avx512"}) {
      if (!conv_direct_use_isa(isa)) continue;
      ++isas;
      INFO(fmt::format("{}: n {} h {} w {} c {} k {} stride {} pad {} cout {}", isa, s.n, s.h, s.w, s.c, s.k, s.stride,
                       s.pad, cout));
      std::vector<float> xpad(padded_size(s)), y(y_ref.size()), dw(dw_ref.size()), dxpad(padded_size(s), 0.0f), dx(nx);
      pad_input(s, x.data(), xpad.data());
      conv_forward_direct(s, cout, xpad.data(), w.data(), y.data());
      CHECK(same_bits(y, y_ref));
      conv_backward_data_direct(s, cout, g.data(), w.data(), dxpad.data());
      crop_input(s, dxpad.data(), dx.data());
      CHECK(same_bits(dx, dx_ref));
      conv_backward_weight_direct(s, cout, xpad.data(), g.data(), dw.data());
      CHECK(same_bits(dw, dw_ref));
    }
    CHECK(isas >= 1);
  }
  REQUIRE(conv_direct_use_isa("best"));
}

TEST_CASE("conv direct: the chooser keeps the BLAS, takes the kernels, or checks each shape once", "[unit]") {
  const ConvShape s{2, 6, 6, 4, 3, 1, 1};
  ConvPathChooser blas(ConvPath::kBlas), direct(ConvPath::kDirect), automatic(ConvPath::kAuto);
  for (auto gemm : {ConvPathChooser::kForward, ConvPathChooser::kBackwardData, ConvPathChooser::kBackwardWeight}) {
    CHECK_FALSE(blas.direct(gemm, s, 16));
    CHECK(direct.direct(gemm, s, 16));
    const bool same = automatic.block() > 0 && conv_direct_matches_blas(gemm, s, 16, automatic.block());
    CHECK(automatic.direct(gemm, s, 16) == same);
    CHECK(automatic.direct(gemm, s, 16) == same);  // remembered: still one shape
  }
  CHECK(blas.direct_shapes() == 0);
  CHECK(direct.direct_shapes() == 3);
  CHECK(automatic.direct_shapes() + automatic.blas_shapes() == 3);
  // The check sees a different order: blocks of 64 over K = 576 (no BLAS core blocks so), over
  // the 4,096 output pixels of the weight gradient, or 64 output channels of the input gradient
  // summed in blocks of 16.
  const ConvShape wide{1, 8, 8, 64, 3, 1, 1}, many{16, 16, 16, 8, 3, 1, 1};
  CHECK_FALSE(conv_direct_matches_blas(ConvPathChooser::kForward, wide, 16, 64));
  CHECK_FALSE(conv_direct_matches_blas(ConvPathChooser::kBackwardWeight, many, 16, 64));
  CHECK_FALSE(conv_direct_matches_blas(ConvPathChooser::kBackwardData, s, 64, 16));
  ConvPath p;
  CHECK(parse_conv_path("auto", &p));
  CHECK(p == ConvPath::kAuto);
  CHECK(parse_conv_path("direct", &p));
  CHECK(p == ConvPath::kDirect);
  CHECK_FALSE(parse_conv_path("fast", &p));
}

TEST_CASE("conv direct: integer operands give exact sums: chunked weight gradients, dequantized input gradients",
          "[unit]") {
  // An integer arithmetic's grids: integers held in floats (INT8 activations, PoT4 errors).
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> i8(-127, 127), e(0, 6), sgn(0, 1);
  const ConvShape s{3, 9, 8, 5, 3, 2, 1};
  const int cout = 16, k = s.k * s.k * s.c, m = s.n * s.p() * s.q();
  const std::size_t nx = static_cast<std::size_t>(s.n) * s.h * s.w * s.c;
  std::vector<float> x(nx), w(static_cast<std::size_t>(k) * cout), g(static_cast<std::size_t>(m) * cout);
  for (float& v : x) v = static_cast<float>(i8(rng));
  for (float& v : w) v = static_cast<float>(i8(rng));
  for (float& v : g) v = (sgn(rng) != 0 ? -1.0f : 1.0f) * static_cast<float>(1 << e(rng));
  std::vector<float> xpad(padded_size(s));
  pad_input(s, x.data(), xpad.data());
  IsaGuard guard;
  // Weight gradient: exact integer sums (int64 reference), in chunks of 7 output pixels.
  std::vector<double> dw(static_cast<std::size_t>(k) * cout);
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (!conv_direct_use_isa(isa)) continue;
    INFO(isa);
    conv_backward_weight_exact(s, cout, xpad.data(), g.data(), 7, dw.data());
    bool exact = true;
    for (int kk = 0; kk < k; ++kk) {
      for (int co = 0; co < cout; ++co) {
        std::int64_t sum = 0;
        for (int row = 0; row < m; ++row) {
          sum += static_cast<std::int64_t>(tap_value(s, x, row, kk)) *
                 static_cast<std::int64_t>(g[static_cast<std::size_t>(row) * cout + co]);
        }
        exact = exact && dw[static_cast<std::size_t>(kk) * cout + co] == static_cast<double>(sum);
      }
    }
    CHECK(exact);
    // Input gradient: each exact sum times the dequantizing factor (one rounding), then col2im.
    for (float factor : {1.0f, 0.125f, 0.0123f}) {
      std::vector<float> dcols(static_cast<std::size_t>(m) * k), ref(nx, 0.0f), got(nx), dxpad(padded_size(s), 0.0f);
      for (int row = 0; row < m; ++row) {
        for (int kk = 0; kk < k; ++kk) {
          std::int64_t sum = 0;
          for (int co = 0; co < cout; ++co) {
            sum += static_cast<std::int64_t>(g[static_cast<std::size_t>(row) * cout + co]) *
                   static_cast<std::int64_t>(w[static_cast<std::size_t>(kk) * cout + co]);
          }
          dcols[static_cast<std::size_t>(row) * k + kk] = static_cast<float>(sum) * factor;
        }
      }
      col2im(s, dcols.data(), ref.data());
      conv_backward_data_direct(s, cout, g.data(), w.data(), dxpad.data(), kDefaultReductionBlock, factor);
      crop_input(s, dxpad.data(), got.data());
      INFO("factor " << factor);
      CHECK(same_bits(got, ref));
    }
  }
  REQUIRE(conv_direct_use_isa("best"));
}

TEST_CASE("conv direct: an integer GEMM's dequantization as one factor gives dequantize's bits wherever it is offered",
          "[unit]") {
  const float sums[] = {0.0f, 1.0f, -1.0f, 3.0f, -127.0f, 4095.0f, 16129.0f, -16777215.0f, 16777215.0f, 65536.0f};
  int offered = 0;
  for (int shift = -160; shift <= 140; ++shift) {
    IntGemmPlan plan;
    plan.exponent_dequant = true;
    plan.shift = shift;
    float factor = 0.0f;
    if (!plan.as_multiplier(&factor)) {
      CHECK((shift <= -127 || shift >= 105));  // only outside exponent_add_all's common range
      continue;
    }
    ++offered;
    for (float v : sums) {
      float a = v;
      plan.dequantize(&a, 1);
      const float b = v * factor;
      INFO("shift " << shift << " sum " << v);
      CHECK(std::memcmp(&a, &b, sizeof(float)) == 0);
    }
  }
  CHECK(offered == 105 + 126);  // shifts -126 .. 104
  IntGemmPlan scaled;  // a float scale (INT8): out *= scale, the same single rounding
  scaled.scale = 0.0123f;
  float factor = 0.0f;
  REQUIRE(scaled.as_multiplier(&factor));
  CHECK(factor == 0.0123f);
}
