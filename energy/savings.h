// The savings report of `mfsim compare`: the same trace on FP32, INT8 and MF-MAC arrays,
// energy under one or more tables, and the savings against FP32, term by term.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "energy/energy_table.h"

namespace mfsim {

// `reports` maps array kind (fp32, int8, mfmac) to its simulate report (energy is recomputed
// here for every table). Returns the canonical compare report.
nlohmann::ordered_json build_savings_report(const std::vector<std::pair<std::string, nlohmann::ordered_json>>& reports,
                                            const std::vector<EnergyTable>& tables,
                                            const nlohmann::ordered_json& meta);

std::string savings_text(const nlohmann::ordered_json& report);
std::string savings_html(const nlohmann::ordered_json& report);
// One line per energy table and array: cycles, the whole step (empty without non-GEMM work),
// energy, linear share, savings against FP32 (empty for FP32), DRAM bytes, fusion mode.
std::string savings_csv(const nlohmann::ordered_json& report);

}  // namespace mfsim
