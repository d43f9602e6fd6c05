#include "models/number_format.h"

namespace mfsim {

namespace {
constexpr FormatInfo kFormats[kNumFormats] = {
    {NumFormat::kPot4, "pot4", 4, FormatKind::kPot4, 64},
    {NumFormat::kInt8, "int8", 8, FormatKind::kInt, 127},
    {NumFormat::kFp32, "fp32", 32, FormatKind::kFloat, 0},
    {NumFormat::kInt4, "int4", 4, FormatKind::kInt, 7},
    {NumFormat::kFp8E4M3, "fp8e4m3", 8, FormatKind::kFloat, 0},
    {NumFormat::kFp8E5M2, "fp8e5m2", 8, FormatKind::kFloat, 0},
    {NumFormat::kBf16, "bf16", 16, FormatKind::kFloat, 0},
    {NumFormat::kApot, "apot", 8, FormatKind::kInt, 96},
};
}  // namespace

const FormatInfo& format_info(NumFormat f) { return kFormats[static_cast<int>(f)]; }

const char* to_string(NumFormat f) {
  return static_cast<int>(f) < kNumFormats ? kFormats[static_cast<int>(f)].name : "?";
}

bool parse_num_format(const std::string& s, NumFormat* out) {
  for (const auto& x : kFormats) {
    if (s == x.name) {
      *out = x.format;
      return true;
    }
  }
  return false;
}

std::string num_format_choices() {
  std::string s;
  for (const auto& x : kFormats) s += (s.empty() ? "" : "|") + std::string(x.name);
  return s;
}

}  // namespace mfsim
