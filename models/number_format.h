// The operand number formats, one enum for the training core, the trace format and the
// simulator; each format's name, width and kind in one table (format_info), and the bound on
// one product's magnitude in each integer format. Value definitions: docs/number-formats.md.
#pragma once

#include <cstdint>
#include <string>

namespace mfsim {

enum class NumFormat : std::uint8_t {
  kPot4 = 0,      // 4-bit power of two: sign and 3-bit exponent code (value +-2^(m-1) x 2^(E-6))
  kInt8 = 1,      // symmetric 8-bit integer in [-127, 127] with a float scale
  kFp32 = 2,      // IEEE binary32
  kInt4 = 3,      // symmetric 4-bit integer in [-7, 7] with a float scale
  kFp8E4M3 = 4,   // OCP FP8 E4M3 (bias 7, no infinities, max 448) with a power-of-two scale
  kFp8E5M2 = 5,   // OCP FP8 E5M2 (bias 15, IEEE-like, max 57344) with a power-of-two scale
  kBf16 = 6,      // bfloat16: the upper 16 bits of binary32
  kApot = 7,      // two-term power of two: 0, +-2^i or +-(2^i + 2^j) (0 <= j < i <= 6), an integer of
                  // at most 96, with a power-of-two scale; a byte per element (sign, two 3-bit codes)
};
constexpr int kNumFormats = 8;

// How a value of the format is held by an arithmetic: a PoT4 code, a small integer, or a float
// (every value of every float format here is exactly a binary32 value).
enum class FormatKind : std::uint8_t { kPot4, kInt, kFloat };

struct FormatInfo {
  NumFormat format;
  const char* name;     // the trace format's spelling ("fp8e4m3")
  int bits;             // bits per element in memory (DRAM, SRAM, registers)
  FormatKind kind;
  std::int64_t max_int; // kInt: largest |q|; kPot4: largest integer image (64); kFloat: 0
};

const FormatInfo& format_info(NumFormat f);
const char* to_string(NumFormat f);
bool parse_num_format(const std::string& s, NumFormat* out);
inline int bits_per_element(NumFormat f) { return format_info(f).bits; }
inline bool is_float_format(NumFormat f) { return format_info(f).kind == FormatKind::kFloat; }
// "pot4|int8|fp32|int4|fp8e4m3|fp8e5m2|bf16"
std::string num_format_choices();

// Largest |a * b| of one product, as an integer on the format's grid: PoT4 +-2^6 x +-2^6 (the
// MF-MAC one-hot term), INT8 127 x 127, INT4 7 x 7, two-term 96 x 96. 0 for the float formats
// (no integer bound).
constexpr std::int64_t max_product_term(NumFormat f) {
  return f == NumFormat::kPot4   ? std::int64_t{4096}
         : f == NumFormat::kInt8 ? std::int64_t{127} * 127
         : f == NumFormat::kInt4 ? std::int64_t{7} * 7
         : f == NumFormat::kApot ? std::int64_t{96} * 96
                                 : 0;
}

// Largest |a * b| of one product of an `a` and a `b` operand on their integer grids (the
// format's max_int each; PoT4 x INT8, the shift-add pair: 64 x 127; two-term x INT8: 96 x 127).
// 0 if either is a float.
constexpr std::int64_t max_product_term(NumFormat a, NumFormat b) {
  if (a == b) return max_product_term(a);
  const auto max_int = [](NumFormat f) {
    return f == NumFormat::kPot4 ? std::int64_t{64} : f == NumFormat::kInt8 ? std::int64_t{127}
                                                  : f == NumFormat::kInt4 ? std::int64_t{7}
                                                  : f == NumFormat::kApot ? std::int64_t{96} : 0;
  };
  return max_int(a) * max_int(b);
}

}  // namespace mfsim
