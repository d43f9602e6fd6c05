// Area, static power and the power summary of an array (docs/energy-accounting.md, "Area and
// power"). Area tables are data files with provenance, as the energy tables are
// (energy/area/*.json, built into the binary by name, or any file a user passes):
//   - published tables ("mfsim-area-table"): per-unit areas of the arithmetic rows the PE types
//     price their ops with (the energy tables' row names), an integer add linear in width,
//     register area per bit, SRAM area per KiB and a static (leakage) power density;
//   - the synthesized table ("mfsim-area-synth", written by scripts/synth.sh): each PE type's
//     transistor count and OSU018 area, with the command and tool versions.
// The area of an array is computed from its configuration (SimConfig) and a published table:
// per PE its arithmetic units, operand registers and accumulator register, the edge skew
// registers, and each SRAM buffer from its size. The cycle model holds no area constants.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "energy/table_rows.h"
#include "sim/params.h"

namespace mfsim {

using AreaEntry = TableRow;

struct AreaTable {
  std::string name, description, origin;
  std::vector<AreaEntry> entries;  // as read (provenance)
  std::map<std::string, AreaEntry> rows;  // by action (no sram/leakage/register duplicates)
  double int_add_um2 = 0;
  int int_add_bits = 32;
  double register_um2_per_bit = 0, sram_um2_per_kib = 0, leakage_mw_per_mm2 = 0;

  const AreaEntry* find(const std::string& action) const;  // null if the table lacks it
  double int_add(int bits) const { return int_add_um2 * bits / int_add_bits; }  // linear in width
};

const std::vector<std::string>& builtin_area_tables();  // the published tables
AreaTable load_area_table(const std::string& name_or_path);
AreaTable parse_area_table(const std::string& text, const std::string& origin);

// One synthesized PE (a row of the synthesized table).
struct SynthPe {
  std::string pe, rtl;
  int operand_bits = 0, acc_bits = 0;
  int register_bits = 0;  // an operand register's width (operand_bits, or more: the shift PE's tag bit)
  bool fma = false;
  double transistors = 0, transistors_flip_flops = 0, flip_flops = 0, area_um2 = 0, area_um2_flip_flops = 0;
  // A row synthesized after the table (scripts/synth.sh --update): its own command and date;
  // empty for a row of the table's provenance command.
  std::string command, date;
};
struct SynthArray {
  std::string pe, dataflow, rtl;
  int operand_bits = 0, acc_bits = 0, rows = 0, cols = 0;
  double transistors = 0, flip_flops = 0, area_um2 = 0;
  std::string command, date;  // as SynthPe's
};
struct SynthAreaTable {
  std::string name, description, origin;
  nlohmann::ordered_json provenance;  // command, tool, liberty, liberty_sha256, node_nm, date, ...
  int node_nm = 0;
  std::vector<SynthPe> pes;
  std::vector<SynthArray> arrays;
  const SynthPe* find(const std::string& pe) const;  // null if not synthesized
};
SynthAreaTable load_synth_area_table(const std::string& name_or_path);  // "osu018-synth" or a file
SynthAreaTable parse_synth_area_table(const std::string& text, const std::string& origin);

// One line of an array's area: `count` units of `um2_per_unit` each.
struct AreaItem {
  std::string component, item;
  double count = 0;
  std::string count_unit;
  double um2_per_unit = 0;
  double um2 = 0;
  std::string source;
};

struct ArrayArea {
  std::vector<AreaItem> items;
  std::vector<std::string> missing;  // table rows the PE types need and the table lacks
  double total_um2 = 0;
  double pe_um2 = 0;  // one PE of the first array (arithmetic, operand and accumulator registers)
  bool complete() const { return missing.empty(); }
};

// The area components, in report order.
const std::vector<const char*>& area_components();

// The area of the array(s) `cfg` describes (array.kind and, if set, array.second of the same
// geometry) under the published table `t`.
ArrayArea array_area(const SimConfig& cfg, const AreaTable& t);

// The `area` section of a simulate report (total_mm2, by component, items with their sources,
// the leakage density; the synthesized figures of the PE when `synth` has its widths).
// Without a complete table, the section says which rows are missing and has no total.
nlohmann::ordered_json area_section(const SimConfig& cfg, const AreaTable& t, const SynthAreaTable* synth);

// The `power` section of a report that has `area`, `total` and `energy_pj`: average power at
// clock.mhz, dynamic and static parts, MAC/s per mm^2 and TOPS/W (2 operations per MAC).
nlohmann::ordered_json power_section(const nlohmann::ordered_json& report);

// The report's `area` (area_section), then its energy (add_energy, which adds the static term
// from the area), then its `power`: the order a simulate report is completed in.
struct EnergyTable;
void add_area_and_power(nlohmann::ordered_json& report, const SimConfig& cfg, const AreaTable& t,
                        const SynthAreaTable* synth, const EnergyTable& energy_table);

// The summary lines of a report's area and power (text derived from the JSON).
std::string area_power_text(const nlohmann::ordered_json& report);

// Square-ish array sizes, in increasing PE count: 1x1, 1x2, 2x2, 2x3, 3x3, ... (rows x cols,
// cols = rows or rows + 1). The largest whose area under `t` fits `budget_um2` (rows 0 if none
// fits), for the PE type `cfg.array` (and cfg.second) with cfg's other parameters.
struct IsoAreaSize {
  int rows = 0, cols = 0;
  double um2 = 0;
  int next_rows = 0, next_cols = 0;  // the next larger size in the sequence
  double next_um2 = 0;
};
IsoAreaSize largest_array_within(SimConfig cfg, const AreaTable& t, double budget_um2);

}  // namespace mfsim
