// A sweep's resume state: a point's meta file, then "#REPORT#", then its report (the meta part is
// also read as a sweep definition, DIR/sweep.json).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/mfsim/sweep_state.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto at = in.find("#REPORT#");
  double wall = 0;
  const std::string meta = in.substr(0, at), report = at == std::string::npos ? "" : in.substr(at + 8);
  (void)mfsim::cli::finished_point(meta, report, "{\"mode\":\"timing\",\"params\":{\"a\":1}}", &wall);
  static const nlohmann::json current = {{"mfsim_version", "0.1.0"},
                                         {"trace", {{"path", "/t.json"}, {"hash", "h"}}},
                                         {"mode", "timing"},
                                         {"energy_table", {{"name", "paper"}, {"hash", "e"}}}};
  (void)mfsim::cli::definition_difference(meta, current);
  (void)mfsim::cli::content_hash(in);
  return 0;
}
