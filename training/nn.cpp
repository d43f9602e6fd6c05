#include "training/nn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "common/error.h"
#include "training/conv_direct.h"
#include "training/exact_gemm.h"
#include "training/layer_kernels.h"
#include "training/quant_gemm.h"
#include "models/gemm_ref.h"
#include "models/rng.h"
#include "models/scaled_gemm.h"
#include "traces/gemm_recorder.h"
#include "traces/network_ops.h"

namespace mfsim {

void record_op(StepContext& ctx, NonGemmOp op) {
  if (ctx.ops != nullptr) ctx.ops->push_back(std::move(op));
}

namespace {
std::uint64_t u64(std::size_t n) { return static_cast<std::uint64_t>(n); }
}  // namespace


namespace {
// --quant names of the training arithmetics; fp8 is the hybrid pair (E4M3 for activations and
// weights, E5M2 for errors), named by its E4M3 member.
constexpr struct {
  NumFormat format;
  const char* name;
} kAriths[] = {{NumFormat::kFp32, "fp32"}, {NumFormat::kBf16, "bf16"}, {NumFormat::kFp8E4M3, "fp8"},
               {NumFormat::kInt8, "int8"}, {NumFormat::kInt4, "int4"}, {NumFormat::kPot4, "als-potq"}};
}  // namespace

const char* layer_class_name(int c) {
  static const char* names[kLayerClasses] = {"first", "hidden", "last", "attention"};
  return c >= 0 && c < kLayerClasses ? names[c] : "?";
}

const char* arith_name(NumFormat a) {
  for (const auto& x : kAriths) {
    if (x.format == a) return x.name;
  }
  return "?";
}

std::string arith_choices() {
  std::string s;
  for (const auto& x : kAriths) s += (s.empty() ? "" : "|") + std::string(x.name);
  return s;
}

bool parse_arith(const std::string& s, NumFormat* out) {
  for (const auto& x : kAriths) {
    if (s == x.name) {
      *out = x.format;
      return true;
    }
  }
  return false;
}

namespace {


Grid to_grid(const Int8Tensor& t, NumFormat f) {
  Grid g;
  g.format = f;
  g.scale = t.scale;
  g.v.assign(t.q.begin(), t.q.end());
  return g;
}

Grid to_grid(FloatTensor&& t, NumFormat f) {
  Grid g;
  g.format = f;
  g.e = t.scale_exp;
  g.v = std::move(t.q);
  return g;
}

}  // namespace


Grid quantize(const float* x, std::size_t n, Role role, StepContext& ctx, std::uint64_t key, int slot) {
  if (ctx.arith == NumFormat::kPot4 && ((ctx.int8_roles[ctx.layer_class] >> operand_slot(role, slot)) & 1)) {
    // A policy's INT8 operand: a power-of-two scale, so its products with PoT4 operands are shifts.
    IntPot2Tensor t = role == Role::kError ? int_pot2_stochastic(x, n, key) : int_pot2_nearest(x, n);
    Grid g;
    g.format = NumFormat::kInt8;
    g.pot2 = true;
    g.e = t.scale_exp;
    g.scale = std::ldexp(1.0f, t.scale_exp);
    g.v.assign(t.q.begin(), t.q.end());
    return g;
  }
  // The W slot: the weights, and the attention's K and V (as --int8-operands w), rounded to nearest.
  const bool apot_w = ctx.apot_weights && role != Role::kError && operand_slot(role, slot) == 1;
  const bool apot_g = ctx.apot_errors && role == Role::kError && operand_slot(role, slot) == 2;
  if (ctx.arith == NumFormat::kPot4 && (apot_w || apot_g)) {
    // Two-term powers of two: INT8 integers with a power-of-two scale whose every value is 0,
    // 2^i or 2^i + 2^j (products: shifts and adds, or exponent adds); errors rounded stochastically.
    IntPot2Tensor t = apot_w ? apot_nearest(x, n) : apot_stochastic(x, n, key);
    Grid g;
    g.format = NumFormat::kInt8;
    g.pot2 = true;
    g.apot = true;
    g.e = t.scale_exp;
    g.scale = std::ldexp(1.0f, t.scale_exp);
    g.v.assign(t.q.begin(), t.q.end());
    return g;
  }
  switch (ctx.arith) {
    case NumFormat::kFp32: {
      Grid g;
      g.v.assign(x, x + n);
      return g;
    }
    case NumFormat::kInt8:
    case NumFormat::kInt4: {
      const int qmax = static_cast<int>(format_info(ctx.arith).max_int);
      return to_grid(role == Role::kError ? int8_stochastic(x, n, key, qmax) : int8_nearest(x, n, qmax), ctx.arith);
    }
    case NumFormat::kFp8E4M3:
    case NumFormat::kFp8E5M2: {  // the hybrid FP8 scheme: errors in E5M2, the rest in E4M3
      const NumFormat f = role == Role::kError ? NumFormat::kFp8E5M2 : NumFormat::kFp8E4M3;
      return to_grid(fp8_quantize(f, x, n), f);
    }
    case NumFormat::kBf16:
      return to_grid(bf16_quantize(x, n), NumFormat::kBf16);
    case NumFormat::kPot4: {
      PotqOptions o = ctx.potq;
      o.wbc = role == Role::kWeight && ctx.wbc;
      o.prc = o.prc && ctx.prc_roles[static_cast<int>(role)];
      Grid g;
      g.format = NumFormat::kPot4;
      g.v.resize(n);  // the grid integers, written by the quantizer
      const Pot4Tensor t = role == Role::kError ? potq_stochastic_ints(x, n, o, key, g.v.data())
                                                : potq_deterministic_ints(x, n, o, g.v.data());
      g.e = t.scale_exp;
      ctx.rho_hist[std::min(7, -t.rho)]++;
      if (o.wbc) {
        ctx.wbc_threshold_sum += t.threshold;
        ctx.wbc_count++;
      }
      return g;
    }
    case NumFormat::kApot:  // an operand format of the ALS-POTQ policies (above), not an arithmetic
      throw std::logic_error("quantize: apot is not a training arithmetic");
  }
  return {};
}

Grid quantize_operand(const float* x, std::size_t n, Role role, StepContext& ctx, std::uint64_t key, int slot) {
  if (active_grain(ctx, operand_slot(role, slot)) == kScaleTensor) return quantize(x, n, role, ctx, key, slot);
  Grid g;
  g.format = NumFormat::kPot4;
  g.deferred = true;
  return g;
}

std::vector<float> transpose(const float* a, int rows, int cols) {
  std::vector<float> t(static_cast<std::size_t>(rows) * cols);
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) t[static_cast<std::size_t>(j) * rows + i] = a[static_cast<std::size_t>(i) * cols + j];
  }
  return t;
}

namespace {
Pot4Code code_of(float v) {  // inverse of pot4_int on the grid values
  if (v == 0.0f) return 0;
  int e = 0;
  std::frexp(std::fabs(v), &e);  // |v| = 2^(m-1) -> e = m
  return pot4_encode(v < 0, static_cast<unsigned>(e));
}
}  // namespace

// acc * 2^shift, rounded to float, by adding `shift` to the exponent field of the (exact,
// integer-valued) double: the dequantization of an MF-MAC accumulator, no multiplication.
namespace {
inline float exponent_add(double acc, int shift) {
  if (acc == 0.0) return 0.0f;
  std::uint64_t b;
  std::memcpy(&b, &acc, 8);
  const int exp = static_cast<int>((b >> 52) & 0x7FF);
  if (exp + shift <= 0 || exp + shift >= 0x7FF) return static_cast<float>(std::ldexp(acc, shift));  // out of range
  b += static_cast<std::uint64_t>(static_cast<std::int64_t>(shift)) << 52;
  double d;
  std::memcpy(&d, &b, 8);
  return static_cast<float>(d);
}
}  // namespace

// The same for an exact integer held in a float (|acc| < 2^24).
namespace {
inline float exponent_add_f(float acc, int shift) {
  if (acc == 0.0f) return 0.0f;
  std::uint32_t b;
  std::memcpy(&b, &acc, 4);
  const int exp = static_cast<int>((b >> 23) & 0xFF);
  if (exp + shift <= 0 || exp + shift >= 0xFF) return static_cast<float>(std::ldexp(static_cast<double>(acc), shift));
  b += static_cast<std::uint32_t>(shift) << 23;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
// exponent_add_f over n exact integers |acc| < 2^24 (a one-chunk GEMM's sums): a nonzero one
// has a biased exponent in [127, 150], so when the shift keeps that range normal (always, in
// practice) one branch-free pass does it; otherwise element by element.
void exponent_add_all(float* v, std::size_t n, int shift) {
  if (127 + shift <= 0 || 150 + shift >= 0xFF) {
    for (std::size_t i = 0; i < n; ++i) v[i] = exponent_add_f(v[i], shift);
    return;
  }
  const std::uint32_t add = static_cast<std::uint32_t>(shift) << 23;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t b;
    std::memcpy(&b, &v[i], 4);
    b = (b & 0x7FFFFFFFu) == 0 ? 0u : b + add;
    std::memcpy(&v[i], &b, 4);
  }
}
}  // namespace

IntGemmPlan int_gemm_plan(const std::string& layer, Phase phase, const Grid& a, const Grid& b, int k) {
  // Integer grids: PoT4 (+-2^(m-1)), INT8 or INT4, or a policy's mixed pair (a PoT4 operand
  // with an INT8 one: its products are shifts). Products bounded by the two formats' largest
  // integers; sums exact.
  const auto max_int = [](const Grid& g) { return g.format == NumFormat::kPot4 ? 64.0 : static_cast<double>(format_info(g.format).max_int); };
  IntGemmPlan p;
  p.max_product = a.format == b.format && a.format != NumFormat::kPot4 && !a.pot2 && !b.pot2
                      ? static_cast<double>(max_product_term(a.format))
                      : max_int(a) * max_int(b);
  // A power-of-two scale on both sides: dequantization is an exponent add (no multiplication).
  const auto pot_exp = [](const Grid& g) { return g.format == NumFormat::kPot4 ? g.e - 6 : g.e; };
  p.exponent_dequant = (a.format == NumFormat::kPot4 || a.pot2) && (b.format == NumFormat::kPot4 || b.pot2);
  p.shift = pot_exp(a) + pot_exp(b);
  p.scale = a.scale * b.scale;
  if (static_cast<double>(k) * p.max_product > 2147483647.0) {
    throw std::runtime_error(fmt::format("{} {}: K = {} could overflow the 32-bit accumulator", layer,
                                         to_string(phase), k));
  }
  p.one_chunk = static_cast<double>(k) * p.max_product < 16777216.0;
  p.chunk = std::max(1, static_cast<int>(16777215.0 / std::max(1.0, p.max_product)));
  return p;
}

void IntGemmPlan::dequantize(float* out, std::size_t n) const {
  if (exponent_dequant) {
    exponent_add_all(out, n, shift);
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] *= scale;
  }
}

void IntGemmPlan::dequantize(const double* acc, float* out, std::size_t n) const {
  if (exponent_dequant) {
    for (std::size_t i = 0; i < n; ++i) out[i] = exponent_add(acc[i], shift);  // the accumulator's LSB weight
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(acc[i]) * scale;
  }
}

bool IntGemmPlan::as_multiplier(float* factor) const {
  if (!exponent_dequant) {
    *factor = scale;  // out *= scale
    return true;
  }
  // exponent_add_all's common range: an exact scaling by a normal power of two, so the product
  // by 2^shift gives the same bits (the sums are integers below 2^24, never -0).
  if (127 + shift <= 0 || 150 + shift >= 0xFF) return false;
  *factor = std::ldexp(1.0f, shift);
  return true;
}

// C = op(A) . op(B) in the step's arithmetic, dequantized to float. Records the GEMM when the
// step is traced.
// `conv`: the layer's geometry when it is a convolution (recorded with the GEMM), else null.
int active_grain(const StepContext& ctx, int slot) {
  if (ctx.arith != NumFormat::kPot4 || ((ctx.int8_roles[ctx.layer_class] >> slot) & 1)) return kScaleTensor;
  if ((slot == 1 && ctx.apot_weights) || (slot == 2 && ctx.apot_errors)) return kScaleTensor;  // two-term: per tensor
  return ctx.scale_grain[slot];
}

Grid quantize_grouped(const float* x, int rows, int cols, bool reduce_cols, int len, Role role, StepContext& ctx,
                      std::uint64_t key) {
  Grid g;
  g.format = NumFormat::kPot4;
  g.rows = rows;
  g.cols = cols;
  const int along = reduce_cols ? cols : rows;
  const int glen = len > 0 ? std::min(len, along) : along;
  g.g_rows = reduce_cols ? 1 : glen;
  g.g_cols = reduce_cols ? glen : 1;
  const int per_outer = (along + glen - 1) / glen;
  const int outer = reduce_cols ? rows : cols;
  g.v.resize(static_cast<std::size_t>(rows) * cols);
  g.ge.resize(static_cast<std::size_t>(outer) * per_outer);
  PotqOptions o = ctx.potq;
  o.wbc = role == Role::kWeight && ctx.wbc;
  o.prc = o.prc && ctx.prc_roles[static_cast<int>(role)];
  std::vector<float> buf(static_cast<std::size_t>(glen)), ints(static_cast<std::size_t>(glen));
  for (int u = 0; u < outer; ++u) {
    for (int blk = 0; blk < per_outer; ++blk) {
      const int start = blk * glen, count = std::min(glen, along - start);
      // Element t of the group: (u, start + t) along the columns, (start + t, u) along the rows.
      auto at = [&](int t) {
        return reduce_cols ? static_cast<std::size_t>(u) * cols + static_cast<std::size_t>(start + t)
                           : static_cast<std::size_t>(start + t) * cols + static_cast<std::size_t>(u);
      };
      for (int t = 0; t < count; ++t) buf[static_cast<std::size_t>(t)] = x[at(t)];
      const std::size_t id = static_cast<std::size_t>(u) * per_outer + static_cast<std::size_t>(blk);
      const Pot4Tensor q = role == Role::kError
                               ? potq_stochastic_ints(buf.data(), static_cast<std::size_t>(count), o,
                                                      splitmix64_mix(key ^ (0x9e3779b97f4a7c15ull * (id + 1))), ints.data())
                               : potq_deterministic_ints(buf.data(), static_cast<std::size_t>(count), o, ints.data());
      for (int t = 0; t < count; ++t) g.v[at(t)] = ints[static_cast<std::size_t>(t)];
      // The grid's exponents: reduce along rows -> groups are column-major in (u, blk); store
      // them row-major over the (row group, column group) grid that group_exp reads.
      const std::size_t gi = reduce_cols ? id : static_cast<std::size_t>(blk) * outer + static_cast<std::size_t>(u);
      g.ge[gi] = q.scale_exp;
      ctx.rho_hist[std::min(7, -q.rho)]++;
      if (o.wbc) {
        ctx.wbc_threshold_sum += q.threshold;
        ctx.wbc_count++;
      }
    }
  }
  g.e = g.ge.empty() ? 0 : *std::max_element(g.ge.begin(), g.ge.end());
  return g;
}

namespace {

// The value of grouped grid element (r, c) of its stored matrix.
double grouped_value(const Grid& g, int r, int c) {
  return std::ldexp(static_cast<double>(g.v[static_cast<std::size_t>(r) * g.cols + c]), g.group_exp(r, c) - 6);
}

// C = op(A) . op(B) for grids of which at least one is PoT4 with finer scales; the other may be
// PoT4 or a policy's INT8 operand with a power-of-two scale (per tensor: one group). The arithmetic
// is models/scaled_gemm.h's: every product v_a v_b 2^(x_a + x_b) summed exactly in an integer
// whose LSB weighs 2^L, then rounded to FP32 once. The reduction is cut into chunks at the block
// boundaries of both operands (the smaller block; sizes are powers of two) and at 2^24 / max
// product (each chunk's float sum is then an exact integer); each chunk's sum is shifted by its
// two exponents' offsets and added in 64 bits. `record_ints`: the operands on their grids,
// row-major as recorded (A m x k, B k x n), with their groups (ScaleGroups) and the LSB.
struct GroupedOperands {
  std::vector<std::int32_t> a, b;
  ScaleGroups ga, gb;
  ScaledLsb lsb;
};

// Element (i, kk) of op(A) (m x k) and (kk, j) of op(B) (k x n) as stored.
inline std::size_t a_index(bool ta, int m, int k, int i, int kk) {
  return ta ? static_cast<std::size_t>(kk) * m + i : static_cast<std::size_t>(i) * k + kk;
}
inline std::size_t b_index(bool tb, int n, int k, int kk, int j) {
  return tb ? static_cast<std::size_t>(j) * k + kk : static_cast<std::size_t>(kk) * n + j;
}

// The grid exponent x of a stored grid element: PoT4 E - 6 (per group or tensor), INT8 e.
int grid_exp(const Grid& g, int r, int c) {
  return g.format == NumFormat::kPot4 ? g.group_exp(r, c) - 6 : g.e;
}

// The record's view of the operands: integers row-major and the groups along K.
GroupedOperands grouped_operands(bool ta, bool tb, int m, int n, int k, const Grid& a, const Grid& b) {
  GroupedOperands o;
  o.a.resize(static_cast<std::size_t>(m) * k);
  o.b.resize(static_cast<std::size_t>(k) * n);
  for (int i = 0; i < m; ++i) {
    for (int kk = 0; kk < k; ++kk) o.a[static_cast<std::size_t>(i) * k + kk] = static_cast<std::int32_t>(a.v[a_index(ta, m, k, i, kk)]);
  }
  for (int kk = 0; kk < k; ++kk) {
    for (int j = 0; j < n; ++j) o.b[static_cast<std::size_t>(kk) * n + j] = static_cast<std::int32_t>(b.v[b_index(tb, n, k, kk, j)]);
  }
  // Groups along K: a's len along its reduction direction (columns of m x k, rows of k x m).
  auto groups = [&](const Grid& g, bool left) {
    ScaleGroups sg;
    const bool stored_t = left ? ta : tb;
    const int outer = left ? m : n;
    if (g.ge.empty()) {
      sg.tensor_exp = g.format == NumFormat::kPot4 ? g.e - 6 : g.e;
      return sg;
    }
    // op(A) row i reduces along stored columns (no ta) or rows (ta); op(B) column j along
    // stored rows (no tb) or columns (tb).
    const bool along_cols = left ? !stored_t : stored_t;
    sg.block = std::min<std::int64_t>(along_cols ? g.g_cols : g.g_rows, k);
    const std::int64_t nb = sg.blocks(k);
    sg.exps.resize(static_cast<std::size_t>(outer * nb));
    for (int u = 0; u < outer; ++u) {
      for (std::int64_t blk = 0; blk < nb; ++blk) {
        const int kk = static_cast<int>(blk * sg.block);
        const int r = left ? (ta ? kk : u) : (tb ? u : kk);
        const int c = left ? (ta ? u : kk) : (tb ? kk : u);
        sg.exps[static_cast<std::size_t>(u * nb + blk)] = grid_exp(g, r, c);
      }
    }
    return sg;
  };
  o.ga = groups(a, true);
  o.gb = groups(b, false);
  return o;
}

// The exact aligned sums (integers at 2^lsb) of C = op(A) . op(B).
void grouped_gemm(bool ta, bool tb, int m, int n, int k, const Grid& a, const Grid& b, const GroupedOperands& o,
                  std::vector<std::int64_t>& acc) {
  int chunk = static_cast<int>(scaled_chunk_length(k, o.ga.block, o.gb.block));
  const auto max_int = [](const Grid& g) { return g.format == NumFormat::kPot4 ? 64 : 127; };
  chunk = std::min(chunk, (1 << 24) / (max_int(a) * max_int(b)));
  const std::size_t mn = static_cast<std::size_t>(m) * n;
  acc.assign(mn, 0);
  std::vector<float> ac, bc, part(mn);
  for (int k0 = 0; k0 < k; k0 += chunk) {
    const int kc = std::min(chunk, k - k0);
    ac.resize(static_cast<std::size_t>(m) * kc);
    bc.resize(static_cast<std::size_t>(kc) * n);
    for (int i = 0; i < m; ++i) {
      for (int t = 0; t < kc; ++t) ac[static_cast<std::size_t>(i) * kc + t] = a.v[a_index(ta, m, k, i, k0 + t)];
    }
    for (int t = 0; t < kc; ++t) {
      for (int j = 0; j < n; ++j) bc[static_cast<std::size_t>(t) * n + j] = b.v[b_index(tb, n, k, k0 + t, j)];
    }
    sgemm(false, false, m, n, kc, ac.data(), bc.data(), part.data());
    for (int i = 0; i < m; ++i) {
      const int sa = o.ga.at(i, k0, k) - o.lsb.min_a;
      for (int j = 0; j < n; ++j) {
        const std::size_t x = static_cast<std::size_t>(i) * n + j;
        if (part[x] == 0.0f) continue;
        // A non-zero chunk sum has non-zero elements in both groups: offsets >= 0.
        const int sh = sa + (o.gb.at(j, k0, k) - o.lsb.min_b);
        acc[x] += static_cast<std::int64_t>(part[x]) * (std::int64_t{1} << sh);
      }
    }
  }
}

}  // namespace

void linear_gemm(StepContext& ctx, const std::string& layer, const ConvGeometry* conv, Phase phase, bool ta, bool tb,
                 int m, int n, int k, const Grid& a_in, const Grid& b_in, float* out, LayerType type,
                 const GemmSource* sa, const GemmSource* sb) {
  // Finer scales: re-quantize an operand from its FP32 source with groups along this GEMM's
  // reduction dimension (op(A) m x k, op(B) k x n).
  const int grain_a = sa != nullptr ? active_grain(ctx, sa->precision_slot()) : 0;
  const int grain_b = sb != nullptr ? active_grain(ctx, sb->precision_slot()) : 0;
  if ((a_in.deferred && grain_a == kScaleTensor) || (b_in.deferred && grain_b == kScaleTensor)) {
    throw std::logic_error(fmt::format("{} {}: a deferred operand (finer scales) reached a GEMM without its FP32 source", layer,
                                       to_string(phase)));
  }
  if (grain_a != kScaleTensor || grain_b != kScaleTensor) {
    Grid ga, gb;
    if (grain_a != kScaleTensor) {
      ga = quantize_grouped(sa->x, ta ? k : m, ta ? m : k, !ta, grain_a > 0 ? grain_a : 0, sa->role, ctx, sa->key);
      note_grouped_sqnr(ctx, layer, sa->precision_slot(), phase, sa->x, ga);
    }
    if (grain_b != kScaleTensor) {
      gb = quantize_grouped(sb->x, tb ? n : k, tb ? k : n, tb, grain_b > 0 ? grain_b : 0, sb->role, ctx, sb->key);
      note_grouped_sqnr(ctx, layer, sb->precision_slot(), phase, sb->x, gb);
    }
    const Grid& a = grain_a != kScaleTensor ? ga : a_in;
    const Grid& b = grain_b != kScaleTensor ? gb : b_in;
    // Finer scales on a PoT4 operand; the other PoT4 too, or a policy's INT8 operand with a
    // power-of-two scale (a shift-add pair: the per-block alignment stays a shift).
    const auto joins = [](const Grid& g) { return g.format == NumFormat::kPot4 || (g.format == NumFormat::kInt8 && g.pot2); };
    if (!joins(a) || !joins(b)) {
      throw std::runtime_error(fmt::format("{} {}: finer scales apply to PoT4 GEMMs with a PoT4 or power-of-two INT8 "
                                           "operand; the other operand is {}",
                                           layer, to_string(phase), to_string(joins(a) ? b.format : a.format)));
    }
    Grid at = a, bt = b;  // a per-tensor operand seen as one group
    for (Grid* g : {&at, &bt}) {
      if (!g->ge.empty()) continue;
      const bool left = g == &at;
      g->rows = left ? (ta ? k : m) : (tb ? n : k);
      g->cols = left ? (ta ? m : k) : (tb ? k : n);
      g->g_rows = g->rows;
      g->g_cols = g->cols;
    }
    GroupedOperands o = grouped_operands(ta, tb, m, n, k, at, bt);
    const std::int64_t max_term = static_cast<std::int64_t>(a.format == NumFormat::kPot4 ? 64 : 127) *
                                  (b.format == NumFormat::kPot4 ? 64 : 127);
    std::string why;
    if (!scaled_lsb(m, n, k, o.a.data(), o.ga, o.b.data(), o.gb, max_term, &o.lsb, &why)) {
      throw std::runtime_error(fmt::format("{} {}: finer scales: {}", layer, to_string(phase), why));
    }
    std::vector<std::int64_t> acc;
    grouped_gemm(ta, tb, m, n, k, at, bt, o, acc);
    const std::size_t mn = static_cast<std::size_t>(m) * n;
    for (std::size_t i = 0; i < mn; ++i) out[i] = aligned_to_float(acc[i], o.lsb.lsb);
    if (ctx.trace == nullptr) return;
    TraceRecord r;
    r.layer = layer;
    r.phase = phase;
    r.shape = GemmShape{m, n, k};
    r.layer_type = conv != nullptr ? LayerType::kConv : type;
    if (conv != nullptr) r.conv = *conv;
    std::vector<Pot4Code> ca, cb;
    std::vector<std::int8_t> ia, ib, sa8, sb8;
    auto side = [&](const Grid& g, const ScaleGroups& sg, const std::vector<std::int32_t>& v, OperandSpec& spec,
                    std::vector<Pot4Code>& codes, std::vector<std::int8_t>& ints, std::vector<std::int8_t>& scales) {
      if (g.format == NumFormat::kPot4) {
        spec.format = NumFormat::kPot4;
        spec.scale_exp = g.e;
        spec.scale_block = sg.block;
        codes.resize(v.size());
        std::transform(v.begin(), v.end(), codes.begin(), [](std::int32_t x) { return code_of(static_cast<float>(x)); });
        for (int x : sg.exps) {
          if (x + 6 < kPot4ScaleExpMin || x + 6 > kPot4ScaleExpMax) {
            throw InputError(fmt::format("train: --trace-out: {} {}: a group's scale exponent {} is outside [{}, {}]", layer,
                                         to_string(phase), x + 6, kPot4ScaleExpMin, kPot4ScaleExpMax));
          }
          scales.push_back(static_cast<std::int8_t>(x + 6));
        }
      } else {
        if (g.apot) {
          throw InputError(fmt::format("train: --trace-out: {} {}: a two-term operand beside finer scales cannot be "
                                       "traced (a GEMM with finer scales pairs PoT4 with PoT4 or INT8)",
                                       layer, to_string(phase)));
        }
        spec.format = NumFormat::kInt8;
        spec.scale = std::ldexp(1.0f, g.e);
        ints.assign(v.begin(), v.end());
      }
    };
    side(a, o.ga, o.a, r.a, ca, ia, sa8);
    side(b, o.gb, o.b, r.b, cb, ib, sb8);
    ctx.trace->add_scaled(r, ca.empty() ? nullptr : ca.data(), ca.empty() ? ia.data() : nullptr,
                          cb.empty() ? nullptr : cb.data(), cb.empty() ? ib.data() : nullptr, sa8.data(), sb8.data(),
                          acc.data());
    return;
  }
  const Grid& a = a_in;
  const Grid& b = b_in;
  const std::size_t mn = static_cast<std::size_t>(m) * n;
  std::vector<double> acc;
  const bool float_arith = is_float_format(ctx.arith);
  if (float_arith) {
    // Float formats: exact products of binary32 values, summed in FP32 (the BLAS order here;
    // the trace records the reference order, as for FP32). FP8 rescales by a power of two.
    sgemm(ta, tb, m, n, k, a.v.data(), b.v.data(), out);
    if (a.e + b.e != 0) {
      const int shift = a.e + b.e;
      for (std::size_t i = 0; i < mn; ++i) out[i] = std::ldexp(out[i], shift);
    }
  } else {
    const IntGemmPlan plan = int_gemm_plan(layer, phase, a, b, k);
    if (plan.one_chunk) {
      // One chunk: the float GEMM's sums are exact integers below 2^24 (training/exact_gemm.h).
      sgemm(ta, tb, m, n, k, a.v.data(), b.v.data(), out);
      if (ctx.trace != nullptr) acc.assign(out, out + mn);
      plan.dequantize(out, mn);
    } else {
      acc.resize(mn);
      exact_int_gemm(ta, tb, m, n, k, a.v.data(), b.v.data(), plan.max_product, acc.data());
      plan.dequantize(acc.data(), out, mn);
    }
  }
  if (ctx.trace == nullptr) return;
  // The record holds A (m x k) and B (k x n) row-major, as the simulators read them.
  std::vector<float> ar = ta ? transpose(a.v.data(), k, m) : a.v;
  std::vector<float> br = tb ? transpose(b.v.data(), n, k) : b.v;
  TraceRecord r;
  r.layer = layer;
  r.phase = phase;
  r.shape = GemmShape{m, n, k};
  r.layer_type = type;
  if (conv != nullptr) {
    r.layer_type = LayerType::kConv;
    r.conv = *conv;
  }
  if (float_arith) {
    r.a.format = a.format;
    r.b.format = b.format;
    r.a.scale_exp = a.e;
    r.b.scale_exp = b.e;
    std::vector<float> ref(mn);
    gemm_fp32_ref(r.shape, ar.data(), br.data(), false, ref.data());  // the reference order
    ctx.trace->add_fp32(r, ar.data(), br.data(), ref.data());
    return;
  }
  std::vector<std::int64_t> expected(mn);
  for (std::size_t i = 0; i < mn; ++i) expected[i] = static_cast<std::int64_t>(acc[i]);
  if (a.apot || b.apot || a.format != b.format) {
    // A policy's mixed GEMM: a two-term operand (apot) with a PoT4, INT8 or two-term one, or the
    // shift-add pair (one PoT4 operand, one INT8); the INT8 and two-term scales are powers of two.
    std::vector<Pot4Code> ca, cb;
    std::vector<std::int8_t> ia, ib;
    auto side = [](const Grid& g, const std::vector<float>& v, OperandSpec& spec, std::vector<Pot4Code>& codes,
                   std::vector<std::int8_t>& ints) {
      if (g.format == NumFormat::kPot4) {
        spec.format = NumFormat::kPot4;
        spec.scale_exp = g.e;
        codes.resize(v.size());
        std::transform(v.begin(), v.end(), codes.begin(), code_of);
      } else {
        spec.format = g.apot ? NumFormat::kApot : NumFormat::kInt8;
        spec.scale = g.scale;  // 2^e
        ints.assign(v.begin(), v.end());
      }
    };
    side(a, ar, r.a, ca, ia);
    side(b, br, r.b, cb, ib);
    if (a.apot || b.apot) {
      ctx.trace->add_apot(r, ca.empty() ? nullptr : ca.data(), ca.empty() ? ia.data() : nullptr,
                          cb.empty() ? nullptr : cb.data(), cb.empty() ? ib.data() : nullptr, expected.data());
    } else {
      ctx.trace->add_pot4_int8(r, ca.empty() ? cb.data() : ca.data(), ia.empty() ? ib.data() : ia.data(),
                               expected.data());
    }
  } else if (ctx.arith == NumFormat::kPot4) {
    r.a.format = r.b.format = NumFormat::kPot4;
    r.a.scale_exp = a.e;
    r.b.scale_exp = b.e;
    std::vector<Pot4Code> ca(ar.size()), cb(br.size());
    std::transform(ar.begin(), ar.end(), ca.begin(), code_of);
    std::transform(br.begin(), br.end(), cb.begin(), code_of);
    ctx.trace->add_pot4(r, ca.data(), cb.data(), expected.data());
  } else {
    r.a.format = r.b.format = ctx.arith;  // int8 or int4
    r.a.scale = a.scale;
    r.b.scale = b.scale;
    std::vector<std::int8_t> ia(ar.begin(), ar.end()), ib(br.begin(), br.end());
    ctx.trace->add_int8(r, ia.data(), ib.data(), expected.data());
  }
}

float grid_value(const Grid& g, std::size_t i) {
  switch (g.format) {
    case NumFormat::kPot4: return std::ldexp(g.v[i], g.e - 6);
    case NumFormat::kFp8E4M3:
    case NumFormat::kFp8E5M2: return std::ldexp(g.v[i], g.e);
    case NumFormat::kInt8:
    case NumFormat::kInt4: return g.pot2 ? std::ldexp(g.v[i], g.e) : g.v[i] * g.scale;
    default: return g.v[i];
  }
}

namespace {

// 10 log10(signal / noise) of x against value(i), the grid's element i exactly.
template <class Value>
double sqnr_db_of(const float* x, std::size_t n, Value value) {
  double signal = 0, noise = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - value(i);
    signal += static_cast<double>(x[i]) * x[i];
    noise += d * d;
  }
  return noise > 0 ? 10.0 * std::log10(signal / noise) : INFINITY;
}

void add_sqnr(StepContext& ctx, const std::string& layer, int slot, double db) {
  if (!std::isfinite(db)) return;
  QuantNoise& q = (*ctx.sqnr)[layer];
  q.db_sum[slot] += db;
  q.count[slot] += 1;
}

}  // namespace

double sqnr_db(const float* x, std::size_t n, const Grid& g) {
  if (g.format == NumFormat::kPot4) {
    // grid_value without a call per element: v 2^(e-6) is a normal binary32 for every scale
    // exponent and grid integer (|v| <= 64), so the product in double is that value exactly.
    static_assert(kPot4ScaleExpMin - 6 >= -126 && kPot4ScaleExpMax - 6 + 6 <= 127, "PoT4 values are normal floats");
    const double f = std::ldexp(1.0, g.e - 6);
    return sqnr_db_of(x, n, [&](std::size_t i) { return static_cast<double>(g.v[i]) * f; });
  }
  return sqnr_db_of(x, n, [&](std::size_t i) { return static_cast<double>(grid_value(g, i)); });
}

void note_sqnr(StepContext& ctx, const std::string& layer, int role, const float* x, std::size_t n, const Grid& g) {
  if (ctx.sqnr == nullptr || !ctx.sqnr_sample || g.format == NumFormat::kFp32 || g.v.size() != n) return;
  if (active_grain(ctx, role) != kScaleTensor) return;  // the GEMMs note their grouped copies
  add_sqnr(ctx, layer, role, sqnr_db(x, n, g));
}

void note_grouped_sqnr(StepContext& ctx, const std::string& layer, int slot, Phase phase, const float* x, const Grid& g) {
  // One sample per tensor: A and W from the forward GEMM's copies, G from the backward-weight
  // one (every layer has that GEMM).
  if (ctx.sqnr == nullptr || !ctx.sqnr_sample) return;
  if (phase != (slot == 2 ? Phase::kBwdWeight : Phase::kFwd)) return;
  const std::size_t cols = static_cast<std::size_t>(g.cols);
  add_sqnr(ctx, layer, slot,
           sqnr_db_of(x, static_cast<std::size_t>(g.rows) * cols, [&](std::size_t i) {
             return static_cast<double>(grouped_value(g, static_cast<int>(i / cols), static_cast<int>(i % cols)));
           }));
}

std::uint64_t rounding_key(const StepContext& ctx, int layer_index) {
  return splitmix64_mix(ctx.seed ^ splitmix64_mix(ctx.step * 1000003ull + static_cast<std::uint64_t>(layer_index)));
}

namespace {

// Shared by the fully connected and convolution layers: Y[M x N] = cols[M x K] . W[K x N] + b.
class LinearBase : public Layer {
 public:
  LinearBase(std::string name, int index, int k, int n, SplitMix64& rng)
      : name_(std::move(name)), index_(index), k_(k), n_(n), w_(static_cast<std::size_t>(k) * n), b_(n, 0.0f),
        dw_(w_.size()), db_(n) {
    const double bound = std::sqrt(6.0 / k);  // He-uniform for ReLU networks
    for (auto& x : w_) x = static_cast<float>((rng.uniform() * 2.0 - 1.0) * bound);
  }
  std::string name() const override { return name_; }
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params() override {
    return {{&w_, &dw_}, {&b_, &db_}};
  }

 protected:
  // The layer input on its grid: quantized, or in fp32 mode the input itself (moved, no copy).
  static Grid input_grid(Tensor& x, StepContext& ctx) {
    if (ctx.arith != NumFormat::kFp32) return quantize_operand(x.v.data(), x.size(), Role::kActivation, ctx, 0);
    Grid g;
    g.v = std::move(x.v);
    return g;
  }
  // The first and the last linear layer under --first-last run in ctx.edge_arith.
  // Every layer sets its class (first, last or hidden) for the policy's per-layer precision.
  struct EdgeScope {
    StepContext& ctx;
    NumFormat saved;
    LayerClassScope cls;
    EdgeScope(StepContext& c, const LinearBase& l)
        : ctx(c), saved(c.arith), cls(c, l.first ? kFirstLayer : l.edge ? kLastLayer : kHiddenLayer) {
      if (l.edge && c.edge_override) ctx.arith = c.edge_arith;
    }
    ~EdgeScope() { ctx.arith = saved; }
  };
  // cols: the quantized input in im2col form (or the input itself), kept for the backward pass.
  void forward_gemm(StepContext& ctx, int m, Grid&& cols, float* y) {
    m_ = m;
    cols_ = std::move(cols);
    wq_ = quantize_operand(w_.data(), w_.size(), Role::kWeight, ctx, 0);
    note_sqnr(ctx, name_, 1, w_.data(), w_.size(), wq_);
    // Finer scales re-quantize from the FP32 tensors (cols_f32_: the input in im2col form).
    const bool fa = active_grain(ctx, 0) != kScaleTensor, fw = active_grain(ctx, 1) != kScaleTensor;
    const GemmSource sa{cols_f32_.data(), Role::kActivation}, sw{w_.data(), Role::kWeight};
    linear_gemm(ctx, name_, geometry(), Phase::kFwd, false, false, m, n_, k_, cols_, wq_, y, LayerType::kFc,
                fa ? &sa : nullptr, fw ? &sw : nullptr);
    add_bias(ctx, m, y);
  }
  // y (m x N) += the bias, per row.
  void add_bias(StepContext& ctx, int m, float* y) {
    const float* b = b_.data();
    for (int i = 0; i < m; ++i) {
      float* row = y + static_cast<std::size_t>(i) * n_;
      for (int j = 0; j < n_; ++j) row[j] += b[j];
    }
    record_op(ctx, bias_op(name_, OpPhase::kFwd, u64(static_cast<std::size_t>(m) * n_), u64(n_)));
  }
  // The bias gradient: the column sums of dy (m_ x N), in row order.
  void bias_grad(StepContext& ctx, const float* dy) {
    std::fill(db_.begin(), db_.end(), 0.0f);
    float* db = db_.data();
    for (int i = 0; i < m_; ++i) {
      const float* row = dy + static_cast<std::size_t>(i) * n_;
      for (int j = 0; j < n_; ++j) db[j] += row[j];
    }
    record_op(ctx, bias_op(name_, OpPhase::kBwd, u64(static_cast<std::size_t>(m_) * n_), u64(n_)));
  }
  // dy: M x N. Writes dcols (M x K) when need_dx (every element: the buffer may be reused).
  void backward_gemm(StepContext& ctx, const float* dy, bool need_dx, std::vector<float>* dcols) {
    Grid g = quantize_operand(dy, static_cast<std::size_t>(m_) * n_, Role::kError, ctx, rounding_key(ctx, index_));
    note_sqnr(ctx, name_, 2, dy, static_cast<std::size_t>(m_) * n_, g);
    const bool fa = active_grain(ctx, 0) != kScaleTensor, fw = active_grain(ctx, 1) != kScaleTensor,
               fg = active_grain(ctx, 2) != kScaleTensor;
    const GemmSource sa{cols_f32_.data(), Role::kActivation}, sw{w_.data(), Role::kWeight},
        sg{dy, Role::kError, -1, rounding_key(ctx, index_)};
    if (need_dx) {
      dcols->resize(static_cast<std::size_t>(m_) * k_);
      linear_gemm(ctx, name_, geometry(), Phase::kBwdData, false, true, m_, k_, n_, g, wq_, dcols->data(), LayerType::kFc,
                  fg ? &sg : nullptr, fw ? &sw : nullptr);
    }
    linear_gemm(ctx, name_, geometry(), Phase::kBwdWeight, true, false, k_, n_, m_, cols_, g, dw_.data(), LayerType::kFc,
                fa ? &sa : nullptr, fg ? &sg : nullptr);
    bias_grad(ctx, dy);
  }

  // A convolution's geometry for its trace records (null for a fully connected layer).
  virtual const ConvGeometry* geometry() const { return nullptr; }

  std::string name_;
  int index_, k_, n_, m_ = 0;
  std::vector<float> w_, b_, dw_, db_;
  Grid cols_, wq_;
  std::vector<float> cols_f32_;  // the FP32 input in im2col form, kept only with finer scales of A

 public:
  bool first = false;  // the first linear layer needs no input gradient
  bool edge = false;   // the first or the last linear layer (--first-last)
};

class Dense : public LinearBase {
 public:
  Dense(std::string name, int index, int in, int out, SplitMix64& rng) : LinearBase(std::move(name), index, in, out, rng) {}
  Tensor forward(Tensor x, StepContext& ctx, bool) override {
    EdgeScope scope(ctx, *this);
    Tensor y;
    y.n = x.n;
    y.c = n_;
    y.v.resize(static_cast<std::size_t>(x.n) * n_);
    if (active_grain(ctx, 0) != kScaleTensor) cols_f32_ = x.v;
    Grid xq = input_grid(x, ctx);
    note_sqnr(ctx, name_, 0, x.v.data(), x.v.size(), xq);
    forward_gemm(ctx, x.n, std::move(xq), y.v.data());
    return y;
  }
  Tensor backward(Tensor dy, StepContext& ctx) override {
    EdgeScope scope(ctx, *this);
    Tensor dx;
    dx.n = dy.n;
    dx.c = k_;
    backward_gemm(ctx, dy.v.data(), !first, &dx.v);
    return dx;
  }
};

class Conv2d : public LinearBase {
 public:
  Conv2d(std::string name, int index, int h, int w, int cin, int cout, int k, int stride, int pad, SplitMix64& rng)
      : LinearBase(std::move(name), index, k * k * cin, cout, rng), h_(h), w_in_(w), cin_(cin), ks_(k), stride_(stride),
        pad_(pad) {
    p_ = (h + 2 * pad - k) / stride + 1;
    q_ = (w + 2 * pad - k) / stride + 1;
  }
  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    EdgeScope scope(ctx, *this);
    batch_ = x.n;
    geometry_ = ConvGeometry{batch_, h_, w_in_, cin_, ks_, ks_, stride_, pad_};
    direct_ = direct_allowed(ctx, train);
    if (direct_) return forward_direct(std::move(x), ctx);
    Grid xq = input_grid(x, ctx);
    note_sqnr(ctx, name_, 0, x.v.data(), x.v.size(), xq);
    Grid cols = xq.like();
    if (!xq.deferred) {
      cols.v = std::move(cols_.v);  // reuse last step's buffer: im2col writes every element
      cols.v.resize(static_cast<std::size_t>(batch_) * p_ * q_ * k_);
      im2col(shape(), xq.v.data(), cols.v.data());
    }
    if (active_grain(ctx, 0) != kScaleTensor) {  // finer scales of A: the FP32 im2col matrix too
      cols_f32_.resize(static_cast<std::size_t>(batch_) * p_ * q_ * k_);
      im2col(shape(), x.v.data(), cols_f32_.data());
    }
    // The input's buffer becomes the next input gradient (fp32: the input moved into xq).
    spare_in_ = x.v.empty() ? std::move(xq.v) : std::move(x.v);
    Tensor y = output_tensor();
    forward_gemm(ctx, batch_ * p_ * q_, std::move(cols), y.v.data());
    return y;
  }
  Tensor backward(Tensor dy, StepContext& ctx) override {
    EdgeScope scope(ctx, *this);
    if (direct_) return backward_direct(std::move(dy), ctx);
    backward_gemm(ctx, dy.v.data(), !first, &dcols_);
    spare_out_ = std::move(dy.v);
    Tensor dx = input_gradient();
    if (first) return dx;
    dx.v.assign(dx.v.size(), 0.0f);
    col2im(shape(), dcols_.data(), dx.v.data());  // a scatter-add (no multiplications)
    return dx;
  }

 private:
  // The output, in the last output gradient's buffer (the GEMM or kernel writes every element).
  Tensor output_tensor() {
    Tensor y;
    y.n = batch_;
    y.h = p_;
    y.w = q_;
    y.c = n_;
    y.v = std::move(spare_out_);
    y.v.resize(static_cast<std::size_t>(batch_) * p_ * q_ * n_);
    return y;
  }
  // The input gradient's shape, in the input's buffer sized to it (values left to the caller);
  // the first layer's has no values.
  Tensor input_gradient() {
    Tensor dx;
    dx.n = batch_;
    dx.h = h_;
    dx.w = w_in_;
    dx.c = cin_;
    if (first) return dx;
    dx.v = std::move(spare_in_);
    dx.v.resize(static_cast<std::size_t>(batch_) * h_ * w_in_ * cin_);
    return dx;
  }
  // The direct kernels (training/conv_direct.h) in place of im2col + GEMM + col2im, in a step
  // that is not traced (a trace records the im2col operands) and that this run's chooser allows:
  // FP32 where the chooser found the BLAS's bits for every GEMM this layer runs; an integer
  // arithmetic with per-tensor scales always (its sums are exact in any order), unless only the
  // portable build runs here (slower than the BLAS; taken only under --conv-path direct).
  // Evaluation (no backward) needs only the forward GEMM.
  bool direct_allowed(StepContext& ctx, bool train) const {
    if (ctx.trace != nullptr || ctx.conv == nullptr || ctx.conv->path() == ConvPath::kBlas) return false;
    if (ctx.arith == NumFormat::kFp32) {
      return ctx.conv->direct(ConvPathChooser::kForward, shape(), n_) &&
             (!train || (ctx.conv->direct(ConvPathChooser::kBackwardWeight, shape(), n_) &&
                         (first || ctx.conv->direct(ConvPathChooser::kBackwardData, shape(), n_))));
    }
    if (ctx.arith != NumFormat::kPot4 && ctx.arith != NumFormat::kInt8 && ctx.arith != NumFormat::kInt4) return false;
    if (std::strcmp(conv_direct_isa(), "scalar") == 0 && ctx.conv->path() != ConvPath::kDirect) return false;
    for (int slot = 0; slot < 3; ++slot) {
      if (active_grain(ctx, slot) != kScaleTensor) return false;  // finer scales: grouped GEMMs
    }
    return true;
  }
  // The operations of forward(): the same quantizations and statistics in the same order.
  Tensor forward_direct(Tensor x, StepContext& ctx) {
    Grid xq = input_grid(x, ctx);
    note_sqnr(ctx, name_, 0, x.v.data(), x.v.size(), xq);
    xpad_.resize(padded_size(shape()));
    pad_input(shape(), xq.v.data(), xpad_.data());
    xgrid_ = xq.like();  // the input's format and scale, for the weight gradient
    spare_in_ = x.v.empty() ? std::move(xq.v) : std::move(x.v);  // becomes the input gradient's buffer
    m_ = batch_ * p_ * q_;
    Tensor y = output_tensor();
    wq_ = quantize_operand(w_.data(), w_.size(), Role::kWeight, ctx, 0);
    note_sqnr(ctx, name_, 1, w_.data(), w_.size(), wq_);
    if (xgrid_.format == NumFormat::kFp32) {
      conv_forward_direct(shape(), n_, xpad_.data(), wq_.v.data(), y.v.data(), ctx.conv->block());
    } else {
      const IntGemmPlan plan = int_gemm_plan(name_, Phase::kFwd, xgrid_, wq_, k_);
      if (plan.one_chunk) {
        conv_forward_direct(shape(), n_, xpad_.data(), wq_.v.data(), y.v.data());  // exact: any blocks
        plan.dequantize(y.v.data(), y.v.size());
        ctx.conv->record_exact(ConvPathChooser::kForward, shape(), n_, true);
      } else {
        ctx.conv->record_exact(ConvPathChooser::kForward, shape(), n_, false);
        // K too long for one exact float chunk: this step takes the BLAS path (the im2col of
        // the padded input is the im2col of the input).
        direct_ = false;
        Grid cols = xgrid_.like();
        cols.v = std::move(cols_.v);
        cols.v.resize(static_cast<std::size_t>(m_) * k_);
        im2col(padded_shape(), xpad_.data(), cols.v.data());
        cols_ = std::move(cols);
        linear_gemm(ctx, name_, geometry(), Phase::kFwd, false, false, m_, n_, k_, cols_, wq_, y.v.data(), LayerType::kFc);
      }
    }
    add_bias(ctx, m_, y.v.data());
    return y;
  }
  // The operations of backward() after forward_direct.
  Tensor backward_direct(Tensor dy, StepContext& ctx) {
    const std::size_t mn = static_cast<std::size_t>(m_) * n_;
    const Grid g = quantize_operand(dy.v.data(), mn, Role::kError, ctx, rounding_key(ctx, index_));
    note_sqnr(ctx, name_, 2, dy.v.data(), mn, g);
    const bool fp32 = g.format == NumFormat::kFp32;
    if (!first) {
      dxpad_.assign(padded_size(shape()), 0.0f);
      IntGemmPlan plan;
      float factor = 1.0f;
      if (!fp32) plan = int_gemm_plan(name_, Phase::kBwdData, g, wq_, n_);
      const bool direct = fp32 || (plan.one_chunk && plan.as_multiplier(&factor));
      if (!fp32) ctx.conv->record_exact(ConvPathChooser::kBackwardData, shape(), n_, direct);
      if (direct) {
        conv_backward_data_direct(shape(), n_, g.v.data(), wq_.v.data(), dxpad_.data(),
                                  fp32 ? ctx.conv->block() : kDefaultReductionBlock, factor);
      } else {  // the BLAS path's GEMM and col2im (on the padded gradient: the same additions)
        dcols_.resize(static_cast<std::size_t>(m_) * k_);
        linear_gemm(ctx, name_, geometry(), Phase::kBwdData, false, true, m_, k_, n_, g, wq_, dcols_.data(),
                    LayerType::kFc);
        col2im(padded_shape(), dcols_.data(), dxpad_.data());
      }
    }
    if (fp32) {
      conv_backward_weight_direct(shape(), n_, xpad_.data(), g.v.data(), dw_.data(), ctx.conv->block());
    } else {
      const IntGemmPlan plan = int_gemm_plan(name_, Phase::kBwdWeight, xgrid_, g, m_);
      ctx.conv->record_exact(ConvPathChooser::kBackwardWeight, shape(), n_, true);
      if (plan.one_chunk) {
        conv_backward_weight_direct(shape(), n_, xpad_.data(), g.v.data(), dw_.data());  // exact: any blocks
        plan.dequantize(dw_.data(), dw_.size());
      } else {
        dw_sum_.resize(dw_.size());
        conv_backward_weight_exact(shape(), n_, xpad_.data(), g.v.data(), plan.chunk, dw_sum_.data());
        plan.dequantize(dw_sum_.data(), dw_.data(), dw_.size());
      }
    }
    bias_grad(ctx, dy.v.data());
    spare_out_ = std::move(dy.v);
    Tensor dx = input_gradient();
    if (!first) crop_input(shape(), dxpad_.data(), dx.v.data());
    return dx;
  }
  // The convolution on the zero-padded input: the same taps, no padding left to add.
  ConvShape padded_shape() const { return ConvShape{batch_, h_ + 2 * pad_, w_in_ + 2 * pad_, cin_, ks_, stride_, 0}; }
  ConvShape shape() const { return ConvShape{batch_, h_, w_in_, cin_, ks_, stride_, pad_}; }
  const ConvGeometry* geometry() const override { return &geometry_; }

  int h_, w_in_, cin_, ks_, stride_, pad_, p_ = 0, q_ = 0, batch_ = 0;
  ConvGeometry geometry_;
  // Buffers kept across steps (no allocation or zero-filling per step): the input gradient's,
  // the output's, and the im2col gradient.
  std::vector<float> spare_in_, spare_out_, dcols_;
  bool direct_ = false;               // this step's GEMMs take the direct kernels
  std::vector<float> xpad_, dxpad_;   // the direct path's padded input (on its grid) and input gradient
  Grid xgrid_;                        // the padded input's format and scale (no values)
  std::vector<double> dw_sum_;        // exact weight-gradient sums of an integer arithmetic
};

class Relu : public Layer {
 public:
  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    mask_.resize(x.size());
    relu_forward(x.v.data(), mask_.data(), x.size());
    if (train) record_op(ctx, relu_op("relu", OpPhase::kFwd, u64(x.size())));
    return x;
  }
  Tensor backward(Tensor dy, StepContext& ctx) override {
    relu_backward(dy.v.data(), mask_.data(), dy.size());
    record_op(ctx, relu_op("relu", OpPhase::kBwd, u64(dy.size())));
    return dy;
  }
  std::string name() const override { return "relu"; }

 private:
  std::vector<std::uint8_t> mask_;
};

// Batch normalisation per channel (NHWC: the last dimension), FP32 throughout: it is not a GEMM,
// so it is neither quantized nor part of the linear layers' energy. Training normalises with the
// batch's mean and (biased) variance and updates running statistics (momentum 0.1, the
// unbiased variance, as PyTorch); evaluation uses the running statistics. Affine gamma, beta.
class BatchNorm : public Layer {
 public:
  BatchNorm(std::string name, int channels)
      : name_(std::move(name)), c_(channels), gamma_(channels, 1.0f), beta_(channels, 0.0f), dgamma_(channels),
        dbeta_(channels), running_mean_(channels, 0.0f), running_var_(channels, 1.0f) {}

  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    const std::size_t c = static_cast<std::size_t>(c_), rows = x.v.size() / c;
    if (train) record_op(ctx, batchnorm_op(name_, OpPhase::kFwd, u64(x.v.size()), u64(c)));
    xhat_.resize(x.v.size());
    inv_std_.assign(c, 0.0f);
    std::vector<double> mean(c, 0.0), var(c, 0.0);
    if (train) {
      batchnorm_moments(x.v.data(), rows, c, mean.data(), var.data());
      for (std::size_t j = 0; j < c; ++j) {
        const double unbiased = rows > 1 ? var[j] * static_cast<double>(rows) / static_cast<double>(rows - 1) : var[j];
        running_mean_[j] = static_cast<float>(0.9 * running_mean_[j] + 0.1 * mean[j]);
        running_var_[j] = static_cast<float>(0.9 * running_var_[j] + 0.1 * unbiased);
      }
    } else {
      for (std::size_t j = 0; j < c; ++j) {
        mean[j] = running_mean_[j];
        var[j] = running_var_[j];
      }
    }
    for (std::size_t j = 0; j < c; ++j) inv_std_[j] = static_cast<float>(1.0 / std::sqrt(var[j] + 1e-5));
    batchnorm_normalize(x.v.data(), xhat_.data(), rows, c, mean.data(), inv_std_.data(), gamma_.data(), beta_.data());
    return x;
  }

  // dx = gamma / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)), per channel.
  Tensor backward(Tensor dy, StepContext& ctx) override {
    const std::size_t c = static_cast<std::size_t>(c_), rows = dy.v.size() / c;
    record_op(ctx, batchnorm_op(name_, OpPhase::kBwd, u64(dy.v.size()), u64(c)));
    std::vector<double> sum_dy(c, 0.0), sum_dy_xhat(c, 0.0);
    batchnorm_grad_sums(dy.v.data(), xhat_.data(), rows, c, sum_dy.data(), sum_dy_xhat.data());
    // Per channel: gamma / sigma (a float product) and mean(dy), as the element formula below
    // would compute them.
    const double n = static_cast<double>(rows);
    std::vector<float> scale(c);
    std::vector<double> mean_dy(c);
    for (std::size_t j = 0; j < c; ++j) {
      dbeta_[j] = static_cast<float>(sum_dy[j]);
      dgamma_[j] = static_cast<float>(sum_dy_xhat[j]);
      scale[j] = gamma_[j] * inv_std_[j];
      mean_dy[j] = sum_dy[j] / n;
    }
    // dy = gamma / sigma * (dy - sum(dy) / n - xhat * sum(dy xhat) / n)
    batchnorm_grad_apply(dy.v.data(), xhat_.data(), rows, c, scale.data(), mean_dy.data(), sum_dy_xhat.data(), n);
    return dy;
  }

  std::string name() const override { return name_; }
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params() override {
    return {{&gamma_, &dgamma_}, {&beta_, &dbeta_}};
  }

 private:
  std::string name_;
  int c_;
  std::vector<float> gamma_, beta_, dgamma_, dbeta_, running_mean_, running_var_, xhat_, inv_std_;
};

class MaxPool : public Layer {
 public:
  explicit MaxPool(int k) : k_(k) {}
  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    in_.n = x.n;
    in_.h = x.h;
    in_.w = x.w;
    in_.c = x.c;
    Tensor y;
    y.n = x.n;
    y.h = x.h / k_;
    y.w = x.w / k_;
    y.c = x.c;
    y.v.resize(static_cast<std::size_t>(y.n) * y.h * y.w * y.c);
    arg_.resize(y.v.size());
    if (train) {
      record_op(ctx, maxpool_op("maxpool", OpPhase::kFwd, u64(x.v.size()), u64(y.v.size()), u64(static_cast<std::size_t>(k_) * k_)));
    }
    // Per output element: the window's first tap, then each later tap (r, s in order) that is
    // greater (the first of equal maxima wins; a NaN first tap stays).
    const std::size_t ch = static_cast<std::size_t>(x.c);
    for (int b = 0; b < y.n; ++b) {
      for (int p = 0; p < y.h; ++p) {
        for (int q = 0; q < y.w; ++q) {
          const std::size_t o = ((static_cast<std::size_t>(b) * y.h + p) * y.w + q) * ch;
          float* yv = y.v.data() + o;
          std::size_t* arg = arg_.data() + o;
          for (int r = 0; r < k_; ++r) {
            for (int s = 0; s < k_; ++s) {
              const std::size_t i = ((static_cast<std::size_t>(b) * x.h + p * k_ + r) * x.w + q * k_ + s) * ch;
              const float* xv = x.v.data() + i;
              const bool first_tap = r == 0 && s == 0;
              for (std::size_t c = 0; c < ch; ++c) {
                if (first_tap || xv[c] > yv[c]) {
                  yv[c] = xv[c];
                  arg[c] = i + c;
                }
              }
            }
          }
        }
      }
    }
    return y;
  }
  Tensor backward(Tensor dy, StepContext& ctx) override {
    Tensor dx = in_;
    dx.v.assign(static_cast<std::size_t>(in_.n) * in_.h * in_.w * in_.c, 0.0f);
    for (std::size_t o = 0; o < dy.v.size(); ++o) dx.v[arg_[o]] += dy.v[o];
    record_op(ctx, maxpool_op("maxpool", OpPhase::kBwd, u64(dx.v.size()), u64(dy.v.size()), u64(static_cast<std::size_t>(k_) * k_)));
    return dx;
  }
  std::string name() const override { return "maxpool"; }

 private:
  int k_;
  Tensor in_;
  std::vector<std::size_t> arg_;
};

// Global average pooling: n x h x w x c -> n x 1 x 1 x c.
class GlobalAvgPool : public Layer {
 public:
  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    h_ = x.h;
    w_ = x.w;
    const std::size_t c = static_cast<std::size_t>(x.c), px = static_cast<std::size_t>(x.h) * x.w;
    Tensor y;
    y.n = x.n;
    y.c = x.c;
    y.v.assign(static_cast<std::size_t>(x.n) * c, 0.0f);
    for (int b = 0; b < x.n; ++b) {
      for (std::size_t p = 0; p < px; ++p) {
        for (std::size_t j = 0; j < c; ++j) y.v[b * c + j] += x.v[(b * px + p) * c + j];
      }
    }
    for (auto& v : y.v) v /= static_cast<float>(px);
    if (train) record_op(ctx, avgpool_op("gap", OpPhase::kFwd, u64(x.v.size()), u64(y.v.size())));
    return y;
  }
  Tensor backward(Tensor dy, StepContext& ctx) override {
    const std::size_t c = static_cast<std::size_t>(dy.c), px = static_cast<std::size_t>(h_) * w_;
    Tensor dx;
    dx.n = dy.n;
    dx.h = h_;
    dx.w = w_;
    dx.c = dy.c;
    dx.v.resize(static_cast<std::size_t>(dy.n) * px * c);
    for (int b = 0; b < dy.n; ++b) {
      for (std::size_t p = 0; p < px; ++p) {
        for (std::size_t j = 0; j < c; ++j) dx.v[(b * px + p) * c + j] = dy.v[b * c + j] / static_cast<float>(px);
      }
    }
    record_op(ctx, avgpool_op("gap", OpPhase::kBwd, u64(dx.v.size()), u64(dy.v.size())));
    return dx;
  }
  std::string name() const override { return "gap"; }

 private:
  int h_ = 1, w_ = 1;
};

// A basic residual block as in the ResNets of the paper: 3x3 conv (stride s) - bn - relu - 3x3
// conv - bn, plus the shortcut (identity, or a 1x1 conv with stride s and bn when the shape
// changes), then relu. Its convolutions are linear layers like any other: quantized, traced.
class ResidualBlock : public Layer {
 public:
  ResidualBlock(const std::string& name, int& linear, int h, int w, int cin, int cout, int stride, SplitMix64& rng)
      : name_(name) {
    main_.push_back(std::make_unique<Conv2d>(name + ".conv1", linear++, h, w, cin, cout, 3, stride, 1, rng));
    main_.push_back(std::make_unique<BatchNorm>(name + ".bn1", cout));
    main_.push_back(std::make_unique<Relu>());
    const int ho = (h + 2 - 3) / stride + 1, wo = (w + 2 - 3) / stride + 1;
    main_.push_back(std::make_unique<Conv2d>(name + ".conv2", linear++, ho, wo, cout, cout, 3, 1, 1, rng));
    main_.push_back(std::make_unique<BatchNorm>(name + ".bn2", cout));
    if (stride != 1 || cin != cout) {
      shortcut_.push_back(std::make_unique<Conv2d>(name + ".shortcut", linear++, h, w, cin, cout, 1, stride, 0, rng));
      shortcut_.push_back(std::make_unique<BatchNorm>(name + ".shortcut_bn", cout));
    }
  }

  Tensor forward(Tensor x, StepContext& ctx, bool train) override {
    Tensor s = copy(x);  // the shortcut's input (a copy: the main path consumes x)
    const std::size_t before = ctx.ops != nullptr ? ctx.ops->size() : 0;
    for (auto& l : main_) x = l->forward(std::move(x), ctx, train);
    for (auto& l : shortcut_) s = l->forward(std::move(s), ctx, train);
    // The skip input, which the addition reads again: the projection's batch norm output, or the
    // block's input (the output of the operation before the block), saved when fused.
    if (train && ctx.ops != nullptr && !ctx.ops->empty()) {
      if (!shortcut_.empty()) {
        save_output(ctx.ops->back());
      } else if (before > 0) {
        save_output((*ctx.ops)[before - 1]);
      }
    }
    mask_.resize(x.v.size());
    add_relu_forward(x.v.data(), s.v.data(), mask_.data(), x.size());
    if (train) {
      record_op(ctx, residual_op(name_ + ".add", OpPhase::kFwd, u64(x.size())));
      record_op(ctx, relu_op(name_ + ".relu", OpPhase::kFwd, u64(x.size())));
    }
    spare_ = std::move(s.v);
    return x;
  }

  Tensor backward(Tensor dy, StepContext& ctx) override {
    relu_backward(dy.v.data(), mask_.data(), dy.size());
    record_op(ctx, relu_op(name_ + ".relu", OpPhase::kBwd, u64(dy.size())));
    Tensor ds = copy(dy);
    for (auto it = main_.rbegin(); it != main_.rend(); ++it) dy = (*it)->backward(std::move(dy), ctx);
    for (auto it = shortcut_.rbegin(); it != shortcut_.rend(); ++it) ds = (*it)->backward(std::move(ds), ctx);
    float* d = dy.v.data();
    const float* e = ds.v.data();
    for (std::size_t i = 0; i < dy.size(); ++i) d[i] += e[i];
    record_op(ctx, residual_op(name_ + ".add", OpPhase::kBwd, u64(dy.size())));
    spare_ = std::move(ds.v);
    return dy;
  }

  std::string name() const override { return name_; }
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params() override {
    std::vector<std::pair<std::vector<float>*, std::vector<float>*>> p;
    for (auto* path : {&main_, &shortcut_}) {
      for (auto& l : *path) {
        auto q = l->params();
        p.insert(p.end(), q.begin(), q.end());
      }
    }
    return p;
  }

 private:
  // A copy of t in the buffer kept from the last pass (no allocation per step).
  Tensor copy(const Tensor& t) {
    Tensor c;
    c.v = std::move(spare_);
    c.v.assign(t.v.begin(), t.v.end());
    c.n = t.n;
    c.h = t.h;
    c.w = t.w;
    c.c = t.c;
    return c;
  }

  std::string name_;
  std::vector<std::unique_ptr<Layer>> main_, shortcut_;
  std::vector<std::uint8_t> mask_;
  std::vector<float> spare_;
};

class Flatten : public Layer {
 public:
  Tensor forward(Tensor x, StepContext&, bool) override {
    shape_.h = x.h;
    shape_.w = x.w;
    shape_.c = x.c;
    x.c = x.h * x.w * x.c;
    x.h = x.w = 1;
    return x;
  }
  Tensor backward(Tensor dy, StepContext&) override {
    dy.h = shape_.h;
    dy.w = shape_.w;
    dy.c = shape_.c;
    return dy;
  }
  std::string name() const override { return "flatten"; }

 private:
  Tensor shape_;
};

int parse_int(const std::string& s, const std::string& spec) {
  try {
    std::size_t used = 0;
    int v = std::stoi(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (...) {
  }
  throw InputError(fmt::format("network spec \"{}\": expected a positive integer, got \"{}\"", spec, s));
}

}  // namespace

std::string network_spec(const std::string& name) {
  if (name == "mlp") return "flatten,fc:256,relu,fc:128,relu,fc:10";
  if (name == "cnn") return "conv:8:5:1:2,relu,maxpool:2,conv:16:5:1:2,relu,maxpool:2,flatten,fc:128,relu,fc:10";
  if (name == "resnet8") return "conv:16:3:1:1,bn,relu,res:16:1,res:32:2,res:64:2,gap,fc:10";
  if (name == "cnn-bn") {
    return "conv:8:5:1:2,bn,relu,maxpool:2,conv:16:5:1:2,bn,relu,maxpool:2,flatten,fc:128,bn,relu,fc:10";
  }
  throw InputError(fmt::format("--model: unknown network \"{}\"; expected mlp|cnn|cnn-bn|resnet8", name));
}

namespace {
// Sizes in a spec: non-negative, multiplied saturating (a product past 2^64 is past every bound).
struct U {
  std::uint64_t v;
  template <typename T>
  explicit U(T x) : v(x < 0 ? 0 : static_cast<std::uint64_t>(x)) {}
  operator std::uint64_t() const { return v; }
};
U operator*(U a, U b) {
  std::uint64_t r = 0;
  return U(__builtin_mul_overflow(a.v, b.v, &r) ? ~std::uint64_t{0} : r);
}
U operator+(U a, U b) {
  std::uint64_t r = 0;
  return U(__builtin_add_overflow(a.v, b.v, &r) ? ~std::uint64_t{0} : r);
}
}  // namespace

Network::Network(const std::string& spec, int h, int w, int c, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::stringstream ss(spec);
  std::string item;
  int fc = 0, conv = 0, linear = 0, bn = 0, res = 0;
  bool flat = false;
  std::uint64_t params = 0;
  max_activation_elements_ = U(h) * U(w) * U(c);
  // Bounds checked before a layer is allocated, so an impossible network is one line, not an
  // allocation failure: its weights (in 64-bit arithmetic) and its output per example.
  auto check_size = [&](const std::string& what, std::uint64_t layer_params, std::uint64_t out_elements) {
    params = U(params) + U(layer_params);
    if (layer_params > kMaxNetworkParameters || params > kMaxNetworkParameters) {
      throw InputError(fmt::format("network spec \"{}\": \"{}\": the network would have {} weights, more than the "
                                   "{} the training core holds",
                                   spec, what, params, kMaxNetworkParameters));
    }
    if (out_elements > kMaxActivationElements) {
      throw InputError(fmt::format("network spec \"{}\": \"{}\": its output has {} elements per example, more than "
                                   "the {} the training core holds",
                                   spec, what, out_elements, kMaxActivationElements));
    }
    max_activation_elements_ = std::max(max_activation_elements_, out_elements);
  };
  auto out_size = [&](std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p) {
    return (in + 2 * p - k) / s + 1;
  };
  while (std::getline(ss, item, ',')) {
    std::vector<std::string> f;
    std::stringstream is(item);
    std::string part;
    while (std::getline(is, part, ':')) f.push_back(part);
    if (f.empty()) throw InputError(fmt::format("network spec \"{}\": empty layer", spec));
    const std::string& kind = f[0];
    const auto in_elements = U(h) * U(w) * U(c);
    if (kind == "fc" && f.size() == 2) {
      int out = parse_int(f[1], spec);
      check_size(item, in_elements * U(out) + U(out), U(out));
      layers_.push_back(std::make_unique<Dense>(fmt::format("fc{}", ++fc), linear++, h * w * c, out, rng));
      h = w = 1;
      c = out;
      flat = true;
    } else if (kind == "conv" && f.size() == 5) {
      if (flat) throw InputError(fmt::format("network spec \"{}\": conv after flatten", spec));
      int out = parse_int(f[1], spec), k = parse_int(f[2], spec), s = parse_int(f[3], spec);
      int p = f[4] == "0" ? 0 : parse_int(f[4], spec);
      if (k > 4096 || s > 4096 || p > 4096) {
        throw InputError(fmt::format("network spec \"{}\": \"{}\": kernel, stride and padding must be at most 4096",
                                     spec, item));
      }
      const std::int64_t oh = out_size(h, k, s, p), ow = out_size(w, k, s, p);
      if (oh < 1 || ow < 1) throw InputError(fmt::format("network spec \"{}\": \"{}\" shrinks the input to nothing", spec, item));
      check_size(item, U(k) * U(k) * U(c) * U(out) + U(out), U(oh) * U(ow) * U(out));
      check_size(item, 0, U(oh) * U(ow) * U(k) * U(k) * U(c));  // the im2col matrix of one example
      layers_.push_back(std::make_unique<Conv2d>(fmt::format("conv{}", ++conv), linear++, h, w, c, out, k, s, p, rng));
      h = static_cast<int>(oh);
      w = static_cast<int>(ow);
      c = out;
    } else if (kind == "relu" && f.size() == 1) {
      layers_.push_back(std::make_unique<Relu>());
    } else if (kind == "res" && f.size() == 3) {
      if (flat) throw InputError(fmt::format("network spec \"{}\": res after flatten", spec));
      const int out = parse_int(f[1], spec), stride = parse_int(f[2], spec);
      const U ho((h - 1) / stride + 1), wo((w - 1) / stride + 1), c64(c), o64(out);
      check_size(item, U(9) * c64 * o64 + U(9) * o64 * o64 + c64 * o64 + U(4) * o64, ho * wo * o64);
      check_size(item, 0, ho * wo * U(9) * U(std::max<std::uint64_t>(c64, o64)));  // the im2col of its 3x3 convolutions
      layers_.push_back(std::make_unique<ResidualBlock>(fmt::format("res{}", ++res), linear, h, w, c, out, stride, rng));
      h = static_cast<int>(ho.v);
      w = static_cast<int>(wo.v);
      c = out;
    } else if (kind == "gap" && f.size() == 1) {
      layers_.push_back(std::make_unique<GlobalAvgPool>());
      h = w = 1;
    } else if (kind == "bn" && f.size() == 1) {
      layers_.push_back(std::make_unique<BatchNorm>(fmt::format("bn{}", ++bn), c));
    } else if (kind == "maxpool" && f.size() == 2) {
      int k = parse_int(f[1], spec);
      layers_.push_back(std::make_unique<MaxPool>(k));
      h /= k;
      w /= k;
    } else if (kind == "flatten" && f.size() == 1) {
      layers_.push_back(std::make_unique<Flatten>());
      flat = true;
    } else {
      throw InputError(fmt::format("network spec \"{}\": unknown layer \"{}\"; expected fc:OUT, "
                                   "conv:OUT:K:STRIDE:PAD, res:OUT:STRIDE, bn, relu, maxpool:K, gap or flatten",
                                   spec, item));
    }
    if (h < 1 || w < 1) throw InputError(fmt::format("network spec \"{}\": \"{}\" shrinks the input to nothing", spec, item));
  }
  outputs_ = static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(c);
  for (auto& l : layers_) {
    if (auto* lin = dynamic_cast<LinearBase*>(l.get())) {
      lin->first = true;
      lin->edge = true;
      break;
    }
  }
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {  // the last linear layer (the classifier)
    if (auto* lin = dynamic_cast<LinearBase*>(it->get())) {
      lin->edge = true;
      break;
    }
  }
}

Tensor Network::forward(Tensor x, StepContext& ctx, bool train) {
  for (auto& l : layers_) x = l->forward(std::move(x), ctx, train);
  return x;
}

void Network::backward(Tensor g, StepContext& ctx) {
  for (std::size_t i = layers_.size(); i-- > 0;) g = layers_[i]->backward(std::move(g), ctx);
}

std::vector<std::pair<std::vector<float>*, std::vector<float>*>> Network::params() {
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> p;
  for (auto& l : layers_) {
    auto lp = l->params();
    p.insert(p.end(), lp.begin(), lp.end());
  }
  return p;
}

std::size_t Network::parameter_count() {
  std::size_t n = 0;
  for (auto& p : params()) n += p.first->size();
  return n;
}

double softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels, Tensor* dlogits, int* correct) {
  const int b = logits.n, c = logits.c;
  double loss = 0;
  int right = 0;
  if (dlogits != nullptr) {
    *dlogits = logits;
  }
  for (int i = 0; i < b; ++i) {
    const float* z = &logits.v[static_cast<std::size_t>(i) * c];
    float mx = *std::max_element(z, z + c);
    int arg = static_cast<int>(std::max_element(z, z + c) - z);
    right += arg == labels[i] ? 1 : 0;
    double sum = 0;
    for (int j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[j] - mx));
    loss += std::log(sum) - static_cast<double>(z[labels[i]] - mx);
    if (dlogits != nullptr) {
      float* d = &dlogits->v[static_cast<std::size_t>(i) * c];
      for (int j = 0; j < c; ++j) {
        double p = std::exp(static_cast<double>(z[j] - mx)) / sum;
        d[j] = static_cast<float>((p - (j == labels[i] ? 1.0 : 0.0)) / b);
      }
    }
  }
  if (correct != nullptr) *correct = right;
  return loss / b;
}

}  // namespace mfsim
