// A sweep point's resume state: its meta file, then "#REPORT#", then its report.
#include <cstdint>
#include <string>

#include "apps/mfsim/sweep_state.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto at = in.find("#REPORT#");
  double wall = 0;
  (void)mfsim::cli::finished_point(in.substr(0, at), at == std::string::npos ? "" : in.substr(at + 8), &wall);
  return 0;
}
