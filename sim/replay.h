// Replays a trace on one array configuration and builds the canonical JSON report.
//
// Each record runs in value mode (the SystemC model with operands, results verified) or in
// timing mode (the closed-form cycle and event model, sim/fold_model.h), per --mode:
//   value:  every record must carry operands the array can represent exactly, else an error;
//   timing: no record is simulated with values;
//   auto:   value where possible, timing otherwise (with a note saying why).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sim/params.h"
#include "traces/trace_reader.h"

namespace mfsim {

enum class SimMode : std::uint8_t { kAuto, kValue, kTiming };
bool parse_sim_mode(const std::string& s, SimMode* out);
const char* to_string(SimMode m);

struct ReplayOptions {
  SimConfig config;
  nlohmann::json params;  // every parameter's value, echoed in the report
  SimMode mode = SimMode::kAuto;
  std::string vcd_path;
  std::string command_line;
};

struct ReplayOutcome {
  nlohmann::ordered_json report;
  std::uint64_t mismatches = 0;  // includes accumulator overflows in value mode
  std::string first_mismatch;    // one line naming the GEMM and the first differing element
};

// Whether an array's registers hold both operands' values exactly (PeType::holds).
bool array_represents(const PeType& a, const TraceRecord& r);

// A record's operands in the array's register form (PoT4 codes, integers or binary32 values),
// each operand by its own format; moves the payload's vectors. See replay.cpp.
struct GemmOperands;
GemmOperands to_array_operands(const PeType& array, const TraceRecord& r, RecordPayload& p);

ReplayOutcome replay_trace(const TraceReader& reader, const ReplayOptions& options);

// Short human-readable summary of a report (derived from the JSON).
std::string report_summary_text(const nlohmann::ordered_json& report);

}  // namespace mfsim
