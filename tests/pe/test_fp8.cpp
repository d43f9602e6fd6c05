// The FP8 PE type (sim/pe/fp8.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("fp8: declaration: 8-bit E4M3 and E5M2 operands, FP32 accumulation", "[unit]") {
  const PeType& t = pe_type("fp8");
  CHECK(t.operand_bits == 8);
  CHECK_FALSE(t.integer_acc);
  for (NumFormat f : {NumFormat::kFp8E4M3, NumFormat::kFp8E5M2, NumFormat::kInt4, NumFormat::kPot4}) {
    CHECK(t.can_hold(f));
  }
  CHECK_FALSE(t.can_hold(NumFormat::kInt8));  // 127 needs 7 significand bits
  CHECK_FALSE(t.can_hold(NumFormat::kBf16));
}

TEST_CASE("fp8: a product costs an FP8 multiply and an FP32 add", "[model]") {
  CHECK(test::per_product_pj("fp8", "paper") == Approx(0.23 + 0.9));  // the paper's FP8 multiplier
  CHECK(test::per_product_pj("fp8", "horowitz45") == Approx(1.1 * 16 / 121 + 0.9).epsilon(1e-5));
}

TEST_CASE("fp8: an FP8 training step replays bit for bit, also on the FP32 array", "[smoke]") {
  test::replay_training_step("fp8", {"fp8", "fp32"});
}
