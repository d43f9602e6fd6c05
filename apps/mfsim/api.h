// The work of `mfsim simulate` and `mfsim compare` as library calls, shared by the command line
// (cmd_simulate.cpp, cmd_compare.cpp) and the Python module (python/mfsim): one implementation,
// the same reports. Errors are thrown as InputError / VerificationError (common/error.h) with the
// command line's one-line messages; Cancelled (common/cancel.h) when a stop was requested.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "energy/area_model.h"
#include "energy/energy_table.h"
#include "sim/params.h"
#include "sim/replay.h"
#include "traces/trace_reader.h"

namespace mfsim::api {

struct SimulateOptions {
  ParamSet params;  // config file, shorthands and --set, already applied
  SimMode mode = SimMode::kAuto;
  EnergyTable energy_table;  // load_energy_table("paper" or a file): loaded once by the caller
  AreaTable area_table;      // load_area_table("published45" or a file)
  std::string vcd_path;
  std::string command_line;  // echoed in the report ("command"), when not empty
};

// The replay of `reader` on one array with its energy (one table), area and power: the report
// `mfsim simulate` writes. Mismatches are counted in the outcome, not thrown.
ReplayOutcome simulate(const TraceReader& reader, const SimulateOptions& options);

// The VerificationError of an outcome with mismatches (its first mismatch, how many more, and
// where the report is), as `mfsim simulate` reports it.
std::string mismatch_message(const ReplayOutcome& outcome, const std::string& report_where);

// What `mfsim compare` runs: every array (or those `arrays` names; FP32 always), each with the
// second array chosen for the GEMMs it cannot hold, and with --iso area or --area-budget each
// array's size.
struct CompareRequest {
  std::string arrays;                 // comma-separated PE types; empty: all
  ParamSet params;                    // passed to every simulation (array.kind may not be set)
  std::string energy_tables = "paper";  // comma-separated tables (names or JSON files); the first is the headline
  SimMode mode = SimMode::kAuto;
  bool iso_area = false;              // --iso area / --area-budget
  double area_budget_mm2 = 0;         // > 0: --area-budget; else the MF-MAC array's area
};

struct CompareRun {
  std::string array;
  std::string second;      // array.second chosen by compare (empty: none, or the user's)
  int rows = 0, cols = 0;  // the array's size under --iso area (0: the parameters')
};

struct ComparePlan {
  std::vector<EnergyTable> tables;       // loaded from the request's energy_tables
  AreaTable area_table;                  // published45: every run's area, and --iso area's sizes
  std::vector<CompareRun> runs;          // in report order (the PE registry's), FP32 first
  nlohmann::ordered_json iso_area;       // the equal-area sizing (null without it)
};

ComparePlan plan_compare(const CompareRequest& request, const TraceReader& reader);

// The simulation of one run of the plan: the request's parameters with the array, its size and
// its second array; the plan's headline energy table and area table; the request's mode.
SimulateOptions run_options(const CompareRequest& request, const ComparePlan& plan, const CompareRun& run);

// The savings report from the runs' simulate reports (in plan order); `report_file` is echoed
// when not empty.
nlohmann::ordered_json compare_report(const CompareRequest& request, const ComparePlan& plan,
                                      const std::vector<std::pair<std::string, nlohmann::ordered_json>>& reports,
                                      const std::string& trace_name, const std::string& command,
                                      const std::string& report_file);

// compare in this process: each array's simulation in turn (simulate() above). A failing run's
// error names its array ("int8 array: ..."), as the command line's does.
nlohmann::ordered_json compare(const TraceReader& reader, const CompareRequest& request, const std::string& command);

}  // namespace mfsim::api
