#include "energy/table_rows.h"

#include <fmt/format.h>

#include <cmath>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_fields.h"
#include "sim/pe_type.h"

namespace mfsim {

RowRules table_row_rules(RowRules core, const char* pe_unit, bool pe_ops_required) {
  for (const PeType* p : pe_types()) {
    for (const PeOp& op : p->ops) core.emplace(op.table_row, RowRule{pe_unit, pe_ops_required && p->rows_required});
    for (const char* row : p->optional_rows) core.emplace(row, RowRule{pe_unit, false});
  }
  return core;
}

TableRow read_table_row(JsonFields& e, const RowRules& rules, const char* value_what) {
  TableRow x;
  x.action = e.required_string("action");
  auto rule = rules.find(x.action);
  if (rule == rules.end()) {
    std::string names;
    for (const auto& [k, v] : rules) names += names.empty() ? k : "|" + k;
    e.fail("action", fmt::format("unknown action \"{}\"; expected {}", x.action, names));
  }
  x.value = e.required_number("value");
  if (!(x.value > 0) || !std::isfinite(x.value)) e.fail("value", fmt::format("expected a positive {}, got {}", value_what, x.value));
  x.unit = e.required_string("unit");
  if (x.unit != rule->second.unit) {
    e.fail("unit", fmt::format("expected \"{}\" for {}, got \"{}\"", rule->second.unit, x.action, x.unit));
  }
  x.node_nm = static_cast<int>(e.required_int("node_nm", 1, 1000, "a technology node in nm (1 to 1000)"));
  x.bits = static_cast<int>(e.required_int("bits", 1, 4096, "a bit width (1 to 4096)"));
  x.source = e.required_string("source");
  if (x.source.empty()) e.fail("source", "expected the figure's source, got \"\"");
  x.derivation = e.optional_string("derivation").value_or("");
  x.scaling = e.optional_string("scaling").value_or("none");
  if (x.scaling != "none" && x.scaling != "linear") {
    e.fail("scaling", fmt::format("unknown value \"{}\"; expected none|linear", x.scaling));
  }
  return x;
}

TableHead read_table_head(JsonFields& f, const char* format, const char* what) {
  f.required_choice("format", {format});
  const std::int64_t version = f.required_int("version", INT64_MIN, INT64_MAX, "an integer");
  if (version != 1) f.fail("version", fmt::format("unsupported {} version {}; this mfsim reads version 1", what, version));
  TableHead h;
  h.name = f.required_string("name");
  h.description = f.optional_string("description").value_or("");
  return h;
}

TableText table_text(const std::string& name_or_path, const std::vector<std::pair<const char*, const char*>>& builtins,
                     const std::vector<std::string>& names, const char* option) {
  for (const std::string& n : names) {
    if (name_or_path != n) continue;
    for (const auto& [name, text] : builtins) {
      if (n == name) return TableText{text, fmt::format("builtin:{}", n)};
    }
  }
  if (name_or_path.find('/') == std::string::npos && name_or_path.find(".json") == std::string::npos) {
    std::string list;
    for (const auto& n : names) list += list.empty() ? n : "|" + n;
    throw InputError(fmt::format("{}: unknown table \"{}\"; expected {} or a JSON file", option, name_or_path, list));
  }
  note_input(name_or_path);
  return TableText{read_file(name_or_path), name_or_path};
}

void require_table_rows(const RowRules& rules, const std::set<std::string>& seen, const std::string& origin) {
  for (const auto& [name, rule] : rules) {
    if (rule.required && seen.count(name) == 0) {
      throw InputError(fmt::format("{}: entries: missing a row for action \"{}\"", origin, name));
    }
  }
}

}  // namespace mfsim
