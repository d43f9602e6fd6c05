// The BF16 PE type (sim/pe/bf16.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("bf16: declaration: 16-bit operands, FP32 accumulation, holds the narrower formats", "[unit]") {
  const PeType& t = pe_type("bf16");
  CHECK(t.operand_bits == 16);
  CHECK_FALSE(t.integer_acc);
  for (NumFormat f : {NumFormat::kBf16, NumFormat::kFp8E4M3, NumFormat::kFp8E5M2, NumFormat::kInt8,
                      NumFormat::kInt4, NumFormat::kPot4}) {
    CHECK(t.can_hold(f));
  }
  CHECK_FALSE(t.can_hold(NumFormat::kFp32));
}

TEST_CASE("bf16: a product costs a BF16 multiply and an FP32 add", "[model]") {
  CHECK(test::per_product_pj("bf16", "paper") == Approx(1.1 * 64 / 121 + 0.9).epsilon(1e-6));
  CHECK(test::per_product_pj("bf16", "aladdin45") == Approx(35.3 / 9 + 16.68));
}

TEST_CASE("bf16: BF16 and FP8 training steps replay bit for bit", "[smoke]") {
  test::replay_training_step("bf16", {"bf16", "fp32"});
  test::replay_training_step("fp8", {"bf16"});
}
