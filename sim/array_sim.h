// Value-mode simulation: the SystemC model of the systolic array system (array, controller,
// operand buffers, DRAM channel) replaying GEMMs with operands, cycle by cycle. SystemC stays
// inside array_sim.cpp; this header is plain C++.
//
// One call elaborates and runs one SystemC simulation, so a whole trace is replayed by one
// call. (SystemC 2.3 cannot elaborate twice in one kernel context: a further call in the same
// process runs in a fresh context. Sweeps still run one simulation per process.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/gemm_ref.h"
#include "models/pot4.h"
#include "sim/events.h"
#include "sim/fold_model.h"
#include "sim/params.h"

namespace mfsim {

// One GEMM's operands, row-major A (M x K) and B (K x N), in the array's representation:
// PoT4 codes for the MF-MAC array, integers for the INT8 array, floats for the FP32 array; for
// the shift array each operand as it is (one of a_pot4, a_int filled; likewise for B).
struct GemmOperands {
  std::vector<Pot4Code> a_pot4, b_pot4;
  std::vector<int> a_int, b_int;
  std::vector<float> a_f32, b_f32;
  // Finer scales: each element's exponent offset x - min over the operand (0 for a zero element);
  // empty when the record has none. The PE shifts each product by the sum of its two offsets.
  std::vector<std::int8_t> a_off, b_off;
  // Per-operand registers (the two-term PE): a_int (b_int) holds two-term values that the PE
  // takes as codes (the shifter's two amounts), not as its data integer.
  bool a_apot = false, b_apot = false;
};

struct ValueGemmResult {
  GemmTiming timing;                 // measured by the simulation
  EventCounts events;                // measured by the simulation
  std::uint64_t saturations = 0;
  std::vector<std::int64_t> out_int;  // MF-MAC, INT8: accumulators (M x N)
  std::vector<float> out_f32;         // FP32 (M x N)
  std::vector<std::int64_t> fold_cycles;            // measured length of each fold (first 4096)
  std::int64_t first_output_cycle = -1;             // in fold 0, from its first cycle
  std::int64_t last_output_cycle = -1;
  std::uint64_t array_steps = 0;     // cycles in which the array was stepped
  std::string overflow;              // accumulator overflow message (OverflowPolicy::kError)
};

struct GemmJob {
  GemmShape shape;
  ConvView conv;                       // a convolution's geometry (the memory model's view)
  std::function<GemmOperands()> load;  // called when the controller reaches the GEMM
};

// Runs the jobs one after another; `on_done(job_index, result)` is called after each GEMM.
// `vcd_path` (optional) writes a VCD waveform of the array boundary and a few registers.
void simulate_value(const SimConfig& cfg, const std::vector<GemmJob>& jobs,
                    const std::function<void(std::size_t, ValueGemmResult&)>& on_done,
                    const std::string& vcd_path = "");

}  // namespace mfsim
