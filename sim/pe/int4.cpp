// The INT4 PE: symmetric INT4 operands in [-7, 7], a 4 x 4-bit multiply and an integer
// accumulate of pe.acc_bits. Runs INT4 traces (--quant int4): the like-for-like 4-bit baseline
// for MF-MAC's 4-bit PoT4 operands.
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) { return make_int_engine(cfg, NumFormat::kInt4); }

}  // namespace

const PeType& pe_type_int4() {
  static const PeType t{
      "int4", "INT4", "INT4 multiply-accumulate: 4 x 4-bit multiply, integer accumulate",
      "#17becf", "int4",
      /*order=*/40, /*operand_bits=*/4, FormatKind::kInt, /*integer_acc=*/true, max_product_term(NumFormat::kInt4),
      {NumFormat::kInt4},
      {{"int4_mul", "4 x 4-bit multiplications", "multiply", "int4_mul"},
       {"int4_acc_add", "accumulator additions (pe.acc_bits wide)", "accumulate", "int_add"}},
      {}, false, count_every_op, make_engine, int_quant_ops};
  return t;
}

}  // namespace mfsim
