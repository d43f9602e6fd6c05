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
                                             "sram_c",        "dram",         "quantization", "static"};
  return c;
}

QuantOps quant_ops(const std::string& array, double act, double wgt, double err, int wbc_iterations,
                   int prc_candidates) {
  const PeType& pe = pe_type(array);
  return pe.quant_ops == nullptr ? QuantOps{} : pe.quant_ops(act, wgt, err, wbc_iterations, prc_candidates);
}

namespace {

double num(const ojson& j, const char* key) { return j.at(key).get<double>(); }

// quant_ops with PRC charged only on the operand kinds in `roles` ("a,w": activations and
// weights): the operations are linear in the element counts, so each kind is counted on its own.
QuantOps quant_ops_by_role(const std::string& array, double act, double wgt, double err, int wbc, int prc,
                           const std::string& roles) {
  auto has = [&](char r) { return roles.find(r) != std::string::npos; };
  QuantOps q;
  for (const QuantOps& p : {quant_ops(array, act, 0, 0, wbc, has('a') ? prc : 0),
                            quant_ops(array, 0, wgt, 0, wbc, has('w') ? prc : 0),
                            quant_ops(array, 0, 0, err, wbc, has('g') ? prc : 0)}) {
    q += p;
  }
  return q;
}

}  // namespace

std::vector<EnergyItem> energy_items(const ojson& cfg, const ojson& ev, const QuantOps& q, const EnergyTable& t,
                                     const std::string& array_kind, const std::string& action_prefix) {
  std::vector<EnergyItem> items;
  auto add = [&](const char* comp, const char* action, double count, const char* unit, double per) {
    std::string act = std::string(comp) == "pe_arithmetic" ? action_prefix + action : std::string(action);
    items.push_back(EnergyItem{comp, act, count, unit, per, count * per});
  };
  const PeType& pe = pe_type(array_kind.empty() ? cfg.at("array.kind").get<std::string>() : array_kind);
  const int acc_bits = cfg.at("pe.acc_bits").get<int>();
  // The PE type's ops, each priced by its table row (an integer add at the accumulator's width).
  for (const PeOp& op : pe.ops) {
    double per = 0;
    if (std::string(op.table_row) == "int_add") {
      per = t.int_add(op.bits > 0 ? op.bits : acc_bits);
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
  // Finer scales (docs/energy-accounting.md, "Finer scales"): listed only where a GEMM has them.
  const double scale_adds = ev.value("scale_exponent_adds", 0.0);
  if (scale_adds > 0) {
    if (t.op_pj.count("shift8") == 0) {
      throw InputError(fmt::format("{}: no row for action \"shift8\", which prices the alignment shifts of finer scales",
                                   t.origin));
    }
    add("pe_arithmetic", "scale_exponent_add", scale_adds, "ops", t.int_add(8));
    // A 64-bit barrel shifter by a 6-bit amount: 8x the data width and 2x the stages of the
    // 8-bit shifter by a 3-bit amount (a logarithmic shifter is linear in both).
    add("pe_arithmetic", "scale_align_shift", ev.value("scale_align_shifts", 0.0), "ops", t.op("shift8") * 16.0);
    add("pe_arithmetic", "scale_wide_add", ev.value("scale_wide_adds", 0.0), "ops", t.int_add(64));
  }
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

// Adds `from` into `into`, item by item (component and action); an item `into` lacks (another
// array's arithmetic) is appended after the last of its component.
void accumulate_items(std::vector<EnergyItem>& into, const std::vector<EnergyItem>& from) {
  for (const EnergyItem& f : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const EnergyItem& x) { return x.component == f.component && x.action == f.action; });
    if (it != into.end()) {
      it->count += f.count;
      it->pj += f.pj;
      continue;
    }
    auto last = std::find_if(into.rbegin(), into.rend(), [&](const EnergyItem& x) { return x.component == f.component; });
    into.insert(last == into.rend() ? into.end() : last.base(), f);
  }
}

// The items as the report's "items" array.
ojson items_json(const std::vector<EnergyItem>& items) {
  ojson list = ojson::array();
  for (const auto& it : items) {
    list.push_back(ojson{{"component", it.component}, {"action", it.action}, {"count", it.count},
                         {"count_unit", it.count_unit}, {"pj_per_action", it.pj_per_action}, {"pj", it.pj}});
  }
  return list;
}

// The vector unit's energy (report total.non_gemm, sim/vector_unit.h): its FP32 adds, multiplies
// (division, square root and exponential expanded into them) and compares, its buffer's bits
// (priced as the output buffer, sram.c_kib), its DRAM bytes, and the leakage of the chip for the
// cycles it adds to the step. Sets e["non_gemm"], e["step_total"], e["linear_share"],
// report total.linear_share.energy and total.fp32_multiplications.
std::vector<EnergyItem> non_gemm_items(const ojson& cfg, const ojson& part, const EnergyTable& t, double leak_pj_per_ns,
                                       double static_cycles) {
  std::vector<EnergyItem> items;
  auto add = [&](const char* comp, const char* action, double count, const char* unit, double per) {
    items.push_back(EnergyItem{comp, action, count, unit, per, count * per});
  };
  const ojson& ops = part.at("fp32_ops");
  add("vector_arithmetic", "fp32_add", ops.at("add").get<double>(), "ops", t.fp32_add);
  add("vector_arithmetic", "fp32_multiply", ops.at("mul").get<double>(), "ops", t.fp32_mul);
  add("vector_arithmetic", "compare", ops.at("cmp").get<double>(), "ops", t.int_add(32));
  add("vector_sram", "read_write", part.at("sram_bits").get<double>(), "bits",
      t.sram_pj_per_bit(cfg.at("sram.c_kib").get<double>() * 1024.0));
  add("vector_dram", "read", part.at("dram").at("read_bytes").get<double>(), "bytes", t.dram_pj_per_byte());
  add("vector_dram", "write", part.at("dram").at("write_bytes").get<double>(), "bytes", t.dram_pj_per_byte());
  if (leak_pj_per_ns > 0) {
    const double ns = static_cycles * 1e3 / cfg.at("clock.mhz").get<double>();
    add("vector_static", "leakage", ns, "ns", leak_pj_per_ns);
  }
  return items;
}

void add_non_gemm_energy(ojson& report, const EnergyTable& t, ojson& e, double leak_pj_per_ns) {
  ojson& total = report.at("total");
  const ojson& cfg = report.at("config");
  double gemm_fp32_mul = 0;
  for (const char* c : {"fp32_mul", "fp32_fma"}) {
    if (total.at("events").contains(c)) gemm_fp32_mul += total.at("events").at(c).get<double>();
  }
  double quant_fp32_mul = 0;
  for (const auto& it : e.at("items")) {
    if (it.at("component") == "quantization" && it.at("action") == "fp32_multiply") quant_fp32_mul += it.at("count").get<double>();
  }
  ojson mults{{"gemm", gemm_fp32_mul}, {"quantization", quant_fp32_mul}};
  if (!total.contains("non_gemm")) {
    mults["total"] = gemm_fp32_mul + quant_fp32_mul;
    total["fp32_multiplications"] = mults;
    return;
  }
  const ojson& ng = total.at("non_gemm");
  const bool overlap = ng.at("overlap").get<bool>();
  // Leakage for the cycles the vector unit adds to the step (all of its cycles when it runs after
  // the array; with overlap, only those past the array's).
  const double gemm_cycles = total.at("cycles").at("total").get<double>();
  const double step_cycles = total.at("step").at("cycles").get<double>();
  const double added = step_cycles - gemm_cycles;
  const double vec_cycles = ng.at("cycles").at("total").get<double>();
  std::vector<EnergyItem> items = non_gemm_items(cfg, ng, t, leak_pj_per_ns, added);
  ojson by_kind = ojson::object();
  for (const auto& [kind, part] : ng.at("by_kind").items()) {
    const double kc = part.at("cycles").at("total").get<double>();
    const double share = vec_cycles > 0 ? kc / vec_cycles : 0.0;  // leakage split by cycles
    by_kind[kind] = total_of(non_gemm_items(cfg, part, t, leak_pj_per_ns, added * share));
  }
  ojson comp = ojson::object();
  for (const auto& it : items) comp[it.component] = comp.value(it.component, 0.0) + it.pj;
  const double ng_total = total_of(items);
  const double gemm_total = e.at("total").get<double>();
  e["non_gemm"] = ojson{{"total", ng_total}, {"by_component", comp}, {"by_kind", by_kind}, {"items", items_json(items)},
                        {"overlap", overlap}};
  e["step_total"] = gemm_total + ng_total;
  e["linear_share"] = gemm_total + ng_total > 0 ? gemm_total / (gemm_total + ng_total) : 1.0;
  total["linear_share"]["energy"] = e["linear_share"];
  mults["non_gemm"] = ng.at("fp32_ops").at("mul").get<double>();
  mults["total"] = gemm_fp32_mul + quant_fp32_mul + mults["non_gemm"].get<double>();
  total["fp32_multiplications"] = mults;
}

}  // namespace

ojson add_energy(ojson& report, const EnergyTable& table) {
  const ojson& cfg = report.at("config");
  const std::string first = cfg.at("array.kind").get<std::string>();
  const int wbc = cfg.at("quant.wbc_iterations").get<int>();
  const int prc = cfg.at("quant.prc_candidates").get<int>();
  const std::string prc_roles = cfg.value("quant.prc_operands", std::string("a,w"));
  std::vector<EnergyItem> total;
  std::map<std::string, std::vector<EnergyItem>> phases;
  std::map<std::string, std::vector<EnergyItem>> per_array;  // for the per-product arithmetic
  std::map<std::string, double> array_slots, array_zero;
  std::vector<std::pair<std::string, double>> layers;  // in first-seen order
  double macs = 0;
  // Static (leakage) energy: the report's area (area_model.h) times its leakage density times
  // each GEMM's time; none without an area section (or one without a total).
  double leak_mm2 = 0, leak_mw_per_mm2 = 0;
  if (report.contains("area") && report.at("area").contains("total_mm2")) {
    leak_mm2 = report.at("area").at("total_mm2").get<double>();
    leak_mw_per_mm2 = report.at("area").at("leakage_mw_per_mm2").get<double>();
  }
  auto add_static = [&](std::vector<EnergyItem>& items, double cycles) {
    if (leak_mm2 <= 0) return;
    const double ns_per_cycle = 1e3 / cfg.at("clock.mhz").get<double>();
    const double count = leak_mm2 * cycles * ns_per_cycle;  // 1 mW for 1 ns = 1 pJ
    items.push_back(EnergyItem{"static", "leakage", count, "mm2*ns", leak_mw_per_mm2, count * leak_mw_per_mm2});
  };
  if (!report.at("gemms").empty()) {  // the first array's items first, whichever array the first GEMM ran on
    ojson zero = report.at("total").at("events");
    for (auto& [name, v] : zero.items()) v = 0;
    total = energy_items(cfg, zero, QuantOps{}, table, first);
    add_static(total, 0);
  }
  for (auto& g : report.at("gemms")) {
    // Each GEMM is priced by the PE of the array it ran on (array.second: docs/energy-accounting.md).
    const std::string array = g.contains("array") ? g.at("array").get<std::string>() : first;
    const ojson& qe = g.at("quantized_elements");
    double act = num(qe, "activations"), wgt = num(qe, "weights"), err = num(qe, "errors");
    // The operands a PE prices by their own quantizers (the INT8 operand of a mixed pair, the
    // two-term operands); the rest by its training arithmetic's (quant_ops).
    std::vector<QuantOps> apart;
    const PeType& pe = pe_type(array);
    for (const auto& [key, fn] : {std::pair{"int8", pe.int8_quant_ops}, std::pair{"apot", pe.apot_quant_ops}}) {
      if (!qe.contains(key) || fn == nullptr) continue;
      const ojson& sub = qe.at(key);
      apart.push_back(fn(num(sub, "activations"), num(sub, "weights"), num(sub, "errors")));
      act -= num(sub, "activations");
      wgt -= num(sub, "weights");
      err -= num(sub, "errors");
    }
    QuantOps q = prc_roles == "a,w,g" ? quant_ops(array, act, wgt, err, wbc, prc)
                                      : quant_ops_by_role(array, act, wgt, err, wbc, prc, prc_roles);
    for (const QuantOps& o : apart) q += o;
    std::vector<EnergyItem> items =
        energy_items(cfg, g.at("events"), q, table, array, array == first ? "" : array + ".");
    add_static(items, g.at("cycles").at("total").get<double>());
    const double gt = total_of(items);
    g["energy_pj"] = ojson{{"total", gt}, {"by_component", by_component(items)}};
    accumulate_items(total, items);
    accumulate_items(per_array[array], items);
    array_slots[array] += num(g.at("events"), "mac_slots");
    array_zero[array] += num(g.at("events"), "products_zero");
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
  if (total.empty()) {
    total = energy_items(cfg, report.at("total").at("events"), QuantOps{}, table);
    add_static(total, report.at("total").at("cycles").at("total").get<double>());
  }
  ojson e;
  ojson notes = ojson::array();
  for (const char* kib : {"sram.a_kib", "sram.b_kib", "sram.c_kib"}) {
    const std::string n = table.sram_range_note(cfg.at(kib).get<double>() * 1024.0, kib);
    if (!n.empty()) notes.push_back(n);
  }
  e["unit"] = "pJ";
  e["table"] = table.name;
  e["notes"] = notes;
  e["table_origin"] = table.origin;
  const double t = total_of(total);
  e["total"] = t;
  e["per_mac"] = macs > 0 ? t / macs : 0.0;
  e["by_component"] = by_component(total);
  const double arith = e["by_component"]["pe_arithmetic"].get<double>();
  e["arithmetic_per_mac"] = macs > 0 ? arith / macs : 0.0;
  // The MAC arithmetic both ways, from the same counts: an executed product costs its array's
  // MAC arithmetic divided by the products it executed (a product need not do every action once:
  // the two-term PE shifts twice for a two-term code and adds terms only then); with gating,
  // products with a zero operand cost nothing. The finer scales' per-output and per-chunk work
  // (scale_*) is not per product and is left out. On two arrays the per-product figure is the
  // mean over all products.
  const ojson& ev = report.at("total").at("events");
  const double slots = num(ev, "mac_slots"), zero = num(ev, "products_zero");
  if (per_array.size() <= 1) {  // one array (or no GEMMs: the report's total events)
    per_array = {{first, total}};
    array_slots = {{first, slots}};
    array_zero = {{first, zero}};
  }
  const bool gating = cfg.value("pe.zero_gating", true);
  double gated = 0, ungated = 0, per_product_one = 0;
  for (const auto& [array, items] : per_array) {
    const std::string prefix = array == first ? "" : array + ".";
    double mac_pj = 0, per_action_sum = 0;
    for (const auto& it : items) {
      if (it.component != "pe_arithmetic" || it.action.rfind(prefix + "scale_", 0) == 0) continue;
      mac_pj += it.pj;
      if (it.count > 0) per_action_sum += it.pj_per_action;
    }
    // Executed products: those with a zero operand too when gating is off (they then do the work).
    const double executed = gating ? array_slots[array] - array_zero[array] : array_slots[array];
    // Without an executed product (all gated, or no GEMMs) the sum of the actions' prices.
    const double per_product = executed > 0 ? mac_pj / executed : per_action_sum;
    per_product_one = per_product;
    gated += per_product * (array_slots[array] - array_zero[array]);
    ungated += per_product * array_slots[array];
  }
  const double per_product = per_array.size() == 1 ? per_product_one : (slots > 0 ? ungated / slots : 0.0);
  e["zero_gating"] = ojson{{"enabled", cfg.value("pe.zero_gating", true)},
                           {"zero_product_fraction", slots > 0 ? zero / slots : 0.0},
                           {"arithmetic_pj_per_product", per_product},
                           {"arithmetic_gated", gated},
                           {"arithmetic_ungated", ungated}};
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
  e["items"] = items_json(total);
  add_non_gemm_energy(report, table, e, leak_mm2 * leak_mw_per_mm2);
  report["energy_pj"] = e;
  return e;
}

MapCosts mapping_costs(const EnergyTable& t, const SimConfig& cfg) {
  MapCosts c;
  c.set = true;
  (void)t.sram_range_note(static_cast<double>(cfg.sram_a_bytes), "sram.a_kib");  // throws far outside the table
  (void)t.sram_range_note(static_cast<double>(cfg.sram_b_bytes), "sram.b_kib");
  (void)t.sram_range_note(static_cast<double>(cfg.sram_c_bytes), "sram.c_kib");
  c.dram_byte = t.dram_pj_per_byte();
  c.sram_a_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_a_bytes));
  c.sram_b_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_b_bytes));
  c.sram_c_bit = t.sram_pj_per_bit(static_cast<double>(cfg.sram_c_bytes));
  c.register_bit = t.register_bit;
  return c;
}

std::string energy_csv(const ojson& e) {
  std::string out = "component,action,count,count_unit,pJ_per_action,pJ\n";
  auto put_items = [&](const ojson& items) {
    for (const auto& it : items) {
      out += fmt::format("{},{},{:.0f},{},{},{}\n", it["component"].get<std::string>(),
                         it["action"].get<std::string>(), it["count"].get<double>(), it["count_unit"].get<std::string>(),
                         it["pj_per_action"].get<double>(), it["pj"].get<double>());
    }
  };
  put_items(e.at("items"));
  if (!e.contains("non_gemm")) {
    out += fmt::format("total,,,,,{}\n", e.at("total").get<double>());
    return out;
  }
  // The vector unit's items (docs/non-gemm.md), then the GEMMs', the vector unit's and the whole
  // step's totals: the last is the sum of every item above.
  put_items(e.at("non_gemm").at("items"));
  out += fmt::format("gemm_total,,,,,{}\n", e.at("total").get<double>());
  out += fmt::format("non_gemm_total,,,,,{}\n", e.at("non_gemm").at("total").get<double>());
  out += fmt::format("total,,,,,{}\n", e.at("step_total").get<double>());
  return out;
}

}  // namespace mfsim
