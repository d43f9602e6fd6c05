// The training core's non-GEMM loops (training/layer_kernels.h, and the batch norm and max pool
// layers of training/nn.cpp) against plain reference loops, bit for bit, on random shapes; and
// the BLAS core choice, which must leave every integer arithmetic's results unchanged.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "training/exact_gemm.h"
#include "training/layer_kernels.h"
#include "training/nn.h"

using namespace mfsim;

namespace {

using test::same_bits;

// Values of mixed magnitudes and signs (so the order of additions shows in the bits), with
// zeros, negative zeros and a NaN now and then.
std::vector<float> random_values(std::mt19937& rng, std::size_t n) { return test::mixed_values(rng, n, 12, 50, true); }

// The reference im2col and col2im: one kernel tap at a time (the loops the kernels replaced).
template <class F>
void for_each_tap(const ConvShape& s, F f) {
  const int p = s.p(), q = s.q();
  const std::size_t k = static_cast<std::size_t>(s.k) * s.k * s.c;
  for (int b = 0; b < s.n; ++b) {
    for (int y = 0; y < p; ++y) {
      for (int x = 0; x < q; ++x) {
        const std::size_t row = ((static_cast<std::size_t>(b) * p + y) * q + x) * k;
        for (int r = 0; r < s.k; ++r) {
          const int iy = y * s.stride + r - s.pad;
          if (iy < 0 || iy >= s.h) continue;
          for (int t = 0; t < s.k; ++t) {
            const int ix = x * s.stride + t - s.pad;
            if (ix < 0 || ix >= s.w) continue;
            f(row + static_cast<std::size_t>((r * s.k + t) * s.c), ((static_cast<std::size_t>(b) * s.h + iy) * s.w + ix) * s.c);
          }
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("im2col and col2im equal the tap-by-tap loops bit for bit", "[unit]") {
  const unsigned seed = 7;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> size(1, 9), chans(1, 5), kern(1, 5), strd(1, 3), pad(0, 3), batch(1, 3);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    ConvShape s{batch(rng), size(rng), size(rng), chans(rng), kern(rng), strd(rng), pad(rng)};
    if (s.p() < 1 || s.q() < 1) continue;
    INFO(fmt::format("n {} h {} w {} c {} k {} stride {} pad {}", s.n, s.h, s.w, s.c, s.k, s.stride, s.pad));
    const std::size_t in_n = static_cast<std::size_t>(s.n) * s.h * s.w * s.c;
    const std::size_t cols_n = static_cast<std::size_t>(s.n) * s.p() * s.q() * s.k * s.k * s.c;
    const std::vector<float> in = random_values(rng, in_n);
    std::vector<float> ref(cols_n, 0.0f), got = random_values(rng, cols_n);  // got: stale values to overwrite
    for_each_tap(s, [&](std::size_t col, std::size_t i) {
      for (int c = 0; c < s.c; ++c) ref[col + c] = in[i + c];
    });
    im2col(s, in.data(), got.data());
    REQUIRE(same_bits(got, ref));

    const std::vector<float> cols = random_values(rng, cols_n);
    std::vector<float> dref(in_n, 0.0f), dgot(in_n, 0.0f);
    for_each_tap(s, [&](std::size_t col, std::size_t i) {
      for (int c = 0; c < s.c; ++c) dref[i + c] += cols[col + c];
    });
    col2im(s, cols.data(), dgot.data());
    REQUIRE(same_bits(dgot, dref));
    ++checked;
  }
  CHECK(checked > 200);
  // resnet8's shapes: the 3x3 convolutions with padding 1, stride 1 and 2, and the 1x1 stride-2
  // projection, on a batch of 28x28 images.
  for (ConvShape s : {ConvShape{2, 28, 28, 1, 3, 1, 1}, ConvShape{2, 28, 28, 16, 3, 2, 1}, ConvShape{2, 14, 14, 32, 1, 2, 0},
                      ConvShape{2, 14, 14, 8, 5, 1, 2}}) {
    const std::size_t in_n = static_cast<std::size_t>(s.n) * s.h * s.w * s.c;
    const std::size_t cols_n = static_cast<std::size_t>(s.n) * s.p() * s.q() * s.k * s.k * s.c;
    const std::vector<float> in = random_values(rng, in_n), cols = random_values(rng, cols_n);
    std::vector<float> ref(cols_n, 0.0f), got(cols_n, 1.0f), dref(in_n, 0.0f), dgot(in_n, 0.0f);
    for_each_tap(s, [&](std::size_t col, std::size_t i) {
      for (int c = 0; c < s.c; ++c) {
        ref[col + c] = in[i + c];
        dref[i + c] += cols[col + c];
      }
    });
    im2col(s, in.data(), got.data());
    col2im(s, cols.data(), dgot.data());
    CHECK(same_bits(got, ref));
    CHECK(same_bits(dgot, dref));
  }
}

TEST_CASE("ReLU and the residual add-and-ReLU equal the plain loops bit for bit", "[unit]") {
  std::mt19937 rng(11);
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1001}}) {
    const std::vector<float> x = random_values(rng, n), s = random_values(rng, n), dy = random_values(rng, n);
    std::vector<float> ref = x, got = x, aref = x, agot = x, dref = dy, dgot = dy;
    std::vector<std::uint8_t> mref(n), mgot(n, 7), amref(n), amgot(n, 7);
    for (std::size_t i = 0; i < n; ++i) {
      mref[i] = ref[i] > 0.0f ? 1 : 0;
      ref[i] = mref[i] != 0 ? ref[i] : 0.0f;
      const float v = aref[i] + s[i];
      amref[i] = v > 0.0f ? 1 : 0;
      aref[i] = amref[i] != 0 ? v : 0.0f;
      dref[i] = mref[i] != 0 ? dref[i] : 0.0f;
    }
    relu_forward(got.data(), mgot.data(), n);
    add_relu_forward(agot.data(), s.data(), amgot.data(), n);
    relu_backward(dgot.data(), mgot.data(), n);
    CHECK(same_bits(got, ref));
    CHECK(mgot == mref);
    CHECK(same_bits(agot, aref));
    CHECK(amgot == amref);
    CHECK(same_bits(dgot, dref));
  }
}

namespace {
// The batch norm layer's arithmetic, written out plainly (double sums per channel in row order).
void bn_reference(std::vector<float>& x, std::vector<float>& dy, const std::vector<float>& gamma,
                  const std::vector<float>& beta, std::size_t c, std::vector<float>* dgamma, std::vector<float>* dbeta) {
  const std::size_t rows = x.size() / c;
  std::vector<double> mean(c, 0.0), var(c, 0.0), sum_dy(c, 0.0), sum_dy_xhat(c, 0.0);
  std::vector<float> inv_std(c), xhat(x.size());
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < c; ++j) mean[j] += x[r * c + j];
  }
  for (std::size_t j = 0; j < c; ++j) mean[j] /= static_cast<double>(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < c; ++j) {
      const double d = x[r * c + j] - mean[j];
      var[j] += d * d;
    }
  }
  for (std::size_t j = 0; j < c; ++j) inv_std[j] = static_cast<float>(1.0 / std::sqrt(var[j] / static_cast<double>(rows) + 1e-5));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t j = i % c;
    xhat[i] = static_cast<float>((x[i] - mean[j]) * inv_std[j]);
    x[i] = gamma[j] * xhat[i] + beta[j];
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    sum_dy[i % c] += dy[i];
    sum_dy_xhat[i % c] += static_cast<double>(dy[i]) * xhat[i];
  }
  const double n = static_cast<double>(rows);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t j = i % c;
    dy[i] = static_cast<float>(gamma[j] * inv_std[j] * (dy[i] - sum_dy[j] / n - xhat[i] * sum_dy_xhat[j] / n));
  }
  for (std::size_t j = 0; j < c; ++j) {
    (*dbeta)[j] = static_cast<float>(sum_dy[j]);
    (*dgamma)[j] = static_cast<float>(sum_dy_xhat[j]);
  }
}
}  // namespace

TEST_CASE("batch norm and max pool layers equal plain loops bit for bit", "[unit]") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (auto [n, h, w, c] : {std::tuple{3, 5, 7, 3}, std::tuple{8, 4, 4, 16}, std::tuple{2, 1, 1, 33}}) {
    INFO(fmt::format("n {} h {} w {} c {}", n, h, w, c));
    const std::size_t size = static_cast<std::size_t>(n) * h * w * c;
    Network bn("bn", h, w, c, 1);
    auto params = bn.params();  // gamma, beta
    for (auto& v : *params[0].first) v = u(rng);
    for (auto& v : *params[1].first) v = u(rng);
    std::vector<float> gamma = *params[0].first, beta = *params[1].first;
    Tensor x;
    x.n = n, x.h = h, x.w = w, x.c = c;
    x.v.resize(size);
    for (auto& v : x.v) v = std::ldexp(u(rng), static_cast<int>(rng() % 9) - 4);
    Tensor dy = x;
    for (auto& v : dy.v) v = u(rng);
    std::vector<float> rx = x.v, rdy = dy.v, rdgamma(c), rdbeta(c);
    bn_reference(rx, rdy, gamma, beta, static_cast<std::size_t>(c), &rdgamma, &rdbeta);
    StepContext ctx;
    Tensor y = bn.layers()[0]->forward(x, ctx, true);
    Tensor dx = bn.layers()[0]->backward(dy, ctx);
    CHECK(same_bits(y.v, rx));
    CHECK(same_bits(dx.v, rdy));
    CHECK(same_bits(*params[0].second, rdgamma));
    CHECK(same_bits(*params[1].second, rdbeta));

    // Max pool 2x2 (ties and NaNs included): the first of equal maxima wins, as a scan over the window.
    if (h % 2 != 0 || w % 2 != 0) continue;
    Network pool("maxpool:2", h, w, c, 1);
    std::vector<float> xp = random_values(rng, size);
    for (std::size_t i = 0; i < size; i += 5) xp[i] = 0.25f;  // ties
    Tensor px = x;
    px.v = xp;
    std::vector<float> ref(size / 4), dref(size, 0.0f);
    const std::vector<float> g = random_values(rng, size / 4);
    for (int b = 0; b < n; ++b) {
      for (int p = 0; p < h / 2; ++p) {
        for (int q = 0; q < w / 2; ++q) {
          for (int ch = 0; ch < c; ++ch) {
            std::size_t best = 0;
            float bv = -INFINITY;
            for (int r = 0; r < 2; ++r) {
              for (int s = 0; s < 2; ++s) {
                const std::size_t i = ((static_cast<std::size_t>(b) * h + 2 * p + r) * w + 2 * q + s) * c + ch;
                if (xp[i] > bv || (r == 0 && s == 0)) {
                  bv = xp[i];
                  best = i;
                }
              }
            }
            const std::size_t o = ((static_cast<std::size_t>(b) * (h / 2) + p) * (w / 2) + q) * c + ch;
            ref[o] = bv;
            dref[best] += g[o];
          }
        }
      }
    }
    Tensor py = pool.layers()[0]->forward(px, ctx, true);
    Tensor pg;
    pg.n = n, pg.h = h / 2, pg.w = w / 2, pg.c = c;
    pg.v = g;
    Tensor pdx = pool.layers()[0]->backward(pg, ctx);
    CHECK(same_bits(py.v, ref));
    CHECK(same_bits(pdx.v, dref));
  }
}

TEST_CASE("train: the BLAS core mfsim picks", "[unit]") {
  const char* old = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = old != nullptr ? old : "";
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  CHECK(preferred_blas_core().empty());  // the user's choice stands
  if (old != nullptr) {
    setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  } else {
    unsetenv("OPENBLAS_CORETYPE");
  }
  // Without the user's choice: a core with AVX2 kernels, or none (OpenBLAS's choice stands).
  const std::string core = old != nullptr ? "" : preferred_blas_core();
  CHECK((core.empty() || core == "SkylakeX" || core == "Haswell"));
}

TEST_CASE("train: integer arithmetics give the same report under every BLAS core", "[smoke]") {
  // The FP32 kernels' summation order differs between cores (and so FP32 results' last bits);
  // the integer arithmetics' sums are exact (training/exact_gemm.h), so their reports must not.
  // The generic SSE3 core against the best this CPU runs (AVX-512, else AVX2).
  std::vector<std::string> cores = {"Prescott"};
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd")) {
    cores.push_back("SkylakeX");
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    cores.push_back("Haswell");
  }
  const char* old = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = old != nullptr ? old : "";
  test::TempDir dir;
  test::write_dataset(dir.path(), 64, 32);
  for (const char* quant : {"int8", "als-potq"}) {
    nlohmann::json first;
    for (const std::string& core : cores) {
      INFO(quant << " on " << core);
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      const std::string rep = dir.file(fmt::format("{}-{}.json", quant, core));
      auto r = test::run_mfsim(fmt::format("train -q --model resnet8 --quant {} --epochs 1 --batch 32 --seed 5 --data {} "
                                           "--report {}",
                                           quant, dir.path(), rep));
      REQUIRE(r.exit_code == 0);
      nlohmann::json j = nlohmann::json::parse(test::slurp(rep));
      CHECK(j["blas"].get<std::string>().find(core) != std::string::npos);
      for (const char* k : {"epoch_seconds", "blas", "conv_path", "command"}) j.erase(k);  // timing, core, report name
      if (first.is_null()) {
        first = j;
      } else {
        CHECK(j == first);
      }
    }
  }
  if (old != nullptr) {
    setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  } else {
    unsetenv("OPENBLAS_CORETYPE");
  }
}
