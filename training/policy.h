// ALS-POTQ precision policies (docs/method.md section "Policies"): one name selects the whole
// quantization recipe of a run -- which operand of which layers is INT8 (with a power-of-two
// scale) instead of PoT4, which operands PRC clips, whether WBC runs -- so a result can be
// reproduced by `mfsim train --quant als-potq --policy NAME`. Single options override a
// policy's parts (--int8-operands, --prc-operands, --no-prc, --no-wbc, --first-last).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mfsim {

struct TrainOptions;

struct Policy {
  const char* name;
  const char* description;
  const char* int8_operands;  // --int8-operands spec ("" for none)
  const char* prc_operands;   // --prc-operands spec ("none": without PRC)
  bool wbc;
  const char* first_last;     // potq | int8 (INT8 x INT8 edge layers: not multiplication-free)
  const char* scales;         // --scales spec ("" for per-tensor scales)
  const char* alias_of;       // "best" names a measured policy; null otherwise
  bool apot_weights = false;  // --apot-weights: two-term power-of-two weights
  bool apot_errors = false;   // --apot-errors: two-term power-of-two errors
};

// Every policy, in listing order ("best" last, naming the policy it stands for).
const std::vector<Policy>& policies();
// The policy called `name` (best resolves to its target); throws InputError naming the choices.
const Policy& find_policy(const std::string& name);
std::string policy_names();  // "strict|...|best"

// Parses an --int8-operands spec into per-class masks (bit 0 A, 1 W, 2 G; classes of
// training/nn.h LayerClass): comma-separated items OPERAND[@CLASS], OPERAND one of a, w, g and
// CLASS one of all (the default), first, hidden, last, attention, edges (first and last).
// Throws InputError (one line naming `option` and the item) on a bad item, a repeated one, or
// a class that would get two INT8 operands (their products would need multipliers).
void parse_int8_operands(const std::string& spec, const std::string& option, std::uint8_t masks[4]);
// The canonical spec of masks ("" when none): operands in order a, w, g; one INT8 in every class
// is written without @CLASS, else one item per class, e.g. "a@first,g@hidden,g@last".
std::string int8_operands_spec(const std::uint8_t masks[4]);

// Parses a --prc-operands spec ("none" or a comma-separated subset of a, w, g) into roles (A, W, G);
// throws InputError naming `option` and the item.
void parse_prc_operands(const std::string& ops, const std::string& option, bool roles[3]);

// Parses a --scales spec into grains by slot (A, W, G; StepContext::scale_grain): comma-separated
// OPERAND=GRAIN with OPERAND a, w or g and GRAIN tensor, outer (per row of A and G, per output
// channel of W, in each GEMM), or block16, block32, block64 (blocks along each GEMM's reduction
// dimension). Throws InputError naming `option` and the item.
void parse_scales(const std::string& spec, const std::string& option, int grains[3]);
std::string scales_spec(const int grains[3]);  // canonical, "tensor" when all are per tensor

// Applies a policy's parts to options; `keep` names parts the command line set explicitly
// (int8-operands, prc-operands, no-prc, no-wbc, first-last, scales, apot-weights, apot-errors), which stay as given.
void apply_policy(const Policy& p, TrainOptions& opt, const std::vector<std::string>& keep);

// Whether every product of every linear layer has a PoT4 operand (a shift or an exponent add):
// ALS-POTQ with no INT8 x INT8 edge layers and at most one INT8 operand per layer class.
bool multiplication_free(const TrainOptions& opt);

}  // namespace mfsim
