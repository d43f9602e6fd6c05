// The shipped example trace (traces/examples/mlp-tiny.json): the five PoT4 GEMMs of one
// training step of a 20-12-10 MLP at batch 7 (odd sizes on purpose), plus the first layer's
// forward GEMM again in INT8 and FP32 so that every operand format appears.
//
// Operands are synthetic, drawn from a seeded integer generator (portable: the same bytes on
// every machine); expected outputs are computed with the reference arithmetic. It exercises the
// format and the simulators; it is not a record of real training (see `mfsim train`).
#pragma once

#include <cstdint>
#include <string>

namespace mfsim {

void write_example_trace(const std::string& json_path, std::uint64_t seed);

}  // namespace mfsim
