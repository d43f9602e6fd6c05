// A PE type: everything the rest of mfsim needs to know about one kind of processing element,
// declared in one file under sim/pe/ (docs/extending.md). The cycle model, the SystemC array,
// replay, the energy model, compare, sweep and the reports enumerate the registry (pe_types())
// instead of switching on a kind.
//
// A PE type declares: its name and title; its operand width and what an operand register holds
// (a PoT4 code, an integer or a binary32 value); its accumulator (integer of pe.acc_bits, or
// binary32); the bound on one product's magnitude; which trace formats its registers hold
// exactly; its per-product arithmetic actions (event counters) and the energy-table rows that
// price them; its engine (the register-level array with its PE arithmetic, sim/array_engine.h);
// and the quantizer operations of its training arithmetic (the energy model's quantization term).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/number_format.h"

namespace mfsim {

struct SimConfig;
struct EventCounts;
struct ParamSpec;
class ArrayEngine;

// Per-product arithmetic actions of one PE type, counted in EventCounts::pe_ops in the order the
// type declares them.
constexpr int kMaxPeOps = 4;
using PeOpCounts = std::array<std::uint64_t, kMaxPeOps>;

struct PeOp {
  const char* counter;      // event counter in reports ("mfmac_xor"), unique over all types
  const char* description;  // what one count is
  const char* action;       // the energy item's action ("xor", "multiply", "accumulate")
  const char* table_row;    // the energy-table row pricing it; "int_add" is priced at pe.acc_bits
  int bits = 0;             // an "int_add" of this width instead (0: pe.acc_bits)
};

// Quantizer operations of one GEMM record's tensors (docs/energy-accounting.md).
struct QuantOps {
  double compare32 = 0;  // magnitude comparisons (max search, rounding threshold, WBC, PRC)
  double exp_sub8 = 0;   // exponent subtractions (PoT code or power-of-two scale from the exponent)
  double fp32_add = 0;   // FP32 sums (WBC magnitude sums, PRC errors, INT rounding)
  double fp32_mul = 0;   // INT scaling x * qmax / max
  double rng16 = 0;      // 16-bit random numbers for stochastic rounding
  QuantOps& operator+=(const QuantOps& o) {
    compare32 += o.compare32;
    exp_sub8 += o.exp_sub8;
    fp32_add += o.fp32_add;
    fp32_mul += o.fp32_mul;
    rng16 += o.rng16;
    return *this;
  }
};

struct PeType {
  const char* name;            // array.kind value ("mfmac")
  const char* title;           // for tables and charts ("MF-MAC")
  const char* description;     // one line for --list-params and docs
  const char* color;           // chart colour (compare page, sweep plots)
  const char* training_quant;  // the training core's --quant whose traces it runs natively
  int order;                   // report order: the FP32 baseline first (0), then ascending
  int operand_bits;            // operand width in registers, SRAM and DRAM (per_operand_registers:
                               // SRAM and DRAM hold each operand at its own format's width)
  FormatKind holds_as;         // an operand register holds a PoT4 code, an integer, or a binary32 value
  bool integer_acc;            // integer accumulator of pe.acc_bits; else binary32
  std::int64_t max_product_term;  // largest |a*b| on the integer grid; 0 for binary32 PEs
  std::vector<NumFormat> holds;   // trace formats every value of which the registers hold exactly
  std::vector<PeOp> ops;          // at most kMaxPeOps
  // Energy-table rows a table may carry for variants of this type that the type itself does not
  // price (e.g. a narrow-format add for a PE that accumulates in FP32): known, not required.
  std::vector<const char*> optional_rows;
  // Whether every table must have the rows of `ops` (the three original types, which every
  // table has priced since the format's version 1). A newer type's rows are optional, so older
  // tables still load; pricing the type without them is one clear error naming the row.
  bool rows_required = false;
  // Counts of each op for `executed` products (every op once per product unless the type says).
  void (*count_ops)(const SimConfig& cfg, std::uint64_t executed, PeOpCounts& counts);
  std::unique_ptr<ArrayEngine> (*make_engine)(const SimConfig& cfg);
  // Quantizer operations of the training arithmetic for a record's tensors; null: none (FP32).
  QuantOps (*quant_ops)(double activations, double weights, double errors, int wbc_iterations,
                        int prc_candidates);
  // Parameters only this type uses (e.g. pe.fp32_fma), declared with it; null: none.
  std::vector<ParamSpec> (*params)() = nullptr;
  // Which pairs of operand formats (a, b) the PE runs exactly, when not every pair of held
  // formats (the shift PE holds PoT4 and INT8 values but has no multiplier for INT8 x INT8);
  // null: every pair of `holds`.
  bool (*runs_pair)(NumFormat a, NumFormat b) = nullptr;
  // The operand registers hold each operand in its own representation: a PoT4 operand as its
  // code, an integer operand as its integer (the shift PE; PoT4 x PoT4: A as its integer image).
  // Otherwise every operand is held as `holds_as`.
  bool per_operand_registers = false;
  // Runs GEMMs with finer scales (a trace record's scale_block): the aligned 64-bit accumulation
  // of models/scaled_gemm.h, bit for bit.
  bool finer_scales = false;
  // The quantizer operations of the tensors a trace holds in INT8 with a power-of-two scale (the
  // shift-add pair's INT8 operand), per element; null: counted as the others (quant_ops).
  QuantOps (*int8_quant_ops)(double activations, double weights, double errors) = nullptr;
  // The quantizer operations of the tensors a trace holds as two-term powers of two (apot), per
  // element; null: counted as the others (quant_ops).
  QuantOps (*apot_quant_ops)(double activations, double weights, double errors) = nullptr;
  // Op counts a record adjusts by its operand formats, given the counts of its executed products
  // (count_ops): the two-term PE's second shift, and its term add only when its code operand is
  // two-term.
  // Null: none. Replay applies it in value and timing mode alike.
  void (*pair_ops)(NumFormat a, NumFormat b, PeOpCounts& counts) = nullptr;
  // Hardware units of each op in one PE (the area model): 1 each unless the type says (the
  // two-term PE has two shifters).
  std::array<int, kMaxPeOps> op_units{1, 1, 1, 1};

  bool can_hold(NumFormat f) const;
  // Whether the PE computes a GEMM of `a` x `b` operands exactly (both held, and the pair run).
  bool runs_exactly(NumFormat a, NumFormat b) const;
  int op_index(const std::string& counter) const;  // -1 if not one of its ops
  std::uint64_t op_count(const EventCounts& e, const std::string& counter) const;  // 0 if not its op
};

// The shared engines (sim/array_engine.cpp): integer multiply-accumulate with pe.acc_bits
// accumulators, range-checked by the format's product bound (INT8, INT4); binary32 multiply-add,
// or FMA (FP32; BF16 and FP8, whose products are exact). A PE type with an arithmetic of its own
// makes its engine with make_array_engine<Policy> (sim/array_engine.h), as MF-MAC does.
std::unique_ptr<ArrayEngine> make_int_engine(const SimConfig& cfg, NumFormat format);
std::unique_ptr<ArrayEngine> make_float_engine(const SimConfig& cfg, bool fma);

// Every op once per executed product (the usual count_ops).
void count_every_op(const SimConfig& cfg, std::uint64_t executed, PeOpCounts& counts);

// The symmetric integer quantizer's operations (INT8, INT4): per element a max search, the
// scaling x * qmax / max, a rounding; one random number per error element.
QuantOps int_quant_ops(double activations, double weights, double errors, int wbc_iterations, int prc_candidates);

// The power-of-two-scaled integer quantizer's operations (the INT8 operands of the shift-add
// pair, int_pot2_nearest/_stochastic): per element a max search, the scaling (an exponent
// subtraction), a rounding comparison; stochastic rounding of errors adds a random number.
QuantOps int_pot2_quant_ops(double activations, double weights, double errors);

// Per-operand registers (PeType::per_operand_registers): the operand whose values are the
// shifter's amounts (a code) and the one that is shifted (an integer). A PoT4 value is one term, a
// two-term value two, an INT8 value none (always the integer); the code operand is the one with
// fewer terms (B on a tie), so an INT8 operand is never a code and a PoT4 one is preferred.
constexpr int shift_terms(NumFormat f) { return f == NumFormat::kPot4 ? 1 : f == NumFormat::kApot ? 2 : 0; }
constexpr bool code_operand_is_b(NumFormat a, NumFormat b) {
  return shift_terms(b) > 0 && (shift_terms(a) == 0 || shift_terms(b) <= shift_terms(a));
}
// Terms per product of a record on a per-operand PE: its code operand's (1 or 2).
constexpr int code_terms(NumFormat a, NumFormat b) { return shift_terms(code_operand_is_b(a, b) ? b : a); }

// The two-term quantizer's operations (apot_nearest, apot_stochastic), per element: a max
// search, the power-of-two scale (an exponent subtraction), the leading term from the exponent,
// the residual (an FP32 subtraction) and its leading term, two comparisons against the bracketing
// levels; stochastic rounding of errors adds a random number and its comparison.
QuantOps apot_quant_ops(double activations, double weights, double errors);

// The registry: every PE type under sim/pe/, in report order (FP32 first).
const std::vector<const PeType*>& pe_types();
const PeType* find_pe_type(const std::string& name);  // null if unknown
const PeType& pe_type(const std::string& name);       // throws std::invalid_argument if unknown
std::string pe_type_names();                          // "fp32|bf16|...", in report order

}  // namespace mfsim
