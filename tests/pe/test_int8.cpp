// The INT8 PE type (sim/pe/int8.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("int8: declaration: 8-bit operands, integer accumulation, holds INT8, INT4 and PoT4", "[unit]") {
  const PeType& t = pe_type("int8");
  CHECK(t.operand_bits == 8);
  CHECK(t.integer_acc);
  CHECK(t.max_product_term == 127 * 127);
  CHECK(t.can_hold(NumFormat::kInt8));
  CHECK(t.can_hold(NumFormat::kInt4));
  CHECK(t.can_hold(NumFormat::kPot4));
  CHECK_FALSE(t.can_hold(NumFormat::kFp8E4M3));
  CHECK_FALSE(t.can_hold(NumFormat::kFp32));
}

TEST_CASE("int8: a product costs an 8-bit multiply and an accumulator add", "[model]") {
  CHECK(test::per_product_pj("int8", "paper") == Approx(0.19 + 0.14));
  CHECK(test::per_product_pj("int8", "horowitz45") == Approx(0.2 + 0.1));
}

TEST_CASE("int8: INT8 and INT4 training steps replay bit for bit", "[smoke]") {
  test::replay_training_step("int8", {"int8"});
}
