// Energy = event counts x per-action energy, evaluated after simulation from a simulate report
// (its config, and per GEMM its shape, phase and event counts), so that changing the table
// never reruns a simulation. The cycle model holds no energy constants.
//
// Components: pe_arithmetic (the linear layers' MAC arithmetic, the paper's scope),
// pe_registers, sram_a, sram_b, sram_c, dram, and quantization (the ALS-POTQ or INT8
// quantizers' own operations, counted per tensor element; docs/energy-accounting.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "energy/energy_table.h"
#include "sim/params.h"

namespace mfsim {

struct EnergyItem {
  std::string component, action;
  double count = 0;
  std::string count_unit;
  double pj_per_action = 0;
  double pj = 0;
};

// Quantizer operations of one GEMM record (all `repeat` copies) for the training arithmetic of
// `array_kind` (QuantOps and each PE type's rule: sim/pe_type.h, sim/pe/*.cpp; accounting:
// docs/energy-accounting.md).
// `activations`, `weights`, `errors`: elements the step quantizes for this record (the report's
// per-GEMM `quantized_elements`, traces/trace.h quantized_elements()).
QuantOps quant_ops(const std::string& array_kind, double activations, double weights, double errors,
                   int wbc_iterations, int prc_candidates);

// Energy items of one set of event counts (the "events" object of a report) under `config`
// (the report's "config" object), for the PE type `array_kind` (default: the config's
// array.kind). `action_prefix` is put before the PE arithmetic's actions ("int8." for the GEMMs
// of a second array, so that both arrays' actions stay apart in a report's items).
std::vector<EnergyItem> energy_items(const nlohmann::ordered_json& config, const nlohmann::ordered_json& events,
                                     const QuantOps& quant, const EnergyTable& table,
                                     const std::string& array_kind = "", const std::string& action_prefix = "");

// The `energy_pj` section for a simulate report (total, per MAC, by component, by phase, by
// layer, items) and the per-GEMM totals (added to report["gemms"][i]["energy_pj"]).
nlohmann::ordered_json add_energy(nlohmann::ordered_json& report, const EnergyTable& table);

// The energy components, in report order.
const std::vector<const char*>& energy_components();

// The per-action energies the mapper weighs (map.objective = energy | edp) under `cfg`.
MapCosts mapping_costs(const EnergyTable& table, const SimConfig& cfg);

// Accelergy-shaped CSV (component,action,count,count_unit,pJ_per_action,pJ) of the items.
std::string energy_csv(const nlohmann::ordered_json& energy_section);

}  // namespace mfsim
