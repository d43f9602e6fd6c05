// Energy tables: per-action energies with provenance, read from JSON data files
// (energy/tables/*.json, built into the binary by name, or any file a user passes).
// Schema and rules: docs/energy-accounting.md. Every row names its source; derived figures
// say how they were derived. A malformed table is an InputError naming the row and field.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "energy/table_rows.h"

namespace mfsim {

struct EnergyEntry : TableRow {
  double capacity_kib = 0;  // sram rows only
};

struct EnergyTable {
  std::string name, description, origin;
  std::vector<EnergyEntry> entries;  // as read (provenance)

  double fp32_mul = 0, fp32_add = 0, fp32_fma = 0, int8_mul = 0, register_bit = 0, dram_access = 0;
  double int_add_value = 0;
  int int_add_bits = 32, dram_bits = 64, sram_bits = 64;
  bool fma_derived = true;
  std::vector<std::pair<double, double>> sram_points;  // (capacity bytes, pJ per access), sorted
  std::map<std::string, double> op_pj;  // every per-operation row by action (fp32_fma derived if absent)

  double op(const std::string& action) const;       // a per-operation row; InputError if the table lacks it

  double int_add(int bits) const;                   // linear in width
  double sram_pj_per_bit(double capacity_bytes) const;  // log-log interpolation
  // For a buffer of `capacity_bytes` set by parameter `param`: "" inside the SRAM rows' capacities,
  // a note when extrapolated beyond them; InputError when the extrapolation prices an SRAM bit
  // above a DRAM bit (far outside what the table describes).
  std::string sram_range_note(double capacity_bytes, const std::string& param) const;
  double dram_pj_per_byte() const { return dram_access / (dram_bits / 8.0); }
};

const std::vector<std::string>& builtin_energy_tables();
// A built-in table by name, or a JSON file by path.
EnergyTable load_energy_table(const std::string& name_or_path);
EnergyTable parse_energy_table(const std::string& text, const std::string& origin);

}  // namespace mfsim
