// The vector unit beside the systolic array (docs/non-gemm.md): the SIMD unit that runs a
// training step's work outside its GEMMs (trace.h NonGemmOp), in timing mode only (a closed form
// per operation, no values).
//
// Cycle semantics: `vector.lanes` FP32 lanes, each one add, multiply or compare per cycle;
// division, square root and exponential are sequences of those (kDiv*, kSqrt*, kExp* below) and
// take vector.div_cycles, .sqrt_cycles, .exp_cycles lane cycles (default: the sequences' lengths;
// a faster unit changes the time, the energy stays the sequence's), so an operation's compute
// cycles are ceil(lane_ops / lanes). Its tensors stream between DRAM and
// the unit's buffer (every read and written byte crosses DRAM once: the GEMM outputs are written
// at 32 bits and read back, unless vector.fusion=fused), double-buffered: cycles = max(compute,
// ceil(DRAM bytes / dram.bandwidth)), the difference being stall. Each byte passes the buffer
// twice (written, then read), priced as the output buffer's SRAM (sram.c_kib). The unit runs
// after the array's work (vector.overlap = false: step cycles = GEMM cycles + vector cycles) or
// beside it (true: max of the two, an optimistic bound).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "sim/params.h"
#include "traces/trace.h"

namespace mfsim {

// Division, square root and exponential as sequences of FP32 adds and multiplies (the lanes'
// operations, and how the energy model prices them):
//   division a/b: reciprocal by Newton-Raphson from a table seed, two iterations r' = r (2 - b r)
//     (2 multiplies, 1 add each), then a r: 5 multiplies, 2 adds;
//   square root: reciprocal square root by two Newton-Raphson iterations y' = y (1.5 - 0.5 x y^2)
//     (4 multiplies, 1 add each), then x y: 9 multiplies, 2 adds;
//   exponential: n = round(x log2 e) (1 multiply, 1 add), r = x - n ln 2 (1 multiply, 1 add), a
//     degree-5 polynomial by Horner (5 multiplies, 5 adds), the exponent add of n: 7 multiplies,
//     8 adds.
constexpr std::uint64_t kDivMul = 5, kDivAdd = 2, kSqrtMul = 9, kSqrtAdd = 2, kExpMul = 7, kExpAdd = 8;

struct VectorOpCost {
  std::uint64_t adds = 0, muls = 0, cmps = 0;  // FP32 lane operations, div/sqrt/exp expanded
  std::uint64_t lane_ops = 0;                  // lane cycles: adds, muls, cmps, div/sqrt/exp at their cycles
  std::uint64_t compute = 0, cycles = 0, stall = 0;
  std::uint64_t dram_read_bytes = 0, dram_write_bytes = 0;
  std::uint64_t sram_bits = 0;  // buffer reads and writes
};

VectorOpCost vector_op_cost(const SimConfig& cfg, const NonGemmOp& op);

// Fused (vector.fusion=fused, docs/non-gemm.md#fusion): the unit writes `write_bytes` of GEMM
// operands to DRAM and takes `from_array_bytes` of GEMM results on chip. No arithmetic; cycles
// are the writes' DRAM transfer; every byte passes the buffer twice.
VectorOpCost vector_write_cost(const SimConfig& cfg, std::uint64_t write_bytes, std::uint64_t from_array_bytes);

std::vector<ParamSpec> vector_params();  // vector.lanes, .overlap, .div_cycles, .sqrt_cycles, .exp_cycles, .fusion

}  // namespace mfsim
