// The two-term shift-add PE: every product of the two-term policies (--policy act8-apotw,
// act8-apotwg) without a multiplier. One operand register holds an integer x (an INT8 value, or
// the integer image of a PoT4 or two-term value), the other a code: a sign and one (PoT4) or two
// (two-term, models/apot.h) 3-bit exponent codes. A product is a sign XOR and a barrel shift of
// |x| per term of the code; two shifted terms are summed in a 16-bit adder (|x| <= 128 and the
// code's magnitude <= 96: the sum fits 14 bits), and the product, signed, is added into the
// integer accumulator of pe.acc_bits (the RTL twin, sim/rtl/mfsim_pe_int.v mfsim_pe_shift2):
//   INT8 x PoT4, PoT4 x PoT4, PoT4 x two-term   one shift, one accumulator addition
//   INT8 x two-term, two-term x two-term        two shifts, a 16-bit term addition, one
//                                               accumulator addition
// Which operand is the code is a per-GEMM configuration (code_operand_is_b: the one with fewer
// terms), so the input multiplexers route it to the shifters whatever the dataflow. Not INT8 x
// INT8, which needs a multiplier. Product bound 127 x 96 = 12192.
#include <cstdlib>

#include "models/apot.h"
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

const PeType& pe_type_mfmac();

namespace {

struct Shift2Policy {
  struct Op {
    std::int16_t v;      // the integer (data), or the code's signed value
    std::uint8_t valid;  // the register holds data
    std::uint8_t code;   // v is a code (its terms are the shifter's amounts), not an integer
    std::int8_t hi, lo;  // code: the terms' shift amounts (0..6), -1 for no term
  };
  using Acc = std::int64_t;
  static constexpr Op kBubble{0, 0, 0, -1, -1};
  static constexpr FormatKind kHolds = FormatKind::kInt;
  static constexpr Op make(int v) { return Op{static_cast<std::int16_t>(v), 1, 0, -1, -1}; }
  static Op make_code(Pot4Code c) {
    return Op{static_cast<std::int16_t>(pot4_int(c)), 1, 1, static_cast<std::int8_t>(pot4_is_zero(c) ? -1 : pot4_mag(c) - 1), -1};
  }
  static Op make_apot(int v) {
    const ApotTerms t = apot_terms(v);
    return Op{static_cast<std::int16_t>(v), 1, 1, static_cast<std::int8_t>(t.hi - 1), static_cast<std::int8_t>(t.lo - 1)};
  }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) { return o.v; }

  // sign(x) XOR sign(p); |x| << hi, plus |x| << lo for a second term; 0 when p or x is 0.
  static std::int64_t product(Op x, Op p) {
    if (p.hi < 0) return 0;
    const std::int64_t m = std::abs(x.v);
    const std::int64_t sum = (m << p.hi) + (p.lo >= 0 ? m << p.lo : 0);
    return ((x.v < 0) != (p.v < 0)) ? -sum : sum;
  }

  using Pe = CodeOperandPe<Shift2Policy>;
};

constexpr std::int64_t kMaxTerm = std::int64_t{127} * 96;

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) {
  Shift2Policy::Pe pe;
  pe.spec = cfg.accumulator;
  return make_array_engine<Shift2Policy>(cfg, pe, kMaxTerm);
}

// Every pair of PoT4, INT8 and two-term operands except INT8 x INT8.
bool runs_pair(NumFormat a, NumFormat b) { return shift_terms(a) > 0 || shift_terms(b) > 0; }

// count_every_op counts each op once per executed product. A record whose code operand is
// two-term shifts twice and sums the terms (op 2 once per product); a one-term code neither
// (op 2 zero). Op 0, the XOR, counts the executed products.
void pair_ops(NumFormat a, NumFormat b, PeOpCounts& counts) {
  if (code_terms(a, b) == 2) {
    counts[1] += counts[0];
  } else {
    counts[2] = 0;
  }
}

// The PoT4 tensors' quantizers are ALS-POTQ's (as MF-MAC's); the INT8 tensors' the
// power-of-two-scaled integer quantizer; the two-term tensors' apot_quant_ops.
QuantOps quant_ops(double act, double wgt, double err, int wbc_iterations, int prc_candidates) {
  return pe_type_mfmac().quant_ops(act, wgt, err, wbc_iterations, prc_candidates);
}

PeType make_type() {
  PeType t{};
  t.name = "shift2";
  t.title = "Two-term shift-add";
  t.description = "two-term shift-add MAC: an integer shifted by each term of a PoT4 or two-term code, integer accumulate";
  t.color = "#17becf";
  t.training_quant = "als-potq";
  t.order = 46;
  t.operand_bits = 8;
  t.holds_as = FormatKind::kInt;
  t.integer_acc = true;
  t.max_product_term = kMaxTerm;
  t.holds = {NumFormat::kPot4, NumFormat::kInt8, NumFormat::kApot};
  t.ops = {{"shift2_xor", "1-bit sign XORs of two-term shift-add products", "xor", "xor"},
           {"shift2_shift", "barrel shifts of an 8-bit value by 0..6, one per term of the code operand", "shift", "shift8"},
           {"shift2_term_add", "16-bit additions of a two-term product's two shifted terms", "term_add", "int_add", 16},
           {"shift2_acc_add", "accumulator additions of products (pe.acc_bits wide)", "accumulate", "int_add"}};
  t.rows_required = false;
  t.count_ops = count_every_op;
  t.make_engine = make_engine;
  t.quant_ops = quant_ops;
  t.runs_pair = runs_pair;
  t.per_operand_registers = true;
  t.int8_quant_ops = int_pot2_quant_ops;
  t.apot_quant_ops = apot_quant_ops;
  t.pair_ops = pair_ops;
  t.op_units = {1, 2, 1, 1};  // one XOR, two shifters, the term adder, the accumulator adder
  return t;
}

}  // namespace

const PeType& pe_type_shift2() {
  static const PeType t = make_type();
  return t;
}

}  // namespace mfsim
