#include "training/policy.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "training/nn.h"
#include "training/trainer.h"

namespace mfsim {

namespace {

// Calls item(text) for every comma-separated item of `spec`, in order (an empty item included).
template <class Item>
void for_each_item(const std::string& spec, Item item) {
  std::size_t pos = 0;
  while (true) {
    const std::size_t comma = spec.find(',', pos);
    item(spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) return;
    pos = comma + 1;
  }
}

// The operand a letter names: a 0, w 1, g 2 (the roles' order); -1 for anything else.
int operand_index(const std::string& letter) { return letter == "a" ? 0 : letter == "w" ? 1 : letter == "g" ? 2 : -1; }

}  // namespace

void parse_prc_operands(const std::string& ops, const std::string& option, bool roles[3]) {
  for (int r = 0; r < 3; ++r) roles[r] = false;
  if (ops == "none") return;
  for_each_item(ops, [&](const std::string& item) {
    const int r = operand_index(item);
    if (r < 0 || roles[r]) {
      throw InputError(fmt::format("{}: {} \"{}\" in \"{}\"; expected none or a comma-separated subset of a,w,g", option,
                                   r < 0 ? "unknown operand" : "repeated operand", item, ops));
    }
    roles[r] = true;
  });
}

const std::vector<Policy>& policies() {
  static const std::vector<Policy> p = {
      {"strict", "every operand PoT4 with a per-tensor scale (the paper's text read literally); PRC on A and W",
       "", "a,w", true, "potq", "", nullptr},
      {"strict-prc-all", "strict with PRC on A, W and G (the project's first reading; clipping G costs accuracy)", "",
       "a,w,g", true, "potq", "", nullptr},
      {"int8-input", "strict, but the first layer's input (the data) in INT8: its products are shifts", "a@first",
       "a,w", true, "potq", "", nullptr},
      {"int8-errors", "the errors G of every layer in INT8 (power-of-two scale), A and W PoT4: backward products are shifts",
       "g", "a,w", true, "potq", "", nullptr},
      {"int8-activations",
       "the activations A of every layer in INT8 (power-of-two scale; attention: Q and softmax(S)), W and G PoT4: "
       "forward and weight-gradient products are shifts",
       "a", "a,w", true, "potq", "", nullptr},
      {"int8-weights", "the weights W of every layer in INT8 (power-of-two scale; attention: K and V), A and G PoT4", "w",
       "a,w", true, "potq", "", nullptr},
      {"outer-scales", "strict with a scale per row of A and G and per output channel of W in each GEMM (exponent adds per output)",
       "", "a,w", true, "potq", "a=outer,w=outer,g=outer", nullptr},
      {"block32-scales", "strict with a scale per block of 32 elements along each GEMM's reduction dimension (MX-style)", "",
       "a,w", true, "potq", "a=block32,w=block32,g=block32", nullptr},
      {"act8-apotw",
       "int8-activations with two-term power-of-two weights (2^i + 2^j, per-tensor scale): forward products two shifts "
       "and an add, backward-data products two exponent adds",
       "a", "a,w", false, "potq", "", nullptr, true},
      {"act8-apotwg",
       "int8-activations with two-term power-of-two weights and errors: forward and weight-gradient products shifts "
       "and adds, backward-data products exponent adds",
       "a", "a,w", false, "potq", "", nullptr, true, true},
      {"edges-int8", "strict with the first and last layer entirely INT8 (INT8 x INT8 products: NOT multiplication-free)",
       "", "a,w", true, "int8", "", nullptr},
      {"best", "the best multiplication-free policy measured (docs/results-policies.md)", "", "", true, "potq", "",
       "act8-apotwg"},
  };
  return p;
}

std::string policy_names() {
  std::string s;
  for (const auto& p : policies()) s += (s.empty() ? "" : "|") + std::string(p.name);
  return s;
}

const Policy& find_policy(const std::string& name) {
  for (const auto& p : policies()) {
    if (name == p.name) return p.alias_of != nullptr ? find_policy(p.alias_of) : p;
  }
  throw InputError(fmt::format("train: --policy: unknown policy \"{}\"; expected {} (see --list-policies)", name,
                               policy_names()));
}

void parse_int8_operands(const std::string& spec, const std::string& option, std::uint8_t masks[4]) {
  for (int c = 0; c < kLayerClasses; ++c) masks[c] = 0;
  if (spec.empty() || spec == "none") return;
  for_each_item(spec, [&](const std::string& item) {
    const std::size_t at = item.find('@');
    const std::string op = item.substr(0, at), where = at == std::string::npos ? "all" : item.substr(at + 1);
    const int r = operand_index(op);
    std::uint8_t classes = 0;
    if (where == "all") classes = 0xF;
    if (where == "edges") classes = (1u << kFirstLayer) | (1u << kLastLayer);
    for (int c = 0; c < kLayerClasses; ++c) {
      if (where == layer_class_name(c)) classes = static_cast<std::uint8_t>(1u << c);
    }
    if (r < 0 || classes == 0) {
      throw InputError(fmt::format("{}: bad item \"{}\" in \"{}\"; expected OPERAND[@CLASS] with OPERAND a, w or g and "
                                   "CLASS all, first, hidden, last, attention or edges",
                                   option, item, spec));
    }
    for (int c = 0; c < kLayerClasses; ++c) {
      if (((classes >> c) & 1) == 0) continue;
      if ((masks[c] >> r) & 1) throw InputError(fmt::format("{}: \"{}\" repeats an operand of {} layers in \"{}\"", option, item, layer_class_name(c), spec));
      masks[c] = static_cast<std::uint8_t>(masks[c] | (1u << r));
      if ((masks[c] & (masks[c] - 1)) != 0) {
        throw InputError(fmt::format("{}: \"{}\" makes a second operand of the {} layers INT8 in \"{}\"; at most one per "
                                     "layer, or its INT8 x INT8 products need multipliers",
                                     option, item, layer_class_name(c), spec));
      }
    }
  });
}

std::string int8_operands_spec(const std::uint8_t masks[4]) {
  // The shortest form: an operand INT8 in every class is written without @CLASS.
  std::string s;
  const char* names[3] = {"a", "w", "g"};
  for (int r = 0; r < 3; ++r) {
    bool all = true;
    for (int c = 0; c < kLayerClasses; ++c) all = all && ((masks[c] >> r) & 1);
    if (all) {
      s += (s.empty() ? "" : ",") + std::string(names[r]);
      continue;
    }
    for (int c = 0; c < kLayerClasses; ++c) {
      if ((masks[c] >> r) & 1) s += fmt::format("{}{}@{}", s.empty() ? "" : ",", names[r], layer_class_name(c));
    }
  }
  return s;
}

void parse_scales(const std::string& spec, const std::string& option, int grains[3]) {
  for (int r = 0; r < 3; ++r) grains[r] = kScaleTensor;
  if (spec.empty() || spec == "tensor") return;
  bool seen[3] = {false, false, false};
  for_each_item(spec, [&](const std::string& item) {
    const std::size_t eq = item.find('=');
    const std::string op = item.substr(0, eq), grain = eq == std::string::npos ? "" : item.substr(eq + 1);
    const int r = operand_index(op);
    int g = 1;
    if (grain == "tensor") g = kScaleTensor;
    if (grain == "outer") g = kScaleOuter;
    if (grain == "block16") g = 16;
    if (grain == "block32") g = 32;
    if (grain == "block64") g = 64;
    if (r < 0 || g == 1) {
      throw InputError(fmt::format("{}: bad item \"{}\" in \"{}\"; expected OPERAND=GRAIN with OPERAND a, w or g and GRAIN "
                                   "tensor, outer, block16, block32 or block64",
                                   option, item, spec));
    }
    if (seen[r]) throw InputError(fmt::format("{}: \"{}\" repeats operand {} in \"{}\"", option, item, op, spec));
    seen[r] = true;
    grains[r] = g;
  });
}

std::string scales_spec(const int grains[3]) {
  std::string s;
  const char* names[3] = {"a", "w", "g"};
  for (int r = 0; r < 3; ++r) {
    if (grains[r] == kScaleTensor) continue;
    s += fmt::format("{}{}={}", s.empty() ? "" : ",", names[r],
                     grains[r] == kScaleOuter ? std::string("outer") : fmt::format("block{}", grains[r]));
  }
  return s.empty() ? "tensor" : s;
}

void apply_policy(const Policy& p, TrainOptions& opt, const std::vector<std::string>& keep) {
  auto kept = [&](const char* part) { return std::find(keep.begin(), keep.end(), part) != keep.end(); };
  opt.policy = p.name;
  if (!kept("int8-operands")) parse_int8_operands(p.int8_operands, "policy " + std::string(p.name), opt.int8_roles);
  if (!kept("prc-operands") && !kept("no-prc")) {
    parse_prc_operands(p.prc_operands, "policy " + std::string(p.name), opt.prc_roles);
    opt.prc = std::string(p.prc_operands) != "none";
  }
  if (!kept("no-wbc")) opt.wbc = p.wbc;
  if (!kept("first-last")) opt.first_last = p.first_last;
  if (!kept("scales")) parse_scales(p.scales, "policy " + std::string(p.name), opt.scale_grain);
  if (!kept("apot-weights")) opt.apot_weights = p.apot_weights;
  if (!kept("apot-errors")) opt.apot_errors = p.apot_errors;
}

bool multiplication_free(const TrainOptions& opt) {
  if (opt.arith != NumFormat::kPot4 || opt.first_last != "potq") return false;
  for (int c = 0; c < kLayerClasses; ++c) {
    if ((opt.int8_roles[c] & (opt.int8_roles[c] - 1)) != 0) return false;
  }
  return true;
}

}  // namespace mfsim
