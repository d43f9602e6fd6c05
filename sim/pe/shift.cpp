// The shift-add PE: INT8 x PoT4 products without a multiplier. A PoT4 code (sign s, magnitude
// code m) is +-2^(m-1) on the integer grid, so its product with an INT8 value x is a sign XOR
// and a barrel shift of |x| by m - 1 (0..6), accumulated in an integer of pe.acc_bits. Runs the
// shift-add pair of the training core's INT8 policies (--policy int8-errors and the others: one
// operand PoT4, the other INT8 with a power-of-two scale, in either orientation) and PoT4 x PoT4
// records (a PoT4 value, at most 64, fits the integer register: exact); not INT8 x INT8, which
// needs a multiplier. Product bound 127 x 64 = 8128.
//
// Operand registers: each of the two operand registers (the west-to-east and the north-to-south or
// stationary one) carries its operand as it is, with a tag bit: the INT8 operand as its 8-bit
// integer (the shifter's data input), the PoT4 operand as its 4-bit code (the shifter's amount
// and the sign). Which of A and B is which is a per-GEMM configuration (a record's formats), so
// the PE's input multiplexers route the tagged integer to the shifter's data and the code to its
// amount whatever the dataflow; a record whose A is PoT4 and B INT8 computes the same products as
// the reverse. Of a PoT4 x PoT4 record, A is held as its integer image (+-2^(m-1)) and B as its code.
#include <cstdlib>

#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

const PeType& pe_type_mfmac();

namespace {

struct ShiftPolicy {
  struct Op {
    std::int16_t v;      // the integer, or (code = 1) the PoT4 code
    std::uint8_t valid;  // the register holds data
    std::uint8_t code;   // v is a PoT4 code (the shifter's amount), not an integer (its data)
  };
  using Acc = std::int64_t;
  static constexpr Op kBubble{0, 0, 0};
  static constexpr FormatKind kHolds = FormatKind::kInt;
  static constexpr Op make(int v) { return Op{static_cast<std::int16_t>(v), 1, 0}; }
  static constexpr Op make_code(Pot4Code c) { return Op{static_cast<std::int16_t>(c & 0xF), 1, 1}; }
  static unsigned valid(Op o) { return o.valid; }
  static double value(Op o) { return o.code != 0 ? pot4_int(static_cast<Pot4Code>(o.v)) : o.v; }

  // sign(x) XOR s; |x| << (m - 1); zero when m = 0 or x = 0 (the shifter's output is 0).
  static std::int64_t product(Op x, Op p) {
    const auto c = static_cast<Pot4Code>(p.v);
    if (pot4_is_zero(c)) return 0;
    const std::int64_t shifted = std::int64_t{std::abs(x.v)} << (pot4_mag(c) - 1);
    return ((x.v < 0) != pot4_negative(c)) ? -shifted : shifted;
  }

  using Pe = CodeOperandPe<ShiftPolicy>;
};

constexpr std::int64_t kMaxTerm = std::int64_t{127} * 64;

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) {
  ShiftPolicy::Pe pe;
  pe.spec = cfg.accumulator;
  return with_finer_scales(make_array_engine<ShiftPolicy>(cfg, pe, kMaxTerm), cfg);
}

// PoT4 x PoT4 and the shift-add pair (either orientation); not INT8 x INT8.
bool runs_pair(NumFormat a, NumFormat b) { return a == NumFormat::kPot4 || b == NumFormat::kPot4; }

// The PoT4 tensors' quantizers are ALS-POTQ's (as MF-MAC's); the INT8 tensors' (int8_quant_ops)
// the power-of-two-scaled integer quantizer.
QuantOps quant_ops(double act, double wgt, double err, int wbc_iterations, int prc_candidates) {
  return pe_type_mfmac().quant_ops(act, wgt, err, wbc_iterations, prc_candidates);
}

PeType make_type() {
  PeType t{};
  t.name = "shift";
  t.title = "Shift-add";
  t.description = "shift-add MAC: INT8 x PoT4 as sign XOR + barrel shift of the INT8 value, integer accumulate";
  t.color = "#e377c2";
  t.training_quant = "als-potq";
  t.order = 45;
  t.operand_bits = 8;
  t.holds_as = FormatKind::kInt;
  t.integer_acc = true;
  t.max_product_term = kMaxTerm;
  t.holds = {NumFormat::kPot4, NumFormat::kInt8};
  t.ops = {{"shift_xor", "1-bit sign XORs of shift-add products", "xor", "xor"},
           {"shift_shift", "barrel shifts of an 8-bit value by 0..6 (the PoT4 exponent)", "shift", "shift8"},
           {"shift_acc_add", "accumulator additions of shifted values (pe.acc_bits wide)", "accumulate", "int_add"}};
  t.rows_required = false;
  t.count_ops = count_every_op;
  t.make_engine = make_engine;
  t.quant_ops = quant_ops;
  t.runs_pair = runs_pair;
  t.per_operand_registers = true;
  t.finer_scales = true;
  t.int8_quant_ops = int_pot2_quant_ops;
  return t;
}

}  // namespace

const PeType& pe_type_shift() {
  static const PeType t = make_type();
  return t;
}

}  // namespace mfsim
