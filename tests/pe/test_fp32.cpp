// The FP32 PE type (sim/pe/fp32.cpp), the baseline.
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("fp32: declaration: 32-bit operands, binary32 accumulation, holds every format", "[unit]") {
  const PeType& t = pe_type("fp32");
  CHECK(t.order == 0);  // the baseline comes first in compare and sweep reports
  CHECK(pe_types().front() == &t);
  CHECK(t.operand_bits == 32);
  CHECK_FALSE(t.integer_acc);
  for (int f = 0; f < kNumFormats; ++f) CHECK(t.can_hold(static_cast<NumFormat>(f)));
  CHECK(t.quant_ops == nullptr);  // FP32 training quantizes nothing
}

TEST_CASE("fp32: a product costs a multiply and an add, or one FMA", "[model]") {
  CHECK(test::per_product_pj("fp32", "paper") == Approx(3.7 + 0.9));
  CHECK(test::per_product_pj("fp32", "aladdin45") == Approx(35.3 + 16.68));
  SimConfig cfg;
  cfg.array = &pe_type("fp32");
  cfg.fp32_fma = true;
  PeOpCounts ops{};
  cfg.array->count_ops(cfg, 5, ops);
  CHECK(ops[static_cast<std::size_t>(cfg.array->op_index("fp32_fma"))] == 5);
  CHECK(ops[static_cast<std::size_t>(cfg.array->op_index("fp32_mul"))] == 0);
}

TEST_CASE("fp32: an FP32 training step replays bit for bit", "[smoke]") {
  test::replay_training_step("fp32", {"fp32"});
}
