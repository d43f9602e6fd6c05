// The FP8 PE of the hybrid FP8 scheme: E4M3 (activations, weights) and E5M2 (errors) operands,
// an FP8 multiply (the product of a 4-bit and a 3-bit significand is exact in binary32) and an
// FP32 accumulate. Runs FP8 traces (--quant fp8), and INT4 and PoT4 traces exactly.
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

// Exact products: multiply-then-add is the FP32 accumulate of each.
std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) { return make_float_engine(cfg, false); }

// The per-tensor power-of-two scale and the rounding, per element: a max search (a comparison),
// the scaling (an exponent subtraction) and the rounding (a comparison against the half step).
QuantOps quant_ops(double act, double wgt, double err, int, int) {
  QuantOps q;
  const double all = act + wgt + err;
  q.compare32 = 2 * all;
  q.exp_sub8 = all;
  return q;
}

}  // namespace

const PeType& pe_type_fp8() {
  static const PeType t{
      "fp8", "FP8", "hybrid FP8 (E4M3 / E5M2) multiply, FP32 accumulate",
      "#9467bd", "fp8",
      /*order=*/20, /*operand_bits=*/8, FormatKind::kFloat, /*integer_acc=*/false, 0,
      {NumFormat::kFp8E4M3, NumFormat::kFp8E5M2, NumFormat::kInt4, NumFormat::kPot4},
      {{"fp8_mul", "FP8 multiplications (exact products)", "multiply", "fp8_mul"},
       {"fp8_acc_add", "FP32 accumulator additions", "accumulate", "fp32_add"}},
      {"fp8_add"}, false, count_every_op, make_engine, quant_ops};
  return t;
}

}  // namespace mfsim
