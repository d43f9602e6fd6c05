// The rows the energy tables (energy/tables) and the area tables (energy/area) share: one action
// per row, with its value, unit, node, width and provenance. Both parsers read these fields here,
// with the same rules and error lines; each adds its own fields (an SRAM row's capacity).
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mfsim {

class JsonFields;

struct TableRow {
  std::string action, unit, source, derivation, scaling;
  double value = 0;
  int node_nm = 0, bits = 0;
};

struct RowRule {
  const char* unit;
  bool required;
};
using RowRules = std::map<std::string, RowRule>;

// `core` plus every registered PE type's rows (sim/pe/*.cpp) in `pe_unit`: a PE type's ops are
// required when `pe_ops_required` and the type declares its rows required; its optional rows
// never are. A core row keeps its own rule.
RowRules table_row_rules(RowRules core, const char* pe_unit, bool pe_ops_required);

// Reads action (one of `rules`), value (positive, finite; `value_what` names it in the error),
// unit (the rule's), node_nm, bits, source, derivation and scaling from one entry.
TableRow read_table_row(JsonFields& e, const RowRules& rules, const char* value_what);

// The head every table document shares: `format` (the given one), `version` 1 (else an error
// naming `what`, e.g. "energy table"), `name` and an optional `description`.
struct TableHead {
  std::string name, description;
};
TableHead read_table_head(JsonFields& f, const char* format, const char* what);

// A table's text and origin: a built-in table (`builtins`: name and JSON text) by a name among
// `names` (origin "builtin:NAME"), or a JSON file by path (noted as an input; origin the path).
// Any other name is an InputError naming `option` and the names.
struct TableText {
  std::string text, origin;
};
TableText table_text(const std::string& name_or_path, const std::vector<std::pair<const char*, const char*>>& builtins,
                     const std::vector<std::string>& names, const char* option);

// InputError naming the first required row of `rules` that `seen` lacks.
void require_table_rows(const RowRules& rules, const std::set<std::string>& seen, const std::string& origin);

}  // namespace mfsim
