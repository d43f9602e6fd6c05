#include "apps/mfsim/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "common/error.h"
#include "energy/area_model.h"
#include "energy/energy_model.h"
#include "energy/savings.h"
#include "sim/pe_type.h"

namespace mfsim::api {

using ojson = nlohmann::ordered_json;

ReplayOutcome simulate(const TraceReader& reader, const SimulateOptions& o) {
  ReplayOptions opt;
  opt.config = o.params.build();
  opt.params = o.params.to_json();
  opt.mode = o.mode;
  opt.vcd_path = o.vcd_path;
  opt.command_line = o.command_line;
  const SynthAreaTable synth = load_synth_area_table("osu018-synth");
  opt.config.map_costs = mapping_costs(o.energy_table, opt.config);  // for map.objective = energy | edp
  ReplayOutcome res = replay_trace(reader, opt);
  add_area_and_power(res.report, opt.config, o.area_table, &synth, o.energy_table);
  return res;
}

std::string mismatch_message(const ReplayOutcome& res, const std::string& report_where) {
  return fmt::format("{} (and {} more mismatching GEMMs; report in {})", res.first_mismatch, res.mismatches - 1,
                     report_where);
}

namespace {

// The PE types named by `list` (all when empty), in registry order, with the FP32 baseline.
std::vector<const PeType*> select_arrays(const std::string& list) {
  std::vector<std::string> names;
  std::stringstream ss(list);
  for (std::string n; std::getline(ss, n, ',');) {
    if (find_pe_type(n) == nullptr) {
      throw InputError(fmt::format("compare: --arrays: unknown array \"{}\"; expected {}", n, pe_type_names()));
    }
    names.push_back(n);
  }
  std::vector<const PeType*> out;
  for (const PeType* pe : pe_types()) {
    if (list.empty() || std::string(pe->name) == "fp32" ||
        std::find(names.begin(), names.end(), pe->name) != names.end()) {
      out.push_back(pe);
    }
  }
  return out;
}

// The second array for the records of `trace` that `array` cannot run exactly, when it runs
// some of them: the narrowest PE type (fewest formats held) that runs all the others (each
// record's pair of formats: the shift-add pair of an MF-MAC step gets the shift array). Empty
// when the array runs every record (nothing to add) or none (the whole row is then a what-if
// estimate of the step on that array, marked as such in the report).
std::string auto_second(const PeType& array, const Trace& trace) {
  std::vector<std::pair<NumFormat, NumFormat>> missing;
  bool runs_some = false;
  for (const TraceRecord& r : trace.records) {
    const std::pair<NumFormat, NumFormat> pair{r.a.format, r.b.format};
    if (!array.runs_exactly(pair.first, pair.second)) {
      if (std::find(missing.begin(), missing.end(), pair) == missing.end()) missing.push_back(pair);
    } else {
      runs_some = true;
    }
  }
  if (missing.empty() || !runs_some) return "";
  const PeType* best = nullptr;
  for (const PeType* pe : pe_types()) {
    bool all = true;
    for (const auto& [a, b] : missing) all = all && pe->runs_exactly(a, b);
    if (all && (best == nullptr || pe->holds.size() < best->holds.size())) best = pe;
  }
  return best == nullptr ? "" : best->name;
}

// --iso area / --area-budget: each run's rows x cols, the largest square-ish array within the
// budget (area_model.h, largest_array_within); the budget is the request's or the MF-MAC array's
// area at the parameters' size (the MF-MAC array then keeps that size).
ojson size_to_area(const ParamSet& params, std::vector<CompareRun>& runs, const Trace& trace, bool user_second,
                   double budget_mm2, const AreaTable& table) {
  const SimConfig base = params.build();
  auto config_of = [&](const PeType& pe, const std::string& second) {
    SimConfig c = base;
    c.array = &pe;
    if (!user_second) c.second = second.empty() ? nullptr : &pe_type(second);
    return c;
  };
  ojson j;
  const bool from_mfmac = budget_mm2 <= 0;
  if (from_mfmac) {
    const PeType& mf = pe_type("mfmac");
    const ArrayArea a = array_area(config_of(mf, user_second ? "" : auto_second(mf, trace)), table);
    if (!a.complete()) throw InputError(fmt::format("compare: --iso area: the {} area table has no row for {}", table.name, a.missing.front()));
    budget_mm2 = a.total_um2 * 1e-6;
    j["budget_from"] = fmt::format("the mfmac array at {}x{}", base.rows, base.cols);
  } else {
    j["budget_from"] = "--area-budget";
  }
  j["budget_mm2"] = budget_mm2;
  j["area_table"] = table.name;
  j["rule"] = "rows x cols is the largest of 1x1, 1x2, 2x2, 2x3, 3x3, ... (cols = rows or rows + 1) whose area "
              "(PEs, registers, SRAM buffers) is within the budget";
  ojson arrays = ojson::object();
  for (CompareRun& c : runs) {
    const SimConfig cfg = config_of(pe_type(c.array), c.second);
    if (from_mfmac && c.array == "mfmac") {
      c.rows = base.rows;
      c.cols = base.cols;
      arrays[c.array] = ojson{{"rows", c.rows}, {"cols", c.cols}, {"sized", false}};
      continue;
    }
    const IsoAreaSize s = largest_array_within(cfg, table, budget_mm2 * 1e6);
    if (s.rows == 0) {
      throw InputError(fmt::format("compare: --area-budget: {} mm2 fits no {} array (1x1 with its SRAM buffers takes "
                                   "{:.4g} mm2)",
                                   budget_mm2, c.array, s.next_um2 * 1e-6));
    }
    c.rows = s.rows;
    c.cols = s.cols;
    ojson a{{"rows", s.rows}, {"cols", s.cols}, {"sized", true}};
    if (s.next_rows > 0) {
      a["next_rows"] = s.next_rows;
      a["next_cols"] = s.next_cols;
      a["next_area_mm2"] = s.next_um2 * 1e-6;
    }
    arrays[c.array] = a;
  }
  j["arrays"] = arrays;
  return j;
}

}  // namespace

ComparePlan plan_compare(const CompareRequest& req, const TraceReader& reader) {
  ComparePlan plan;
  const std::vector<const PeType*> selected = select_arrays(req.arrays);
  if (!req.params.origin("array.kind").empty()) {
    throw InputError(fmt::format("compare: {}: array.kind cannot be set; compare runs every array itself "
                                 "(choose them with --arrays)",
                                 req.params.origin("array.kind")));
  }
  reader.require_gemms("compare");
  {
    std::stringstream ss(req.energy_tables);
    std::string t;
    while (std::getline(ss, t, ',')) plan.tables.push_back(load_energy_table(t));
    if (plan.tables.empty()) throw InputError("compare: --energy-table: no table named");
  }
  if (req.iso_area) {
    for (const char* p : {"array.rows", "array.cols"}) {
      if (req.params.origin(p).rfind("--set", 0) == 0) {
        throw InputError(fmt::format("compare: --iso area: {} sizes every array; give the MF-MAC array's size with "
                                     "--rows and --cols",
                                     req.params.origin(p)));
      }
    }
  }
  plan.area_table = load_area_table("published45");
  const bool user_second = !req.params.origin("array.second").empty();
  for (const PeType* pe : selected) {
    CompareRun c;
    c.array = pe->name;
    if (!user_second) c.second = auto_second(*pe, reader.trace());
    plan.runs.push_back(c);
  }
  if (req.iso_area) plan.iso_area = size_to_area(req.params, plan.runs, reader.trace(), user_second, req.area_budget_mm2,
                                              plan.area_table);
  return plan;
}

SimulateOptions run_options(const CompareRequest& req, const ComparePlan& plan, const CompareRun& run) {
  SimulateOptions o;
  o.params = req.params;
  o.params.set("array.kind", run.array, "--array");
  if (run.rows > 0) {
    o.params.set("array.rows", std::to_string(run.rows), "--rows");
    o.params.set("array.cols", std::to_string(run.cols), "--cols");
  }
  if (!run.second.empty()) o.params.set("array.second", run.second, "--set array.second=" + run.second);
  o.mode = req.mode;
  o.energy_table = plan.tables.front();
  o.area_table = plan.area_table;
  return o;
}

ojson compare_report(const CompareRequest& req, const ComparePlan& plan,
                     const std::vector<std::pair<std::string, ojson>>& reports, const std::string& trace_name,
                     const std::string& command, const std::string& report_file) {
  const auto& cfg = reports.front().second["config"];
  const bool iso = req.iso_area;
  ojson meta;
  meta["mfsim_version"] = MFSIM_VERSION;
  meta["command"] = command;
  meta["trace"] = trace_name;
  meta["rows"] = cfg["array.rows"];
  meta["cols"] = cfg["array.cols"];
  if (iso) {  // the arrays' sizes differ: the header gives the parameters' (MF-MAC's) size
    const SimConfig base = req.params.build();
    meta["rows"] = base.rows;
    meta["cols"] = base.cols;
  }
  meta["dataflow"] = cfg["array.dataflow"];
  meta["config"] = cfg;
  ojson seconds = ojson::object();
  for (const auto& c : plan.runs) {
    if (!c.second.empty()) seconds[c.array] = c.second;
  }
  // The arrays compare gave a second array (array.second) for the GEMMs they cannot hold.
  meta["second_arrays_chosen"] = seconds;
  if (iso) {
    // The size each array ran at and its area (from its report), its step time and energy.
    ojson iso_json = plan.iso_area;
    for (const auto& [kind, rep] : reports) {
      auto& a = iso_json["arrays"][kind];
      a["area_mm2"] = rep["area"]["total_mm2"];
      a["time_seconds"] = rep["total"]["time_seconds"];
    }
    meta["iso_area"] = iso_json;
  }
  if (!report_file.empty()) meta["report_file"] = report_file;
  ojson out = build_savings_report(reports, plan.tables, meta);
  if (iso) {
    for (auto& [kind, a] : out["iso_area"]["arrays"].items()) {
      a["energy_pj"] = out["energy_pj"][kind]["total"];
      a["energy_table"] = out["energy_table"];
    }
  }
  return out;
}

ojson compare(const TraceReader& reader, const CompareRequest& req, const std::string& command) {
  const ComparePlan plan = plan_compare(req, reader);
  std::vector<std::pair<std::string, ojson>> reports;
  for (const CompareRun& run : plan.runs) {
    ReplayOutcome res;
    try {
      res = simulate(reader, run_options(req, plan, run));
    } catch (const InputError& e) {
      throw InputError(fmt::format("{} array: {}", run.array, e.what()));
    }
    if (res.mismatches > 0) {
      throw VerificationError(fmt::format("{} array: {} (and {} more mismatching GEMMs)", run.array,
                                          res.first_mismatch, res.mismatches - 1));
    }
    reports.emplace_back(run.array, std::move(res.report));
  }
  return compare_report(req, plan, reports, reader.path(), command, "");
}

}  // namespace mfsim::api
