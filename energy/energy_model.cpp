#include "energy/energy_model.h"

#include "common/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "sim/pe_type.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

const std::vector<const char*>& energy_components() {
  static const std::vector<const char*> c = {"pe_arithmetic", "pe_registers", "sram_a", "sram_b",
                                             "sram_c",        "dram",         "quantization"};
  return c;
}

QuantOps quant_ops(const std::string& array, double act, double wgt, double err, int wbc_iterations,
                   int prc_candidates) {
  const PeType& pe = pe_type(array);
  return pe.quant_ops == nullptr ? QuantOps{} : pe.quant_ops(act, wgt, err, wbc_iterations, prc_candidates);
}

namespace {

double num(const ojson& j, const char* key) { return j.at(key).get<double>(); }

}  // namespace

std::vector<EnergyItem> energy_items(const ojson& cfg, const ojson& ev,
                                     const QuantOps& q, const EnergyTable& t) {
  std::vector<EnergyItem> items;
  auto add = [&](const char* comp, const char* action, double count, const char* unit, double per) {
    items.push_back(EnergyItem{comp, action, count, unit, per, count * per});
  };
  const PeType& pe = pe_type(cfg.at("array.kind").get<std::string>());
  const int acc_bits = cfg.at("pe.acc_bits").get<int>();
  // The PE type's ops, each priced by its table row (an integer add at the accumulator's width).
  for (const PeOp& op : pe.ops) {
    double per = 0;
    if (std::string(op.table_row) == "int_add") {
      per = t.int_add(acc_bits);
    } else if (t.op_pj.count(op.table_row) != 0) {
      per = t.op(op.table_row);
    } else {
      throw InputError(fmt::format("{}: no row for action \"{}\", which prices the {} array's {} ({})", t.origin,
                                   op.table_row, pe.name, op.action, op.counter));
    }
    add("pe_arithmetic", op.action, num(ev, op.counter), "ops", per);
  }
  // Products with a zero operand skip the arithmetic when pe.zero_gating is on (every array).
  const bool gating = cfg.value("pe.zero_gating", true);
  add("pe_arithmetic", "zero_gated", gating ? num(ev, "products_zero") : 0.0, "products", 0.0);
  add("pe_registers", "operand_write", num(ev, "reg_operand_write_bits"), "bits", t.register_bit);
  add("pe_registers", "accumulator_write", num(ev, "reg_acc_write_bits"), "bits", t.register_bit);
  const struct {
    const char* comp;
    const char* kib;
    const char* rd;
    const char* wr;
  } bufs[] = {{"sram_a", "sram.a_kib", "sram_a_read_bits", "sram_a_write_bits"},
              {"sram_b", "sram.b_kib", "sram_b_read_bits", "sram_b_write_bits"},
              {"sram_c", "sram.c_kib", "sram_c_read_bits", "sram_c_write_bits"}};
  for (const auto& b : bufs) {
    double per_bit = t.sram_pj_per_bit(cfg.at(b.kib).get<double>() * 1024.0);
    add(b.comp, "read", num(ev, b.rd), "bits", per_bit);
    add(b.comp, "write", num(ev, b.wr), "bits", per_bit);
  }
  add("dram", "read", num(ev, "dram_read_bytes"), "bytes", t.dram_pj_per_byte());
  add("dram", "write", num(ev, "dram_write_bytes"), "bytes", t.dram_pj_per_byte());
  if (pe.quant_ops != nullptr) {
    add("quantization", "compare", q.compare32, "ops", t.int_add(32));
    add("quantization", "exponent_subtract", q.exp_sub8, "ops", t.int_add(8));
    add("quantization", "fp32_add", q.fp32_add, "ops", t.fp32_add);
    add("quantization", "fp32_multiply", q.fp32_mul, "ops", t.fp32_mul);
    add("quantization", "random_16bit", q.rng16, "ops", t.int_add(16));
  }
  return items;
}

namespace {


ojson by_component(const std::vector<EnergyItem>& items) {
  ojson j = ojson::object();
  for (const char* c : energy_components()) j[c] = 0.0;
  for (const auto& it : items) j[it.component] = j[it.component].get<double>() + it.pj;
  return j;
}

double total_of(const std::vector<EnergyItem>& items) {
  double s = 0;
  for (const auto& it : items) s += it.pj;
  return s;
}

void accumulate_items(std::vector<EnergyItem>& into, const std::vector<EnergyItem>& from) {
  if (into.empty()) {
    into = from;
    return;
  }
  for (std::size_t i = 0; i < from.size(); ++i) {
    into[i].count += from[i].count;
    into[i].pj += from[i].pj;
  }
}

}  // namespace

ojson add_energy(ojson& report, const EnergyTable& table) {
  const ojson& cfg = report.at("config");
  const std::string array = cfg.at("array.kind").get<std::string>();
  const int wbc = cfg.at("quant.wbc_iterations").get<int>();
  const int prc = cfg.at("quant.prc_candidates").get<int>();
  std::vector<EnergyItem> total;
  std::map<std::string, std::vector<EnergyItem>> phases;
  std::vector<std::pair<std::string, double>> layers;  // in first-seen order
  double macs = 0;
  for (auto& g : report.at("gemms")) {
    const ojson& qe = g.at("quantized_elements");
    QuantOps q = quant_ops(array, num(qe, "activations"), num(qe, "weights"), num(qe, "errors"), wbc, prc);
    std::vector<EnergyItem> items = energy_items(cfg, g.at("events"), q, table);
    const double gt = total_of(items);
    g["energy_pj"] = ojson{{"total", gt}, {"by_component", by_component(items)}};
    accumulate_items(total, items);
    accumulate_items(phases[g.at("phase").get<std::string>()], items);
    const std::string layer = g.at("layer").get<std::string>();
    auto it = std::find_if(layers.begin(), layers.end(), [&](const auto& p) { return p.first == layer; });
    if (it == layers.end()) {
      layers.emplace_back(layer, gt);
    } else {
      it->second += gt;
    }
    macs += g.at("macs").get<double>();
  }
  if (total.empty()) total = energy_items(cfg, report.at("total").at("events"), QuantOps{}, table);
  ojson e;
  e["unit"] = "pJ";
  e["table"] = table.name;
  e["table_origin"] = table.origin;
  const double t = total_of(total);
  e["total"] = t;
  e["per_mac"] = macs > 0 ? t / macs : 0.0;
  e["by_component"] = by_component(total);
  const double arith = e["by_component"]["pe_arithmetic"].get<double>();
  e["arithmetic_per_mac"] = macs > 0 ? arith / macs : 0.0;
  // The MAC arithmetic both ways, from the same counts: every executed product costs the
  // sum of its arithmetic actions; with gating, products with a zero operand cost nothing.
  double per_product = 0;
  for (const auto& it : total) {
    if (it.component == "pe_arithmetic" && it.count > 0) per_product += it.pj_per_action;
  }
  const ojson& ev = report.at("total").at("events");
  const double slots = num(ev, "mac_slots"), zero = num(ev, "products_zero");
  e["zero_gating"] = ojson{{"enabled", cfg.value("pe.zero_gating", true)},
                           {"zero_product_fraction", slots > 0 ? zero / slots : 0.0},
                           {"arithmetic_pj_per_product", per_product},
                           {"arithmetic_gated", per_product * (slots - zero)},
                           {"arithmetic_ungated", per_product * slots}};
  ojson ph = ojson::object();
  for (const char* p : {"fwd", "bwd_data", "bwd_weight"}) {
    auto f = phases.find(p);
    if (f == phases.end()) {
      ph[p] = ojson{{"total", 0.0}};
    } else {
      ph[p] = ojson{{"total", total_of(f->second)}, {"by_component", by_component(f->second)}};
    }
  }
  e["by_phase"] = ph;
  ojson ly = ojson::object();
  for (const auto& [name, v] : layers) ly[name] = v;
  e["by_layer"] = ly;
  ojson items = ojson::array();
  for (const auto& it : total) {
    items.push_back(ojson{{"component", it.component}, {"action", it.action}, {"count", it.count},
                          {"count_unit", it.count_unit}, {"pj_per_action", it.pj_per_action}, {"pj", it.pj}});
  }
  e["items"] = items;
  report["energy_pj"] = e;
  return e;
}

MapCosts mapping_costs(const EnergyTable& t, const SimConfig& cfg) {
  MapCosts c;
  c.set = true;
  c.dram_byte = t.dram_pj_per_byte();
  c.sram_a_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_a_bytes));
  c.sram_b_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_b_bytes));
  c.sram_c_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_c_bytes));
  c.register_bit = t.register_bit;
  return c;
}

std::string energy_csv(const ojson& e) {
  std::string out = "component,action,count,count_unit,pJ_per_action,pJ\n";
  for (const auto& it : e.at("items")) {
    out += fmt::format("{},{},{:.0f},{},{:.6g},{:.6g}\n", it["component"].get<std::string>(),
                       it["action"].get<std::string>(), it["count"].get<double>(), it["count_unit"].get<std::string>(),
                       it["pj_per_action"].get<double>(), it["pj"].get<double>());
  }
  out += fmt::format("total,,,,,{:.6g}\n", e.at("total").get<double>());
  return out;
}

}  // namespace mfsim
