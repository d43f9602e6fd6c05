// The BF16 PE: bfloat16 operands, a BF16 multiply (the product of two 8-bit significands is
// exact in binary32) and an FP32 accumulate. Runs BF16 traces (--quant bf16), and FP8, INT8,
// INT4 and PoT4 traces exactly (their values are BF16 values).
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

// Exact products: multiply-then-add is the FP32 accumulate of each.
std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) { return make_float_engine(cfg, false); }

// Rounding binary32 to BF16 per element: one 32-bit integer add of the rounding bias.
QuantOps quant_ops(double act, double wgt, double err, int, int) {
  QuantOps q;
  q.compare32 = act + wgt + err;
  return q;
}

}  // namespace

const PeType& pe_type_bf16() {
  static const PeType t{
      "bf16", "BF16", "BF16 multiply, FP32 accumulate",
      "#8c564b", "bf16",
      /*order=*/10, /*operand_bits=*/16, FormatKind::kFloat, /*integer_acc=*/false, 0,
      {NumFormat::kBf16, NumFormat::kFp8E4M3, NumFormat::kFp8E5M2, NumFormat::kInt8, NumFormat::kInt4,
       NumFormat::kPot4},
      {{"bf16_mul", "BF16 multiplications (exact products)", "multiply", "bf16_mul"},
       {"bf16_acc_add", "FP32 accumulator additions", "accumulate", "fp32_add"}},
      {"bf16_add"}, false, count_every_op, make_engine, quant_ops};
  return t;
}

}  // namespace mfsim
