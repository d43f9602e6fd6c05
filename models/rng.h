// Deterministic random numbers, identical on every machine and independent of threading.
//  - SplitMix64: a small sequential generator (initialisation, shuffling, example data).
//  - counter_uniform(key, index): a counter-based uniform in [0, 1), a pure function of its
//    inputs (stochastic rounding: element i of a tensor gets the same number however the
//    work is split).
#pragma once

#include <cstdint>

namespace mfsim {

constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64_mix(state_ += 0x9e3779b97f4a7c15ull); }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  std::uint64_t state_;
};

// 24 random bits from a key and an element index (SplitMix64's finaliser of key + index * phi).
inline std::uint32_t counter_u24(std::uint64_t key, std::uint64_t index) {
  return static_cast<std::uint32_t>(splitmix64_mix(key + (index + 1) * 0x9e3779b97f4a7c15ull) >> 40);
}

// Uniform float in [0, 1) with 24 random bits, from a key and an element index.
inline float counter_uniform(std::uint64_t key, std::uint64_t index) {
  return static_cast<float>(counter_u24(key, index)) * (1.0f / 16777216.0f);
}

}  // namespace mfsim
