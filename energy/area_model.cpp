#include "energy/area_model.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_fields.h"
#include "energy/energy_model.h"
#include "sim/pe_type.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

// Generated from energy/area/*.json at build time (builtin_area_tables.cpp).
extern const std::vector<std::pair<const char*, const char*>> kBuiltinAreaTables;

namespace {

constexpr const char* kSynthName = "osu018-synth";

// The rows a published table may have: the units every table must price (FP32 add and multiply
// for the quantizers' and the FP32 PE, an integer add, registers, SRAM, leakage) and every row a
// registered PE type prices its ops with (the energy tables' names; optional: a PE type whose
// row a table lacks gets no area, and the report says which row is missing).
const RowRules& area_rules() {
  static const RowRules r = table_row_rules(
      {
          {"fp32_mul", {"um2", true}},        {"fp32_add", {"um2", true}},  {"fp32_fma", {"um2", false}},
          {"int_add", {"um2", true}},         {"register", {"um2/bit", true}}, {"sram", {"um2/KiB", true}},
          {"leakage", {"mW/mm2", true}},
      },
      "um2", false);
  return r;
}

}  // namespace

const std::vector<std::string>& builtin_area_tables() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& t : kBuiltinAreaTables) {
      if (std::string(t.first) != kSynthName) v.emplace_back(t.first);
    }
    return v;
  }();
  return names;
}

const AreaEntry* AreaTable::find(const std::string& action) const {
  auto it = rows.find(action);
  return it == rows.end() ? nullptr : &it->second;
}

AreaTable parse_area_table(const std::string& text, const std::string& origin) {
  nlohmann::json doc = parse_json_document(text, origin);
  JsonFields f(doc, origin, "");
  const TableHead head = read_table_head(f, "mfsim-area-table", "area table");
  AreaTable t;
  t.origin = origin;
  t.name = head.name;
  t.description = head.description;
  const nlohmann::json& rows = f.required_array("entries");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    JsonFields e(rows[i], origin, fmt::format("entries[{}]", i));
    AreaEntry x = read_table_row(e, area_rules(), "figure");
    e.finish();
    if (t.rows.count(x.action) != 0) e.fail("action", fmt::format("duplicate action \"{}\"", x.action));
    if (x.action == "int_add") {
      t.int_add_um2 = x.value;
      t.int_add_bits = x.bits;
    }
    if (x.action == "register") t.register_um2_per_bit = x.value;
    if (x.action == "sram") t.sram_um2_per_kib = x.value;
    if (x.action == "leakage") t.leakage_mw_per_mm2 = x.value;
    t.rows[x.action] = x;
    t.entries.push_back(std::move(x));
  }
  f.finish();
  std::set<std::string> seen;
  for (const auto& [name, row] : t.rows) seen.insert(name);
  require_table_rows(area_rules(), seen, origin);
  return t;
}

AreaTable load_area_table(const std::string& name_or_path) {
  const TableText t = table_text(name_or_path, kBuiltinAreaTables, builtin_area_tables(), "--area-table");
  return parse_area_table(t.text, t.origin);
}

const SynthPe* SynthAreaTable::find(const std::string& pe) const {
  for (const auto& p : pes) {
    if (p.pe == pe) return &p;
  }
  return nullptr;
}

SynthAreaTable parse_synth_area_table(const std::string& text, const std::string& origin) {
  nlohmann::json doc = parse_json_document(text, origin);
  JsonFields f(doc, origin, "");
  const TableHead head = read_table_head(f, "mfsim-area-synth", "synthesized area table");
  SynthAreaTable t;
  t.origin = origin;
  t.name = head.name;
  t.description = head.description;
  {
    const nlohmann::json& p = f.required_object("provenance");
    JsonFields pf(p, origin, "provenance");
    for (const char* key : {"command", "tool", "liberty", "liberty_sha256", "date", "transistors", "area"}) {
      const std::string v = pf.required_string(key);
      if (v.empty()) pf.fail(key, "expected a non-empty string");
      t.provenance[key] = v;
    }
    t.node_nm = static_cast<int>(pf.required_int("node_nm", 1, 1000, "a technology node in nm (1 to 1000)"));
    t.provenance["node_nm"] = t.node_nm;
    pf.finish();
  }
  auto positive = [](JsonFields& e, const char* key) {
    const double v = e.required_number(key);
    if (!(v > 0) || !std::isfinite(v)) e.fail(key, fmt::format("expected a positive number, got {}", v));
    return v;
  };
  // A row synthesized after the table (scripts/synth.sh --update) names its own command and date.
  auto row_provenance = [](JsonFields& e, std::string* command, std::string* date) {
    *command = e.optional_string("command").value_or("");
    *date = e.optional_string("date").value_or("");
    if (command->empty() != date->empty()) {
      e.fail(command->empty() ? "command" : "date",
             "a row's own command and date come together (scripts/synth.sh --update)");
    }
  };
  std::set<std::string> seen;
  const nlohmann::json& pes = f.required_array("pes");
  for (std::size_t i = 0; i < pes.size(); ++i) {
    JsonFields e(pes[i], origin, fmt::format("pes[{}]", i));
    SynthPe p;
    p.pe = e.required_string("pe");
    const PeType* type = find_pe_type(p.pe);
    if (type == nullptr) e.fail("pe", fmt::format("unknown PE type \"{}\"; expected {}", p.pe, pe_type_names()));
    if (!seen.insert(p.pe).second) e.fail("pe", fmt::format("duplicate PE type \"{}\"", p.pe));
    p.operand_bits = static_cast<int>(e.required_int("operand_bits", 1, 64, "an operand width (1 to 64)"));
    if (p.operand_bits != type->operand_bits) {
      e.fail("operand_bits", fmt::format("the {} PE's operands have {} bits, got {}", p.pe, type->operand_bits,
                                         p.operand_bits));
    }
    p.register_bits = static_cast<int>(
        e.optional_int("register_bits", p.operand_bits, 64, "an operand register's width (operand_bits to 64)")
            .value_or(p.operand_bits));
    p.acc_bits = static_cast<int>(e.required_int("acc_bits", 2, 64, "an accumulator width (2 to 64)"));
    p.fma = e.optional_bool("fma", false);
    p.rtl = e.required_string("rtl");
    p.transistors = positive(e, "transistors");
    p.transistors_flip_flops = positive(e, "transistors_flip_flops");
    p.flip_flops = positive(e, "flip_flops");
    p.area_um2 = positive(e, "area_um2");
    p.area_um2_flip_flops = positive(e, "area_um2_flip_flops");
    row_provenance(e, &p.command, &p.date);
    if (p.transistors_flip_flops >= p.transistors) {
      e.fail("transistors_flip_flops", "the flip-flops cannot have as many transistors as the whole PE");
    }
    if (p.area_um2_flip_flops >= p.area_um2) e.fail("area_um2_flip_flops", "the flip-flops cannot take the whole PE's area");
    e.finish();
    t.pes.push_back(p);
  }
  const nlohmann::json& arrays = f.required_array("arrays");
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    JsonFields e(arrays[i], origin, fmt::format("arrays[{}]", i));
    SynthArray a;
    a.pe = e.required_string("pe");
    if (find_pe_type(a.pe) == nullptr) e.fail("pe", fmt::format("unknown PE type \"{}\"; expected {}", a.pe, pe_type_names()));
    a.dataflow = e.required_choice("dataflow", {"os", "ws", "is"});
    a.rtl = e.required_string("rtl");
    a.operand_bits = static_cast<int>(e.required_int("operand_bits", 1, 64, "an operand width (1 to 64)"));
    a.acc_bits = static_cast<int>(e.required_int("acc_bits", 2, 64, "an accumulator width (2 to 64)"));
    a.rows = static_cast<int>(e.required_int("rows", 1, 4096, "a positive number of rows"));
    a.cols = static_cast<int>(e.required_int("cols", 1, 4096, "a positive number of columns"));
    a.transistors = positive(e, "transistors");
    a.flip_flops = positive(e, "flip_flops");
    a.area_um2 = positive(e, "area_um2");
    row_provenance(e, &a.command, &a.date);
    e.finish();
    t.arrays.push_back(a);
  }
  f.finish();
  return t;
}

SynthAreaTable load_synth_area_table(const std::string& name_or_path) {
  const TableText t = table_text(name_or_path, kBuiltinAreaTables, {kSynthName}, "synthesized area table");
  return parse_synth_area_table(t.text, t.origin);
}

const std::vector<const char*>& area_components() {
  static const std::vector<const char*> c = {"pe_arithmetic", "pe_registers", "pe_accumulators",
                                             "sram_a",        "sram_b",       "sram_c"};
  return c;
}

namespace {

std::string row_source(const AreaTable& t, const AreaEntry& e) {
  return fmt::format("{}: {}{}", t.name, e.source, e.derivation.empty() ? "" : " (" + e.derivation + ")");
}

// One array's PEs and edge registers.
void add_pe_items(const SimConfig& cfg, const PeType& pe, const AreaTable& t, const std::string& prefix,
                  ArrayArea& out, double* pe_um2) {
  const double pes = static_cast<double>(cfg.rows) * cfg.cols;
  const int acc_bits = pe.integer_acc ? cfg.accumulator.bits : 32;
  // The arithmetic units the PE type uses (the ops it counts for a product: FP32 multiply and
  // add, or its FMA), each priced by its table row; an integer add at the accumulator's width.
  PeOpCounts used{};
  pe.count_ops(cfg, 1, used);
  double one = 0;
  for (std::size_t i = 0; i < pe.ops.size(); ++i) {
    if (used[i] == 0) continue;
    const PeOp& op = pe.ops[i];
    const std::string row = op.table_row;
    double um2 = 0;
    std::string src;
    if (row == "int_add") {
      const int bits = op.bits > 0 ? op.bits : acc_bits;
      um2 = t.int_add(bits);
      src = row_source(t, *t.find("int_add")) + fmt::format(" at {} bits", bits);
    } else if (row == "fp32_fma" && t.find(row) == nullptr) {
      um2 = t.find("fp32_mul")->value + t.find("fp32_add")->value;
      src = fmt::format("{}: no fp32_fma row; an FP32 multiplier and adder", t.name);
    } else if (const AreaEntry* e = t.find(row)) {
      um2 = e->value;
      src = row_source(t, *e);
    } else {
      out.missing.push_back(fmt::format("{} (the {} PE's {})", row, pe.name, op.action));
      continue;
    }
    const double units = pes * pe.op_units[i];
    one += um2 * pe.op_units[i];
    out.items.push_back({"pe_arithmetic", prefix + op.action, units, "units", um2, um2 * units, src});
  }
  // Operand registers: OS moves both operands (a east, b south); WS/IS hold a stationary operand
  // and move the other, with a shadow register for the next stationary tile when folds overlap.
  const int ob = pe.operand_bits;
  const int op_regs = cfg.dataflow == Dataflow::kOs ? 2 : (cfg.overlap ? 3 : 2);
  const double reg = t.register_um2_per_bit;
  const std::string reg_src = row_source(t, *t.find("register"));
  out.items.push_back({"pe_registers", prefix + "operand", pes * op_regs * ob, "bits", reg, reg * pes * op_regs * ob,
                       reg_src + fmt::format(" ({} operand registers of {} bits per PE)", op_regs, ob)});
  // The edge skew: lane i of the west edge (j of the north edge) is delayed by i (j) registers.
  const double skew = (static_cast<double>(cfg.rows) * (cfg.rows - 1) + static_cast<double>(cfg.cols) * (cfg.cols - 1)) / 2.0;
  out.items.push_back({"pe_registers", prefix + "edge_skew", skew * ob, "bits", reg, reg * skew * ob,
                       reg_src + " (R(R-1)/2 + C(C-1)/2 operand registers)"});
  out.items.push_back({"pe_accumulators", prefix + "accumulator", pes * acc_bits, "bits", reg, reg * pes * acc_bits,
                       reg_src + fmt::format(" ({} bits per PE: the OS accumulator, the WS/IS partial sum)", acc_bits)});
  if (pe_um2 != nullptr) *pe_um2 = one + reg * (op_regs * ob + acc_bits);
}

}  // namespace

ArrayArea array_area(const SimConfig& cfg, const AreaTable& t) {
  ArrayArea a;
  add_pe_items(cfg, *cfg.array, t, "", a, &a.pe_um2);
  if (cfg.second != nullptr && cfg.second != cfg.array) {
    add_pe_items(cfg, *cfg.second, t, std::string(cfg.second->name) + ".", a, nullptr);
  }
  const std::string src = row_source(t, *t.find("sram"));
  const struct {
    const char* comp;
    std::uint64_t bytes;
  } bufs[] = {{"sram_a", cfg.sram_a_bytes}, {"sram_b", cfg.sram_b_bytes}, {"sram_c", cfg.sram_c_bytes}};
  for (const auto& b : bufs) {
    const double kib = static_cast<double>(b.bytes) / 1024.0;
    a.items.push_back({b.comp, "buffer", kib, "KiB", t.sram_um2_per_kib, kib * t.sram_um2_per_kib, src});
  }
  for (const auto& it : a.items) a.total_um2 += it.um2;
  return a;
}

ojson area_section(const SimConfig& cfg, const AreaTable& t, const SynthAreaTable* synth) {
  const ArrayArea a = array_area(cfg, t);
  ojson s;
  s["unit"] = "mm2";
  s["table"] = t.name;
  s["table_origin"] = t.origin;
  if (!a.complete()) {
    std::string rows;
    for (const auto& m : a.missing) rows += (rows.empty() ? "" : ", ") + m;
    s["notes"] = ojson::array({fmt::format("the {} area table has no row for {}: no area, power or static energy "
                                           "for this run",
                                           t.name, rows)});
    return s;
  }
  s["total_mm2"] = a.total_um2 * 1e-6;
  s["pe_count"] = static_cast<std::int64_t>(cfg.rows) * cfg.cols * (cfg.second != nullptr && cfg.second != cfg.array ? 2 : 1);
  s["pe_um2"] = a.pe_um2;
  ojson by = ojson::object();
  for (const char* c : area_components()) by[c] = 0.0;
  for (const auto& it : a.items) by[it.component] = by[it.component].get<double>() + it.um2 * 1e-6;
  s["by_component_mm2"] = by;
  ojson items = ojson::array();
  for (const auto& it : a.items) {
    items.push_back(ojson{{"component", it.component}, {"item", it.item}, {"count", it.count},
                          {"count_unit", it.count_unit}, {"um2_per_unit", it.um2_per_unit}, {"mm2", it.um2 * 1e-6},
                          {"source", it.source}});
  }
  s["items"] = items;
  const AreaEntry& leak = *t.find("leakage");
  s["leakage_mw_per_mm2"] = t.leakage_mw_per_mm2;
  s["leakage_source"] = row_source(t, leak);
  s["notes"] = ojson::array();
  if (synth != nullptr) {
    const SynthPe* p = synth->find(cfg.array->name);
    const int acc = cfg.array->integer_acc ? cfg.accumulator.bits : 32;
    if (p != nullptr && p->acc_bits == acc && p->fma == (cfg.array->name == std::string("fp32") && cfg.fp32_fma)) {
      s["synthesized_pe"] = ojson{{"table", synth->name},
                                  {"node_nm", synth->node_nm},
                                  {"transistors", p->transistors},
                                  {"area_um2", p->area_um2},
                                  {"source", fmt::format("{} ({}, {})", synth->name,
                                                         p->command.empty()
                                                             ? synth->provenance.at("command").get<std::string>()
                                                             : p->command,
                                                         synth->provenance.at("tool").get<std::string>())}};
    }
  }
  return s;
}

ojson power_section(const ojson& rep) {
  ojson p;
  const ojson& cfg = rep.at("config");
  const double mhz = cfg.at("clock.mhz").get<double>();
  const double seconds = rep.at("total").at("time_seconds").get<double>();
  const double macs = rep.at("total").at("macs").get<double>();
  const ojson& e = rep.at("energy_pj");
  const double total_pj = e.at("total").get<double>();
  const double static_pj = e.at("by_component").value("static", 0.0);
  const double mm2 = rep.at("area").at("total_mm2").get<double>();
  p["clock_mhz"] = mhz;
  p["time_seconds"] = seconds;
  p["average_w"] = seconds > 0 ? total_pj * 1e-12 / seconds : 0.0;
  p["dynamic_w"] = seconds > 0 ? (total_pj - static_pj) * 1e-12 / seconds : 0.0;
  p["static_w"] = seconds > 0 ? static_pj * 1e-12 / seconds : 0.0;
  const double macs_per_s = seconds > 0 ? macs / seconds : 0.0;
  p["macs_per_second"] = macs_per_s;
  p["macs_per_second_per_mm2"] = mm2 > 0 ? macs_per_s / mm2 : 0.0;
  p["ops_per_mac"] = 2;
  p["tops_per_w"] = total_pj > 0 ? 2.0 * macs / (total_pj * 1e-12) * 1e-12 : 0.0;
  return p;
}

void add_area_and_power(ojson& report, const SimConfig& cfg, const AreaTable& t, const SynthAreaTable* synth,
                        const EnergyTable& energy_table) {
  report["area"] = area_section(cfg, t, synth);
  add_energy(report, energy_table);
  if (report["area"].contains("total_mm2")) report["power"] = power_section(report);
}

std::string area_power_text(const ojson& rep) {
  std::string out;
  if (!rep.contains("area")) return out;
  const ojson& a = rep.at("area");
  if (!a.contains("total_mm2")) {
    for (const auto& n : a.at("notes")) out += fmt::format("note: {}\n", n.get<std::string>());
    return out;
  }
  const ojson& by = a.at("by_component_mm2");
  out += fmt::format("area ({} table): {:.4g} mm2 (PEs {:.4g}: arithmetic {:.4g}, registers {:.4g}, accumulators {:.4g}; "
                     "SRAM {:.4g})\n",
                     a.at("table").get<std::string>(), a.at("total_mm2").get<double>(),
                     by.at("pe_arithmetic").get<double>() + by.at("pe_registers").get<double>() +
                         by.at("pe_accumulators").get<double>(),
                     by.at("pe_arithmetic").get<double>(), by.at("pe_registers").get<double>(),
                     by.at("pe_accumulators").get<double>(),
                     by.at("sram_a").get<double>() + by.at("sram_b").get<double>() + by.at("sram_c").get<double>());
  if (rep.contains("power")) {
    const ojson& p = rep.at("power");
    out += fmt::format("power at {:g} MHz: {:.4g} W average ({:.4g} W static); {:.4g} GMAC/s per mm2, {:.4g} TOPS/W\n",
                       p.at("clock_mhz").get<double>(), p.at("average_w").get<double>(), p.at("static_w").get<double>(),
                       p.at("macs_per_second_per_mm2").get<double>() * 1e-9, p.at("tops_per_w").get<double>());
  }
  return out;
}

IsoAreaSize largest_array_within(SimConfig cfg, const AreaTable& t, double budget_um2) {
  IsoAreaSize r;
  auto area_of = [&](int rows, int cols) {
    cfg.rows = rows;
    cfg.cols = cols;
    const ArrayArea a = array_area(cfg, t);
    if (!a.complete()) {
      throw InputError(fmt::format("--iso area: the {} area table has no row for {}", t.name, a.missing.front()));
    }
    return a.total_um2;
  };
  // Step k of the sequence: rows = (k + 1) / 2 ... as pairs (n, n), (n, n + 1).
  int rows = 1, cols = 1;
  double um2 = area_of(rows, cols);
  while (true) {
    const int nr = cols > rows ? rows + 1 : rows, nc = cols > rows ? cols : cols + 1;
    if (um2 <= budget_um2) {
      r.rows = rows;
      r.cols = cols;
      r.um2 = um2;
    }
    if (nr > 4096 || nc > 4096) {  // the parameters' range: the next size does not exist
      r.next_rows = 0;
      r.next_cols = 0;
      r.next_um2 = 0;
      return r;
    }
    const double next = area_of(nr, nc);
    if (um2 <= budget_um2 && next > budget_um2) {
      r.next_rows = nr;
      r.next_cols = nc;
      r.next_um2 = next;
      return r;
    }
    if (um2 > budget_um2) {  // even 1 x 1 does not fit
      r.next_rows = rows;
      r.next_cols = cols;
      r.next_um2 = um2;
      return r;
    }
    rows = nr;
    cols = nc;
    um2 = next;
  }
}

}  // namespace mfsim
