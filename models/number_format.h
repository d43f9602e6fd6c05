// The operand number formats, one enum for the training core, the trace format and the
// simulator; and the bound on one product's magnitude in each integer format.
#pragma once

#include <cstdint>

namespace mfsim {

enum class NumFormat : std::uint8_t { kPot4 = 0, kInt8 = 1, kFp32 = 2 };
constexpr int kNumFormats = 3;

// Largest |a * b| of one product, as an integer on the format's grid: PoT4 +-2^6 x +-2^6 (the
// MF-MAC one-hot term), INT8 127 x 127. 0 for FP32 (no integer bound).
constexpr std::int64_t max_product_term(NumFormat f) {
  return f == NumFormat::kPot4 ? std::int64_t{4096} : f == NumFormat::kInt8 ? std::int64_t{127} * 127 : 0;
}

}  // namespace mfsim
