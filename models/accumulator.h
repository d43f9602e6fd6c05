// Integer accumulators of configurable width with explicit overflow handling.
//
// An accumulator of `bits` bits holds two's-complement values in [-2^(bits-1), 2^(bits-1)-1].
// Every add is checked: the policy either stops with an AccumulatorOverflow that says where
// (kError), or clamps to the range and counts the event (kSaturate). Wrapping never happens.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace mfsim {

enum class OverflowPolicy : std::uint8_t { kError, kSaturate };

const char* to_string(OverflowPolicy p);
bool parse_overflow_policy(const std::string& s, OverflowPolicy* out);

struct AccumulatorSpec {
  int bits = 32;  // 2..64
  OverflowPolicy overflow = OverflowPolicy::kError;

  std::int64_t max() const {
    return bits >= 64 ? INT64_MAX : static_cast<std::int64_t>((std::uint64_t{1} << (bits - 1)) - 1);
  }
  std::int64_t min() const { return -max() - 1; }
};

constexpr int kAccumulatorMinBits = 2;
constexpr int kAccumulatorMaxBits = 64;

// Thrown under OverflowPolicy::kError; row/col name the output element, k the product index.
class AccumulatorOverflow : public std::runtime_error {
 public:
  AccumulatorOverflow(std::int64_t row, std::int64_t col, std::int64_t k, int bits);
  std::int64_t row, col, k;
  int bits;
};

// acc += term under `spec`. Returns true when the add saturated (kSaturate); throws
// AccumulatorOverflow (kError) with the given position otherwise.
inline bool accumulate(std::int64_t& acc, std::int64_t term, const AccumulatorSpec& spec,
                       std::int64_t row, std::int64_t col, std::int64_t k) {
  std::int64_t sum = 0;
  bool wide_overflow = __builtin_add_overflow(acc, term, &sum);
  if (!wide_overflow && sum <= spec.max() && sum >= spec.min()) {
    acc = sum;
    return false;
  }
  if (spec.overflow == OverflowPolicy::kError) throw AccumulatorOverflow(row, col, k, spec.bits);
  acc = term > 0 ? spec.max() : spec.min();
  return true;
}

}  // namespace mfsim
