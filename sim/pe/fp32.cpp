// The FP32 PE, the baseline: binary32 operands, multiply then add (two roundings) or, with
// pe.fp32_fma, a fused multiply-add. Holds every trace format's values exactly.
#include "sim/params.h"
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

std::unique_ptr<ArrayEngine> make_engine(const SimConfig& cfg) { return make_float_engine(cfg, cfg.fp32_fma); }

std::vector<ParamSpec> params() {
  return {{"pe.fp32_fma", ParamType::kBool, "false", "", 0, 0, nullptr,
           "FP32 PEs fuse multiply and add (one rounding) instead of multiply then add",
           set_bool(&SimConfig::fp32_fma)}};
}

void count_ops(const SimConfig& cfg, std::uint64_t executed, PeOpCounts& c) {
  c = {cfg.fp32_fma ? 0 : executed, cfg.fp32_fma ? 0 : executed, cfg.fp32_fma ? executed : 0, 0};
}

}  // namespace

const PeType& pe_type_fp32() {
  static const PeType t{
      "fp32", "FP32", "FP32 multiply-add (pe.fp32_fma: fused), the baseline",
      "#7f7f7f", "fp32",
      /*order=*/0, /*operand_bits=*/32, FormatKind::kFloat, /*integer_acc=*/false, 0,
      {NumFormat::kFp32, NumFormat::kBf16, NumFormat::kFp8E4M3, NumFormat::kFp8E5M2, NumFormat::kInt8,
       NumFormat::kInt4, NumFormat::kPot4, NumFormat::kApot},
      {{"fp32_mul", "FP32 multiplications (multiply-then-add PEs)", "multiply", "fp32_mul"},
       {"fp32_add", "FP32 additions (multiply-then-add PEs)", "add", "fp32_add"},
       {"fp32_fma", "FP32 fused multiply-adds (pe.fp32_fma)", "fma", "fp32_fma"}},
      {}, true, count_ops, make_engine, nullptr, params};
  return t;
}

}  // namespace mfsim
