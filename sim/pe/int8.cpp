// The INT8 PE: symmetric INT8 operands, an 8 x 8-bit multiply and an integer accumulate of
// pe.acc_bits. Runs INT8 traces, and PoT4, INT4 and two-term traces exactly (their values are INT8
// values).
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) { return make_int_engine(cfg, NumFormat::kInt8); }

}  // namespace

const PeType& pe_type_int8() {
  static const PeType t{
      "int8", "INT8", "INT8 multiply-accumulate: 8 x 8-bit multiply, integer accumulate",
      "#1f77b4", "int8",
      /*order=*/30, /*operand_bits=*/8, FormatKind::kInt, /*integer_acc=*/true, max_product_term(NumFormat::kInt8),
      {NumFormat::kInt8, NumFormat::kInt4, NumFormat::kPot4, NumFormat::kApot},
      {{"int8_mul", "8 x 8-bit multiplications", "multiply", "int8_mul"},
       {"int8_add", "accumulator additions (pe.acc_bits wide)", "accumulate", "int_add"}},
      {}, true, count_every_op, make_engine, int_quant_ops};
  return t;
}

}  // namespace mfsim
