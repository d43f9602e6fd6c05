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
  // Lane cycles: one per add, multiply or compare; vector.div_cycles, .sqrt_cycles, .exp_cycles per
  // division, square root and exponential (default: their sequences' lengths, 7, 11 and 15).
  const auto per = [&](FpOp o, int cycles) {
    return checked_mul(f(o), static_cast<std::uint64_t>(cycles), "non_gemm.lane_ops");
  };
  std::uint64_t lane = f(FpOp::kAdd) + f(FpOp::kMul) + c.cmps;  // each below 2^56
  for (const std::uint64_t x : {per(FpOp::kDiv, cfg.vector_div_cycles), per(FpOp::kSqrt, cfg.vector_sqrt_cycles),
                                per(FpOp::kExp, cfg.vector_exp_cycles)}) {
    lane = checked_add(lane, x, "non_gemm.lane_ops");
  }
  c.lane_ops = lane;
  const auto lanes = static_cast<std::uint64_t>(cfg.vector_lanes);
  c.compute = c.lane_ops / lanes + (c.lane_ops % lanes != 0 ? 1 : 0);
  c.dram_read_bytes = op.read_bytes(cfg.vector_fused);
  c.dram_write_bytes = op.write_bytes(cfg.vector_fused);
  const std::uint64_t bytes = checked_add(c.dram_read_bytes, c.dram_write_bytes, "non_gemm.dram");
  const std::uint64_t dram = transfer_cycles(bytes, Bandwidth::from_double(cfg.dram_bytes_per_cycle));
  c.cycles = c.compute > dram ? c.compute : dram;
  c.stall = c.cycles - c.compute;
  // Every tensor passes the unit's buffer, written and read (2 x 8 bits a byte): unfused, the
  // bytes it moves through DRAM; fused, also the streams that stay on chip.
  const std::uint64_t passed = cfg.vector_fused ? checked_add(op.read_bytes(false), op.write_bytes(false) + op.save_bytes(),
                                                              "non_gemm.sram")
                                                : bytes;
  c.sram_bits = checked_mul(passed, 16, "non_gemm.sram");
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
      {"vector.div_cycles", ParamType::kInt, "7", "lane cycles", 1, 1000, nullptr,
       "lane cycles of one FP32 division (default: its Newton-Raphson sequence, 5 mul + 2 add; the energy stays the "
       "sequence's)",
       set_int(&SimConfig::vector_div_cycles)},
      {"vector.sqrt_cycles", ParamType::kInt, "11", "lane cycles", 1, 1000, nullptr,
       "lane cycles of one FP32 square root (default: its sequence, 9 mul + 2 add; the energy stays the sequence's)",
       set_int(&SimConfig::vector_sqrt_cycles)},
      {"vector.exp_cycles", ParamType::kInt, "15", "lane cycles", 1, 1000, nullptr,
       "lane cycles of one FP32 exponential (default: its sequence, 7 mul + 8 add; the energy stays the sequence's)",
       set_int(&SimConfig::vector_exp_cycles)},
      {"vector.fusion", ParamType::kChoice, "unfused", "", 0, 0, "unfused|fused",
       "unfused: every GEMM output is written to DRAM at the array's output width and the vector unit reads it back; "
       "fused: the vector unit takes fwd and bwd_data outputs on chip and writes only what the next GEMM reads (at "
       "its operand width) and the tensors the backward pass needs (docs/non-gemm.md#fusion)",
       [](const std::string& v, SimConfig& c) { c.vector_fused = v == "fused"; }},
  };
}

}  // namespace mfsim
