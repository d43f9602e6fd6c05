#include "traces/example_trace.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "models/gemm_ref.h"
#include "models/mfmac.h"
#include "models/rng.h"
#include "traces/trace_writer.h"

namespace mfsim {

namespace {

// PoT4 codes with a bell-shaped magnitude histogram (more small levels than large ones) and
// `zero_percent` zeros, like ReLU activations or small gradients.
std::vector<Pot4Code> random_pot4(SplitMix64& rng, std::size_t n, unsigned zero_percent) {
  static const unsigned kMagWeights[8] = {0, 4, 8, 14, 18, 14, 8, 4};  // m = 1..7
  std::vector<Pot4Code> v(n);
  for (auto& c : v) {
    if (rng.below(100) < zero_percent) {
      c = 0;
      continue;
    }
    unsigned r = rng.below(70), m = 1;
    while (r >= kMagWeights[m]) r -= kMagWeights[m++];
    c = pot4_encode(rng.below(2) == 1, m);
  }
  return v;
}

std::vector<std::int8_t> random_int8(SplitMix64& rng, std::size_t n) {
  std::vector<std::int8_t> v(n);
  for (auto& x : v) x = static_cast<std::int8_t>(static_cast<int>(rng.below(255)) - 127);
  return v;
}

// Floats of the form i * 2^-10 with |i| < 2^12: exactly representable, sign-symmetric.
std::vector<float> random_fp32(SplitMix64& rng, std::size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(static_cast<float>(static_cast<int>(rng.below(8191)) - 4095), -10);
  return v;
}

TraceRecord make_record(const char* layer, Phase phase, std::int64_t m, std::int64_t n,
                        std::int64_t k, NumFormat f, int ea, int eb) {
  TraceRecord r;
  r.layer = layer;
  r.phase = phase;
  r.shape = GemmShape{m, n, k};
  r.a.format = r.b.format = f;
  r.a.scale_exp = ea;
  r.b.scale_exp = eb;
  return r;
}

void add_pot4(TraceWriter& w, SplitMix64& rng, TraceRecord r, unsigned zeros_a, unsigned zeros_b) {
  auto a = random_pot4(rng, static_cast<std::size_t>(r.shape.m * r.shape.k), zeros_a);
  auto b = random_pot4(rng, static_cast<std::size_t>(r.shape.k * r.shape.n), zeros_b);
  std::vector<std::int64_t> c(static_cast<std::size_t>(r.shape.m * r.shape.n));
  gemm_pot4_ref(r.shape, a.data(), b.data(), r.accumulator, c.data());
  w.add_pot4(r, a.data(), b.data(), c.data());
}

}  // namespace

void write_example_trace(const std::string& json_path, std::uint64_t seed) {
  SplitMix64 rng(seed);
  TraceWriter w(json_path, fmt::format("mfsim example-trace --seed {}", seed),
                "Example: one training step of a 20-12-10 MLP at batch 7 (PoT4), plus fc1's "
                "forward GEMM in int8 and fp32. Synthetic operands from a seeded generator; "
                "expected outputs from the reference arithmetic.");
  constexpr std::int64_t kBatch = 7, kIn = 20, kHidden = 12, kOut = 10;
  // Scale exponents as ALS would pick them for inputs ~1, weights ~1/8, errors ~1/256.
  add_pot4(w, rng, make_record("fc1", Phase::kFwd, kBatch, kHidden, kIn, NumFormat::kPot4, 0, -3),
           10, 5);
  add_pot4(w, rng, make_record("fc2", Phase::kFwd, kBatch, kOut, kHidden, NumFormat::kPot4, 1, -3),
           45, 5);
  add_pot4(w, rng,
           make_record("fc2", Phase::kBwdData, kBatch, kHidden, kOut, NumFormat::kPot4, -8, -3),
           20, 5);
  add_pot4(w, rng,
           make_record("fc2", Phase::kBwdWeight, kHidden, kOut, kBatch, NumFormat::kPot4, 1, -8),
           45, 20);
  add_pot4(w, rng,
           make_record("fc1", Phase::kBwdWeight, kIn, kHidden, kBatch, NumFormat::kPot4, 0, -9),
           10, 50);

  {  // fc1 forward in INT8 (INT32 accumulation)
    TraceRecord r = make_record("fc1", Phase::kFwd, kBatch, kHidden, kIn, NumFormat::kInt8, 0, 0);
    r.a.scale = std::ldexp(1.0f, -7);
    r.b.scale = std::ldexp(1.0f, -10);
    auto a = random_int8(rng, kBatch * kIn);
    auto b = random_int8(rng, kIn * kHidden);
    std::vector<std::int64_t> c(kBatch * kHidden);
    gemm_int8_ref(r.shape, a.data(), b.data(), r.accumulator, c.data());
    w.add_int8(r, a.data(), b.data(), c.data());
  }
  {  // fc1 forward in FP32 (multiply, then add)
    TraceRecord r = make_record("fc1", Phase::kFwd, kBatch, kHidden, kIn, NumFormat::kFp32, 0, 0);
    auto a = random_fp32(rng, kBatch * kIn);
    auto b = random_fp32(rng, kIn * kHidden);
    std::vector<float> c(kBatch * kHidden);
    gemm_fp32_ref(r.shape, a.data(), b.data(), false, c.data());
    w.add_fp32(r, a.data(), b.data(), c.data());
  }
  w.commit();
}

}  // namespace mfsim
