// The two-term shift-add PE type (sim/pe/shift2.cpp).
#include "models/apot.h"
#include "tests/pe/pe_checks.h"

using namespace mfsim;

TEST_CASE("shift2: declaration: runs every pair of PoT4, INT8 and two-term operands but INT8 x INT8", "[unit]") {
  const PeType& t = pe_type("shift2");
  CHECK(t.operand_bits == 8);
  CHECK(t.integer_acc);
  CHECK(t.per_operand_registers);
  CHECK(t.max_product_term == 127 * 96);
  CHECK(t.max_product_term == max_product_term(NumFormat::kApot, NumFormat::kInt8));
  const NumFormat all[] = {NumFormat::kPot4, NumFormat::kInt8, NumFormat::kApot};
  for (NumFormat a : all) {
    for (NumFormat b : all) {
      INFO(to_string(a) << " x " << to_string(b));
      CHECK(t.runs_exactly(a, b) == !(a == NumFormat::kInt8 && b == NumFormat::kInt8));
    }
  }
  CHECK_FALSE(t.runs_exactly(NumFormat::kInt4, NumFormat::kInt4));
  CHECK_FALSE(t.runs_exactly(NumFormat::kFp32, NumFormat::kFp32));
  // The shift PE and MF-MAC hold no two-term value; INT8's multiplier runs them exactly.
  CHECK_FALSE(pe_type("shift").runs_exactly(NumFormat::kInt8, NumFormat::kApot));
  CHECK_FALSE(pe_type("mfmac").runs_exactly(NumFormat::kApot, NumFormat::kApot));
  CHECK(pe_type("int8").runs_exactly(NumFormat::kInt8, NumFormat::kApot));
  CHECK(pe_type("int8").runs_exactly(NumFormat::kApot, NumFormat::kPot4));
}

TEST_CASE("shift2: the code operand is the one with fewer terms, never INT8", "[unit]") {
  using F = NumFormat;
  CHECK(code_operand_is_b(F::kInt8, F::kApot));
  CHECK_FALSE(code_operand_is_b(F::kApot, F::kInt8));
  CHECK(code_operand_is_b(F::kApot, F::kPot4));   // one term, not two
  CHECK_FALSE(code_operand_is_b(F::kPot4, F::kApot));
  CHECK(code_operand_is_b(F::kApot, F::kApot));   // a tie: B
  CHECK(code_operand_is_b(F::kPot4, F::kPot4));
  CHECK(code_terms(F::kInt8, F::kApot) == 2);
  CHECK(code_terms(F::kApot, F::kApot) == 2);
  CHECK(code_terms(F::kPot4, F::kApot) == 1);
  CHECK(code_terms(F::kInt8, F::kPot4) == 1);
  // A two-term code: the second shift once more per executed product and the term add once; a
  // one-term code: no term add. The XOR and the accumulator add stay one per product.
  const PeType& t = pe_type("shift2");
  PeOpCounts c{5, 5, 5, 5};
  t.pair_ops(F::kApot, F::kInt8, c);
  CHECK(c == PeOpCounts{5, 10, 5, 5});
  PeOpCounts d{5, 5, 5, 5};
  t.pair_ops(F::kApot, F::kPot4, d);
  CHECK(d == PeOpCounts{5, 5, 0, 5});
}

TEST_CASE("shift2: two-term levels and their exponent codes", "[unit]") {
  int levels = 0;
  for (int v = -130; v <= 130; ++v) {
    const unsigned a = static_cast<unsigned>(v < 0 ? -v : v);
    int bits = 0;
    for (unsigned x = a; x != 0; x >>= 1) bits += static_cast<int>(x & 1U);
    INFO(v);
    CHECK(apot_level(v) == (a <= 96 && bits <= 2));
    if (!apot_level(v)) continue;
    levels += v >= 0 ? 1 : 0;
    const ApotTerms t = apot_terms(v);
    const int back = (t.hi > 0 ? 1 << (t.hi - 1) : 0) + (t.lo > 0 ? 1 << (t.lo - 1) : 0);
    CHECK(back == static_cast<int>(a));
    CHECK((t.hi > t.lo || (t.hi == 0 && t.lo == 0)));
    CHECK(t.hi <= 7);
  }
  CHECK(levels == 29);
}

TEST_CASE("shift2: a product costs a sign XOR, a shift per term, a 16-bit term add for two terms, an accumulator add",
          "[model]") {
  // A one-term code (PoT4) costs what the shift PE's product does; a two-term code a second
  // shift and the 16-bit add of the two terms (pair_ops, per record), as the RTL twin computes it.
  const auto one = std::make_pair(NumFormat::kInt8, NumFormat::kPot4);
  const auto two = std::make_pair(NumFormat::kInt8, NumFormat::kApot);
  CHECK(test::per_product_pj("shift2", "paper", one) == Approx(test::per_product_pj("shift", "paper")));
  CHECK(test::per_product_pj("shift2", "paper", one) == Approx(0.00375 + 0.162 + 0.14));
  CHECK(test::per_product_pj("shift2", "paper", two) == Approx(0.00375 + 2 * 0.162 + 0.14 * 16 / 32 + 0.14));
  CHECK(test::per_product_pj("shift2", "paper", {NumFormat::kApot, NumFormat::kApot}) ==
        Approx(test::per_product_pj("shift2", "paper", two)));
  CHECK(test::per_product_pj("shift2", "paper", {NumFormat::kPot4, NumFormat::kApot}) ==
        Approx(test::per_product_pj("shift2", "paper", one)));
  const PeType& t = pe_type("shift2");
  REQUIRE(t.apot_quant_ops != nullptr);
  const QuantOps q = t.apot_quant_ops(10, 20, 30);
  CHECK(q.fp32_mul == 0);
  CHECK(q.compare32 == 3 * 60 + 30);
  CHECK(q.exp_sub8 == 3 * 60);
  CHECK(q.fp32_add == 60);
  CHECK(q.rng16 == 30);
}

TEST_CASE("shift2: a two-term training step (act8-apotwg) replays bit for bit, also on INT8", "[smoke]") {
  test::replay_training_step("als-potq --policy act8-apotwg", {"shift2", "int8"});
  test::replay_training_step("als-potq --policy act8-apotw", {"shift2"});
}
