// The shift-add PE type (sim/pe/shift.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("shift: declaration: integer accumulation, runs PoT4 x INT8 either way and PoT4 x PoT4, not INT8 x INT8",
          "[unit]") {
  const PeType& t = pe_type("shift");
  CHECK(t.operand_bits == 8);
  CHECK(t.integer_acc);
  CHECK(t.per_operand_registers);
  CHECK(t.max_product_term == 127 * 64);
  CHECK(t.max_product_term == max_product_term(NumFormat::kPot4, NumFormat::kInt8));
  CHECK(t.runs_exactly(NumFormat::kPot4, NumFormat::kInt8));
  CHECK(t.runs_exactly(NumFormat::kInt8, NumFormat::kPot4));
  CHECK(t.runs_exactly(NumFormat::kPot4, NumFormat::kPot4));
  CHECK_FALSE(t.runs_exactly(NumFormat::kInt8, NumFormat::kInt8));  // needs a multiplier
  CHECK_FALSE(t.runs_exactly(NumFormat::kInt4, NumFormat::kInt4));
  CHECK_FALSE(t.runs_exactly(NumFormat::kFp32, NumFormat::kFp32));
  // The other arrays and the pair: INT8 (an 8 x 8 multiplier) and the float arrays that hold
  // both run it; MF-MAC and INT4 do not.
  CHECK(pe_type("int8").runs_exactly(NumFormat::kPot4, NumFormat::kInt8));
  CHECK(pe_type("int8").runs_exactly(NumFormat::kInt8, NumFormat::kPot4));
  CHECK(pe_type("fp32").runs_exactly(NumFormat::kInt8, NumFormat::kPot4));
  CHECK_FALSE(pe_type("mfmac").runs_exactly(NumFormat::kPot4, NumFormat::kInt8));
  CHECK_FALSE(pe_type("int4").runs_exactly(NumFormat::kPot4, NumFormat::kInt8));
  CHECK_FALSE(pe_type("fp8").runs_exactly(NumFormat::kPot4, NumFormat::kInt8));
}

TEST_CASE("shift: a product costs a sign XOR, an 8-bit shift and an accumulator add", "[model]") {
  CHECK(test::per_product_pj("shift", "paper") == Approx(0.00375 + 0.162 + 0.14));
  CHECK(test::per_product_pj("shift", "horowitz45") == Approx(0.00375 + 0.09 + 0.1));
  CHECK(test::per_product_pj("shift", "aladdin45") == Approx(0.0065625 + 0.10425 + 0.21));
  // Between MF-MAC (no shift of an 8-bit value) and INT8 (a multiplier) under the paper's table.
  CHECK(test::per_product_pj("shift", "paper") < test::per_product_pj("int8", "paper"));
  CHECK(test::per_product_pj("shift", "paper") > test::per_product_pj("mfmac", "paper"));
}

TEST_CASE("shift: the INT8 operands' quantizer is the power-of-two integer one (no FP32 multiply)", "[unit]") {
  const PeType& t = pe_type("shift");
  REQUIRE(t.int8_quant_ops != nullptr);
  const QuantOps q = t.int8_quant_ops(10, 20, 30);
  CHECK(q.fp32_mul == 0);
  CHECK(q.compare32 == 2 * 60);  // max search and rounding
  CHECK(q.exp_sub8 == 60);       // scaling by 2^-s
  CHECK(q.rng16 == 30);          // stochastic rounding of the errors
  // PoT4 tensors: ALS-POTQ's, as MF-MAC's.
  const QuantOps p = t.quant_ops(10, 20, 30, 8, 3), m = pe_type("mfmac").quant_ops(10, 20, 30, 8, 3);
  CHECK(p.compare32 == m.compare32);
  CHECK(p.exp_sub8 == m.exp_sub8);
  CHECK(p.fp32_add == m.fp32_add);
  CHECK(p.rng16 == m.rng16);
}

TEST_CASE("shift: an ALS-POTQ training step (PoT4 x PoT4) replays bit for bit", "[smoke]") {
  test::replay_training_step("als-potq", {"shift"});
}
