// The INT4 PE type (sim/pe/int4.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("int4: declaration: 4-bit operands, integer accumulation, holds INT4 only", "[unit]") {
  const PeType& t = pe_type("int4");
  CHECK(t.operand_bits == 4);
  CHECK(t.integer_acc);
  CHECK(t.max_product_term == 49);
  CHECK(t.can_hold(NumFormat::kInt4));
  CHECK_FALSE(t.can_hold(NumFormat::kPot4));  // PoT4's integer images reach 64
  CHECK_FALSE(t.can_hold(NumFormat::kInt8));
}

TEST_CASE("int4: a product costs a 4-bit multiply and an accumulator add", "[model]") {
  CHECK(test::per_product_pj("int4", "paper") == Approx(0.048 + 0.14));  // the paper's INT4 multiplier
  CHECK(test::per_product_pj("int4", "horowitz45") == Approx(0.05 + 0.1));
  CHECK(test::per_product_pj("int4", "aladdin45") == Approx(12.68 / 64 + 0.21));
}

TEST_CASE("int4: an INT4 training step replays bit for bit, also on the INT8 and FP32 arrays", "[smoke]") {
  test::replay_training_step("int4", {"int4", "int8", "fp32"});
}
