// Tables derived from a simulate report (the canonical JSON): one row per GEMM, per layer or per
// phase, with the shape, cycles, DRAM traffic and energy (by component, when the report has
// energy). `mfsim simulate --layers-csv` writes the per-layer table; the Python module returns
// all three as pandas DataFrames. A layer's or phase's row is the sum of its GEMMs' rows
// (utilization recomputed from the summed PE slots), so the rows of each table add up to the
// report's totals.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mfsim {

enum class ReportTable { kGemm, kLayer, kPhase };
bool parse_report_table(const std::string& s, ReportTable* out);  // gemm|layer|phase

// An array of row objects, every row with the same keys in the same order.
nlohmann::ordered_json report_table(const nlohmann::ordered_json& report, ReportTable which);

// CSV (a header line, then one line per row) and an aligned text table of such rows.
std::string table_csv(const nlohmann::ordered_json& rows);
std::string table_text(const nlohmann::ordered_json& rows);

}  // namespace mfsim
