// The quantized GEMM of the training core, shared by its layers (training/nn.cpp) and the
// Transformer (training/transformer.cpp): a tensor quantized to the step's arithmetic (a Grid),
// and one GEMM of two grids computed exactly in that arithmetic, dequantized, and recorded when
// the step is traced.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "training/nn.h"
#include "traces/trace.h"

namespace mfsim {

// A quantized operand on its grid: exact small integers (PoT4: +-2^(m-1), INT8 and INT4: q),
// the values of a float format (FP8: q, BF16 and FP32: the values themselves).
struct Grid {
  std::vector<float> v;
  NumFormat format = NumFormat::kFp32;
  int e = 0;          // PoT4: value = v * 2^(e - 6); FP8: value = v * 2^e
  float scale = 1.0f; // INT8, INT4: value = v * scale
  bool pot2 = false;  // INT8 with a power-of-two scale (a policy's INT8 operand): value = v * 2^e
  // Finer scales (PoT4): the stored matrix (rows x cols, row-major) in groups of g_rows x g_cols
  // elements, each with its own scale exponent ge[group] (groups numbered row-major); empty ge:
  // the one exponent e.
  std::vector<int> ge;
  int rows = 0, cols = 0, g_rows = 0, g_cols = 0;
  // PoT4 with finer scales (quantize_operand): every GEMM quantizes its own copy from the FP32
  // source it is given (GemmSource), so this grid holds no values.
  bool deferred = false;
  bool apot = false;  // INT8 (pot2) values that are two-term powers of two (--apot-weights, --apot-errors)
  // An empty grid with this one's format and scale (per tensor): for copies such as im2col and slices.
  Grid like() const {
    Grid g;
    g.format = format;
    g.e = e;
    g.scale = scale;
    g.pot2 = pot2;
    g.deferred = deferred;
    g.apot = apot;
    return g;
  }
  int group_exp(int r, int c) const {
    return ge.empty() ? e : ge[static_cast<std::size_t>(r / g_rows) * ((cols + g_cols - 1) / g_cols) + c / g_cols];
  }
};


// What a tensor is in its layer: activations and weights round to nearest (weights with WBC
// under ALS-POTQ), errors stochastically (ALS-POTQ, INT8, INT4) and in E5M2 (FP8).
enum class Role { kActivation, kWeight, kError };

// The FP32 tensor a GEMM operand was quantized from, stored as the GEMM reads it (the same
// layout and transposition as the operand's Grid): a GEMM whose operand slot has finer scales
// (StepContext::scale_grain) re-quantizes it with groups along its own reduction dimension.
// The precision slot an operand takes: `slot`, or (slot < 0, the default) its role's.
inline int operand_slot(Role role, int slot) { return slot < 0 ? static_cast<int>(role) : slot; }

struct GemmSource {
  const float* x = nullptr;
  Role role = Role::kActivation;
  int slot = -1;           // the precision slot (default: the role)
  std::uint64_t key = 0;   // stochastic rounding key (errors)
  int precision_slot() const { return operand_slot(role, slot); }
};

// Quantizes n values in the step's arithmetic (FP32: a copy). `key` seeds stochastic rounding.
// `slot` (default: the role) is the operand slot whose per-layer precision applies
// (StepContext::int8_roles): the attention's K and V round as activations in the W slot.
Grid quantize(const float* x, std::size_t n, Role role, StepContext& ctx, std::uint64_t key, int slot = -1);
// quantize() for an operand whose every GEMM is given its FP32 source (GemmSource): with finer
// scales on its slot, a deferred grid (no values, no per-tensor quantization done).
Grid quantize_operand(const float* x, std::size_t n, Role role, StepContext& ctx, std::uint64_t key, int slot = -1);

// Sets ctx.layer_class for a scope.
struct LayerClassScope {
  StepContext& ctx;
  int saved;
  LayerClassScope(StepContext& c, int cls) : ctx(c), saved(c.layer_class) { ctx.layer_class = cls; }
  ~LayerClassScope() { ctx.layer_class = saved; }
  LayerClassScope(const LayerClassScope&) = delete;
  LayerClassScope& operator=(const LayerClassScope&) = delete;
};

// How a GEMM of two integer grids (per-tensor scales) is summed exactly and dequantized: its
// largest product; whether K such products stay below 2^24 (one float chunk, exact in any order),
// else chunks of `chunk` products added in double; and the dequantization, an exponent add of
// `shift` when both scales are powers of two, else a product by `scale` (training/exact_gemm.h).
struct IntGemmPlan {
  double max_product = 0;
  bool one_chunk = true;
  int chunk = 1;
  bool exponent_dequant = false;
  int shift = 0;
  float scale = 1.0f;
  // out (exact integer sums in float) dequantized in place.
  void dequantize(float* out, std::size_t n) const;
  // out = acc (exact integer sums in double) dequantized.
  void dequantize(const double* acc, float* out, std::size_t n) const;
  // The one float factor whose product with each exact sum gives dequantize's bits (false when
  // the exponent add leaves the normal range, where it rounds on its own).
  bool as_multiplier(float* factor) const;
};
// Throws (naming layer and phase) when K products could overflow a 32-bit accumulator.
IntGemmPlan int_gemm_plan(const std::string& layer, Phase phase, const Grid& a, const Grid& b, int k);

// out[m x n] = op(A) . op(B) in the step's arithmetic, dequantized to float; records the GEMM
// (row-major A m x k and B k x n, with its exact expected output) when the step is traced.
// `conv`: a convolution's geometry (null otherwise); `type`: the layer kind recorded.
// `sa`, `sb`: the operands' FP32 sources, for finer scales (null: the grids as given).
void linear_gemm(StepContext& ctx, const std::string& layer, const ConvGeometry* conv, Phase phase, bool ta, bool tb,
                 int m, int n, int k, const Grid& a, const Grid& b, float* out, LayerType type = LayerType::kFc,
                 const GemmSource* sa = nullptr, const GemmSource* sb = nullptr);

// PoT4 quantization of a stored rows x cols matrix in groups: along the columns (reduce_cols:
// one group per row, of `len` consecutive columns) or along the rows (one group per column, of
// `len` consecutive rows); len 0 is the whole row or column. Each group has its own ALS scale,
// PRC and (weights) WBC, as a tensor of its own.
Grid quantize_grouped(const float* x, int rows, int cols, bool reduce_cols, int len, Role role, StepContext& ctx,
                      std::uint64_t key);
// The grain (StepContext::scale_grain) that applies to slot `slot` in the current step: 0 when
// the operand is not PoT4 (another arithmetic, or a policy's INT8 operand).
int active_grain(const StepContext& ctx, int slot);

std::vector<float> transpose(const float* a, int rows, int cols);

// The value a grid element stands for (PoT4: v 2^(e-6), FP8: v 2^e, INT: v scale, else v).
float grid_value(const Grid& g, std::size_t i);
// 10 log10(sum x^2 / sum (x - Q(x))^2) of a tensor and its quantized grid; +inf without noise.
double sqnr_db(const float* x, std::size_t n, const Grid& g);
// Records a sample of role (0 A, 1 W, 2 G) for `layer` when the step samples (ctx.sqnr_sample).
void note_sqnr(StepContext& ctx, const std::string& layer, int role, const float* x, std::size_t n, const Grid& g);

// The same for a GEMM's grouped copy (finer scales) of slot 0 (A), 1 (W) or 2 (G).
void note_grouped_sqnr(StepContext& ctx, const std::string& layer, int slot, Phase phase, const float* x, const Grid& g);

// The stochastic-rounding key of a layer in the current step.
std::uint64_t rounding_key(const StepContext& ctx, int layer_index);

}  // namespace mfsim
