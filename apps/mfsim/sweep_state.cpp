#include "apps/mfsim/sweep_state.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>

#include "common/crc32.h"
#include "common/error.h"
#include "common/json_fields.h"

namespace mfsim::cli {

namespace {

// The string at obj[key] (obj[key][sub] when sub is given), or nullptr: never throws.
const std::string* string_at(const nlohmann::json& obj, const char* key, const char* sub = nullptr) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end()) return nullptr;
  if (sub == nullptr) return it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  return string_at(*it, sub);
}

// A stored string as it may appear in a one-line message: printable, at most 200 characters.
std::string shown(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) out += c >= 0x20 && c != 0x7f ? static_cast<char>(c) : '?';
  return s.size() > 200 ? out + "..." : out;
}

}  // namespace

std::string content_hash(const std::string& bytes) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("fnv1a64:{:016x},crc32:{:08x},bytes:{}", h, crc32(bytes.data(), bytes.size()), bytes.size());
}

bool finished_point(const std::string& meta_text, const std::string& report_text, const std::string& identity,
                    double* wall_seconds) {
  try {
    const nlohmann::json m = parse_json_document(meta_text, "meta");
    if (!m.is_object()) return false;
    const auto status = m.find("status");
    const auto wall = m.find("wall_seconds");
    const auto id = m.find("identity");
    if (status == m.end() || !status->is_string() || status->get<std::string>() != "ok") return false;
    if (wall == m.end() || !wall->is_number() || !std::isfinite(wall->get<double>())) return false;
    if (id == m.end() || !id->is_object() || id->dump() != identity) return false;  // another point's result
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

std::string definition_difference(const std::string& stored_text, const nlohmann::json& current) {
  nlohmann::json s;
  try {
    s = parse_json_document(stored_text, "sweep.json");
  } catch (const InputError& e) {
    std::string why = e.what();
    const std::string prefix = "sweep.json: ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    return fmt::format("with an unreadable sweep.json ({})", why);
  }
  const std::string* version = string_at(s, "mfsim_version");
  const std::string* trace_path = string_at(s, "trace", "path");
  const std::string* trace_hash = string_at(s, "trace", "hash");
  const std::string* mode = string_at(s, "mode");
  const std::string* table = string_at(s, "energy_table", "name");
  const std::string* table_hash = string_at(s, "energy_table", "hash");
  if (version == nullptr || trace_path == nullptr || trace_hash == nullptr || mode == nullptr || table == nullptr ||
      table_hash == nullptr) {
    return "with an unreadable sweep.json (not a sweep definition)";
  }
  const auto& cur = current;
  if (*version != cur.at("mfsim_version").get<std::string>()) return fmt::format("of mfsim {}", shown(*version));
  if (*trace_hash != cur.at("trace").at("hash").get<std::string>()) {
    return *trace_path == cur.at("trace").at("path").get<std::string>()
               ? fmt::format("of {} as it was before it changed", *trace_path)
               : fmt::format("of another trace ({})", shown(*trace_path));
  }
  if (*mode != cur.at("mode").get<std::string>()) return fmt::format("in --mode {}", shown(*mode));
  if (*table_hash != cur.at("energy_table").at("hash").get<std::string>()) {
    return *table == cur.at("energy_table").at("name").get<std::string>()
               ? fmt::format("simulated with energy table {} as it was before it changed", *table)
               : fmt::format("simulated with energy table {}", shown(*table));
  }
  return "";
}

}  // namespace mfsim::cli
