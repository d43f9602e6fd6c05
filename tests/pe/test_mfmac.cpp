// The MF-MAC PE type (sim/pe/mfmac.cpp).
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("mfmac: declaration: 4-bit PoT4 operands, integer accumulation, holds PoT4 only", "[unit]") {
  const PeType& t = pe_type("mfmac");
  CHECK(t.operand_bits == 4);
  CHECK(t.holds_as == FormatKind::kPot4);
  CHECK(t.max_product_term == 4096);  // the one-hot term 2^12
  CHECK(t.holds == std::vector<NumFormat>{NumFormat::kPot4});
}

TEST_CASE("mfmac: a product costs an XOR, an exponent add, a decode and an accumulate", "[model]") {
  CHECK(test::per_product_pj("mfmac", "paper") == Approx(0.00375 + 0.015 + 0.081 + 0.14));
}

TEST_CASE("mfmac: an ALS-POTQ training step replays bit for bit, also on INT8 and FP32 arrays", "[smoke]") {
  test::replay_training_step("als-potq", {"mfmac", "int8", "fp32"});
}
