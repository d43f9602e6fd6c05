// The MF-MAC PE (the paper's multiplication-free MAC): PoT4 operands (sign and 3-bit exponent
// code), a 1-bit sign XOR, a 3-bit + 3-bit exponent add, a decode of the exponent sum to a
// one-hot term and an integer accumulate of pe.acc_bits. Runs ALS-POTQ traces.
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) {
  MfMacPolicy::Pe pe;
  pe.spec = cfg.accumulator;
  return with_finer_scales(make_array_engine<MfMacPolicy>(cfg, pe, max_product_term(NumFormat::kPot4)), cfg);
}

// ALS-POTQ's quantizers per element (docs/energy-accounting.md).
QuantOps quant_ops(double act, double wgt, double err, int wbc_iterations, int prc_candidates) {
  QuantOps q;
  const double all = act + wgt + err;
  // ALS scale: one comparison per element (max |x|). Rounding: the mantissa against the
  // threshold (a comparison) and the PoT code from the exponent (a small subtraction).
  q.compare32 += all * 2;
  q.exp_sub8 += all;
  q.rng16 += err;      // stochastic rounding of the errors
  q.compare32 += err;  // ... against the random number
  // WBC: bisection over t, each iteration re-rounds and sums |Q(w)|; plus sum |w| once.
  q.compare32 += wgt * wbc_iterations;
  q.fp32_add += wgt * (wbc_iterations + 1);
  // PRC: each candidate offset re-quantizes and accumulates |x - Q(x)|.
  q.compare32 += all * prc_candidates;
  q.exp_sub8 += all * prc_candidates;
  q.fp32_add += all * prc_candidates * 2;
  return q;
}

PeType make_type() {
  PeType t{
      "mfmac", "MF-MAC", "multiplication-free MAC: PoT4 operands, XOR + exponent add + one-hot accumulate",
      "#d62728", "als-potq",
      /*order=*/50, /*operand_bits=*/4, FormatKind::kPot4, /*integer_acc=*/true, max_product_term(NumFormat::kPot4),
      {NumFormat::kPot4},
      {{"mfmac_xor", "1-bit sign XORs of MF-MAC products", "xor", "xor"},
       {"mfmac_exp_add", "3-bit + 3-bit exponent additions (the INT4 adds) of MF-MAC products", "exponent_add",
        "int4_add"},
       {"mfmac_decode", "exponent-to-one-hot decodes", "onehot_decode", "onehot_decode"},
       {"mfmac_acc_add", "accumulator additions of one-hot terms (pe.acc_bits wide)", "accumulate", "int_add"}},
      {}, true, count_every_op, make_engine, quant_ops};
  t.finer_scales = true;
  return t;
}

}  // namespace

const PeType& pe_type_mfmac() {
  static const PeType t = make_type();
  return t;
}

}  // namespace mfsim
