#include "energy/energy_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_fields.h"
#include "sim/pe_type.h"

namespace mfsim {

// Generated from energy/tables/*.json at build time (builtin_tables.cpp).
extern const std::vector<std::pair<const char*, const char*>> kBuiltinEnergyTables;

const std::vector<std::string>& builtin_energy_tables() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& t : kBuiltinEnergyTables) v.emplace_back(t.first);
    return v;
  }();
  return names;
}

namespace {

// The rows a table must have: the memories, registers and the quantizers' operations (FP32 add
// and multiply, integer adds), and every row a registered PE type prices its ops with
// (sim/pe/*.cpp). fp32_fma may be left out: it is then the sum of multiply and add.
const RowRules& action_rules() {
  static const RowRules r = table_row_rules(
      {
          {"fp32_mul", {"pJ", true}},      {"fp32_add", {"pJ", true}},       {"fp32_fma", {"pJ", false}},
          {"int_add", {"pJ", true}},       {"register", {"pJ/bit", true}},   {"sram", {"pJ/access", true}},
          {"dram", {"pJ/access", true}},
      },
      "pJ", true);
  return r;
}

}  // namespace

EnergyTable parse_energy_table(const std::string& text, const std::string& origin) {
  nlohmann::json doc = parse_json_document(text, origin);
  JsonFields f(doc, origin, "");
  const TableHead head = read_table_head(f, "mfsim-energy-table", "energy table");
  EnergyTable t;
  t.origin = origin;
  t.name = head.name;
  t.description = head.description;
  const nlohmann::json& rows = f.required_array("entries");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    JsonFields e(rows[i], origin, fmt::format("entries[{}]", i));
    EnergyEntry x;
    static_cast<TableRow&>(x) = read_table_row(e, action_rules(), "energy");
    auto cap = e.optional_number("capacity_kib");
    if (x.action == "sram") {
      if (!cap || !(*cap > 0)) e.fail("capacity_kib", "expected the SRAM capacity in KiB (a positive number)");
      x.capacity_kib = *cap;
    } else if (cap) {
      e.fail("capacity_kib", "only sram rows have a capacity");
    }
    e.finish();
    if (x.action != "sram" && !seen.insert(x.action).second) {
      e.fail("action", fmt::format("duplicate action \"{}\"", x.action));
    }
    if (x.action == "sram") {
      for (const auto& p : t.sram_points) {
        if (p.first == x.capacity_kib * 1024) e.fail("capacity_kib", fmt::format("duplicate sram capacity {} KiB", x.capacity_kib));
      }
      t.sram_points.emplace_back(x.capacity_kib * 1024, x.value);
      t.sram_bits = x.bits;
      seen.insert("sram");
    }
    if (x.action == "fp32_mul") t.fp32_mul = x.value;
    if (x.action == "fp32_add") t.fp32_add = x.value;
    if (x.action == "fp32_fma") {
      t.fp32_fma = x.value;
      t.fma_derived = false;
    }
    if (x.action == "int8_mul") t.int8_mul = x.value;
    if (x.action == "int_add") {
      t.int_add_value = x.value;
      t.int_add_bits = x.bits;
    }
    if (x.action == "register") t.register_bit = x.value;
    if (x.action == "dram") {
      t.dram_access = x.value;
      t.dram_bits = x.bits;
    }
    if (x.action != "sram" && x.action != "dram" && x.action != "register") t.op_pj[x.action] = x.value;
    t.entries.push_back(std::move(x));
  }
  f.finish();
  require_table_rows(action_rules(), seen, origin);
  if (t.fma_derived) t.fp32_fma = t.fp32_mul + t.fp32_add;
  t.op_pj["fp32_fma"] = t.fp32_fma;
  std::sort(t.sram_points.begin(), t.sram_points.end());
  return t;
}

EnergyTable load_energy_table(const std::string& name_or_path) {
  const TableText t = table_text(name_or_path, kBuiltinEnergyTables, builtin_energy_tables(), "--energy-table");
  return parse_energy_table(t.text, t.origin);
}

double EnergyTable::int_add(int bits) const { return int_add_value * bits / int_add_bits; }

double EnergyTable::op(const std::string& action) const {
  auto it = op_pj.find(action);
  if (it == op_pj.end()) throw InputError(fmt::format("{}: no row for action \"{}\"", origin, action));
  return it->second;
}

std::string EnergyTable::sram_range_note(double capacity, const std::string& param) const {
  const double lo = sram_points.front().first, hi = sram_points.back().first;
  if (capacity >= lo && capacity <= hi) return "";
  const double per_bit = sram_pj_per_bit(capacity), dram_bit = dram_pj_per_byte() / 8.0;
  if (capacity > hi && per_bit > dram_bit) {
    throw InputError(fmt::format("{}={} KiB: the {} energy table's SRAM rows end at {} KiB; extrapolated this far an "
                                 "SRAM access would cost {:.4g} pJ/bit, more than a DRAM access ({:.4g} pJ/bit); use a "
                                 "smaller buffer or a table with rows for it",
                                 param, capacity / 1024.0, name, hi / 1024.0, per_bit, dram_bit));
  }
  return fmt::format("{}={} KiB is outside the {} table's SRAM rows ({}..{} KiB): its energy per bit ({:.4g} pJ) is "
                     "extrapolated",
                     param, capacity / 1024.0, name, lo / 1024.0, hi / 1024.0, per_bit);
}

double EnergyTable::sram_pj_per_bit(double capacity) const {
  const auto& p = sram_points;
  double access = p.front().second;
  if (p.size() > 1) {
    // Energy per access grows as a power of the capacity between measured points (log-log
    // interpolation); outside the points the nearest segment's exponent extrapolates.
    std::size_t i = 0;
    while (i + 2 < p.size() && capacity > p[i + 1].first) ++i;
    double alpha = std::log(p[i + 1].second / p[i].second) / std::log(p[i + 1].first / p[i].first);
    access = p[i].second * std::pow(capacity / p[i].first, alpha);
  }
  return access / sram_bits;
}

}  // namespace mfsim
