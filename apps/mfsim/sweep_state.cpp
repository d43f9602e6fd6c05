#include "apps/mfsim/sweep_state.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "common/error.h"
#include "common/json_fields.h"

namespace mfsim::cli {

bool finished_point(const std::string& meta_text, const std::string& report_text, double* wall_seconds) {
  try {
    const nlohmann::json m = parse_json_document(meta_text, "meta");
    if (!m.is_object()) return false;
    const auto status = m.find("status");
    const auto wall = m.find("wall_seconds");
    if (status == m.end() || !status->is_string() || status->get<std::string>() != "ok") return false;
    if (wall == m.end() || !wall->is_number() || !std::isfinite(wall->get<double>())) return false;
    const nlohmann::json r = parse_json_document(report_text, "report");  // complete and valid
    if (!r.is_object() || !r.contains("total")) return false;
    *wall_seconds = wall->get<double>();
    return true;
  } catch (const InputError&) {
    return false;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace mfsim::cli
