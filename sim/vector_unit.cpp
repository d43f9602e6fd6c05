#include "sim/vector_unit.h"

#include "sim/events.h"
#include "sim/fold_model.h"

namespace mfsim {

VectorOpCost vector_op_cost(const SimConfig& cfg, const NonGemmOp& op) {
  const auto f = [&](FpOp o) { return op.flops[static_cast<int>(o)]; };
  VectorOpCost c;
  // Counts are below 2^56 each (the reader's bound); the expansions stay far below 2^64.
  c.adds = f(FpOp::kAdd) + kDivAdd * f(FpOp::kDiv) + kSqrtAdd * f(FpOp::kSqrt) + kExpAdd * f(FpOp::kExp);
  c.muls = f(FpOp::kMul) + kDivMul * f(FpOp::kDiv) + kSqrtMul * f(FpOp::kSqrt) + kExpMul * f(FpOp::kExp);
  c.cmps = f(FpOp::kCmp);
  c.lane_ops = checked_add(checked_add(c.adds, c.muls, "non_gemm.lane_ops"), c.cmps, "non_gemm.lane_ops");
  const auto lanes = static_cast<std::uint64_t>(cfg.vector_lanes);
  c.compute = c.lane_ops / lanes + (c.lane_ops % lanes != 0 ? 1 : 0);
  c.dram_read_bytes = op.read_bytes(cfg.vector_fused);
  c.dram_write_bytes = op.write_bytes(cfg.vector_fused);
  const std::uint64_t bytes = checked_add(c.dram_read_bytes, c.dram_write_bytes, "non_gemm.dram");
  const std::uint64_t dram = transfer_cycles(bytes, Bandwidth::from_double(cfg.dram_bytes_per_cycle));
  c.cycles = c.compute > dram ? c.compute : dram;
  c.stall = c.cycles - c.compute;
  c.sram_bits = checked_mul(bytes, 16, "non_gemm.sram");  // each byte written into the buffer and read out: 2 x 8 bits
  return c;
}

VectorOpCost vector_write_cost(const SimConfig& cfg, std::uint64_t write_bytes, std::uint64_t from_array_bytes) {
  VectorOpCost c;
  c.dram_write_bytes = write_bytes;
  c.cycles = transfer_cycles(write_bytes, Bandwidth::from_double(cfg.dram_bytes_per_cycle));
  c.stall = c.cycles;
  c.sram_bits = checked_mul(checked_add(write_bytes, from_array_bytes, "non_gemm.sram"), 16, "non_gemm.sram");
  return c;
}

std::vector<ParamSpec> vector_params() {
  return {
      {"vector.lanes", ParamType::kInt, "32", "lanes", 1, 65536, nullptr,
       "FP32 lanes of the vector unit that runs the non-GEMM operations of a trace (docs/non-gemm.md)",
       set_int(&SimConfig::vector_lanes)},
      {"vector.overlap", ParamType::kBool, "false", "", 0, 0, nullptr,
       "the vector unit works beside the array (step cycles = max of both) instead of after it (their sum)",
       set_bool(&SimConfig::vector_overlap)},
      {"vector.fusion", ParamType::kChoice, "unfused", "", 0, 0, "unfused|fused",
       "unfused: every GEMM output is written to DRAM at the array's output width and the vector unit reads it back; "
       "fused: the vector unit takes fwd and bwd_data outputs on chip and writes only what the next GEMM reads (at "
       "its operand width) and the tensors the backward pass needs (docs/non-gemm.md#fusion)",
       [](const std::string& v, SimConfig& c) { c.vector_fused = v == "fused"; }},
  };
}

}  // namespace mfsim
