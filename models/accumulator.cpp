#include "models/accumulator.h"

#include <fmt/format.h>

namespace mfsim {

const char* to_string(OverflowPolicy p) {
  return p == OverflowPolicy::kError ? "error" : "saturate";
}

bool parse_overflow_policy(const std::string& s, OverflowPolicy* out) {
  if (s == "error") *out = OverflowPolicy::kError;
  else if (s == "saturate") *out = OverflowPolicy::kSaturate;
  else return false;
  return true;
}

AccumulatorOverflow::AccumulatorOverflow(std::int64_t r, std::int64_t c, std::int64_t kk, int b)
    : std::runtime_error(fmt::format(
          "{}-bit accumulator overflow at output element ({}, {}) after product k = {}; "
          "widen the accumulator or select saturation",
          b, r, c, kk)),
      row(r), col(c), k(kk), bits(b) {}

}  // namespace mfsim
