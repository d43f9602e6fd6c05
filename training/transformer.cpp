#include "training/transformer.h"

#include "traces/network_ops.h"

#include "training/policy.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <set>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/error.h"
#include "models/rng.h"
#include "traces/trace_writer.h"
#include "training/exact_gemm.h"
#include "training/quant_gemm.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

SeqData make_reverse_task(const TransformerConfig& c, int count, std::uint64_t seed, bool test,
                          const SeqData* exclude) {
  if (c.seq < 4 || c.seq % 2 != 0) {
    throw InputError(fmt::format("transformer: seq: the reverse task needs an even length of at least 4, got {}", c.seq));
  }
  const int L = c.seq / 2, symbols = c.vocab - 1, sep = c.vocab - 1;
  // The fixed translation table of the task (independent of the run's seed): a target token
  // depends on a source token and its left neighbour, like a word translated in context.
  std::vector<int> table(static_cast<std::size_t>(symbols) * symbols);
  SplitMix64 prng(0x7a5c0ffee);
  for (auto& t : table) t = static_cast<int>(prng.below(static_cast<std::uint64_t>(symbols)));
  std::set<std::vector<int>> seen;
  if (exclude != nullptr) {
    for (int s = 0; s < exclude->n; ++s) {
      const int* x = &exclude->input[static_cast<std::size_t>(s) * exclude->seq];
      seen.insert(std::vector<int>(x, x + L));
    }
  }
  if (test) {  // there must be enough sources outside the training set (else the draw never ends)
    double possible = 1;
    for (int i = 0; i < L && possible < 1e18; ++i) possible *= symbols;
    if (possible - static_cast<double>(seen.size()) < static_cast<double>(count)) {
      throw InputError(fmt::format("transformer: the task has {:.0f} distinct sources ({} symbols, {} positions) and "
                                   "the training set uses {}: too few left for {} test sequences; use a longer seq, a "
                                   "larger vocab or fewer --train-examples",
                                   possible, symbols, L, seen.size(), count));
    }
  }
  SplitMix64 rng(seed * 2 + (test ? 1 : 0) + 0x51ab);
  SeqData d;
  d.n = count;
  d.seq = c.seq;
  d.input.assign(static_cast<std::size_t>(count) * c.seq, 0);
  d.target.assign(static_cast<std::size_t>(count) * c.seq, -1);
  for (int s = 0; s < count; ++s) {
    std::vector<int> src(static_cast<std::size_t>(L));
    do {
      for (auto& t : src) t = static_cast<int>(rng.below(static_cast<std::uint64_t>(symbols)));
    } while (test && seen.count(src) != 0);
    int* x = &d.input[static_cast<std::size_t>(s) * c.seq];
    int* y = &d.target[static_cast<std::size_t>(s) * c.seq];
    for (int i = 0; i < L; ++i) x[i] = src[static_cast<std::size_t>(i)];
    x[L] = sep;
    for (int i = 0; i < L; ++i) {
      const int j = L - 1 - i;  // the mirrored source position
      const int left = j > 0 ? src[static_cast<std::size_t>(j - 1)] : 0;
      const int t = table[static_cast<std::size_t>(src[static_cast<std::size_t>(j)]) * symbols + left];
      y[L + i] = t;                    // predicted at position L + i (after the separator and i tokens)
      if (L + 1 + i < c.seq) x[L + 1 + i] = t;
    }
  }
  return d;
}

namespace {

using ParamList = std::vector<std::pair<std::vector<float>*, std::vector<float>*>>;

void init_uniform(std::vector<float>& w, double bound, SplitMix64& rng) {
  for (auto& x : w) x = static_cast<float>((rng.uniform() * 2.0 - 1.0) * bound);
}

// A linear layer y = x W + b whose three GEMMs run in the step's arithmetic.
struct Linear {
  std::string name;
  int index = 0, in = 0, out = 0, m = 0;
  std::vector<float> w, b, dw, db;
  Grid xq, wq;
  std::vector<float> xf;          // the FP32 input, kept only with finer scales of A
  bool fa = false, fw = false, fg = false;  // finer scales of A, W, G in this step

  Linear(std::string n, int idx, int i, int o, SplitMix64& rng, double gain = 1.0)
      : name(std::move(n)), index(idx), in(i), out(o), w(static_cast<std::size_t>(i) * o), b(o, 0.0f),
        dw(w.size()), db(o) {
    init_uniform(w, gain * std::sqrt(6.0 / (i + o)), rng);
  }
  // y (m x out) from the quantized input (m x in).
  // `x32`: the FP32 input (m x in), kept for finer scales (StepContext::scale_grain).
  void forward(Grid x, const float* x32, int rows, float* y, StepContext& ctx) {
    m = rows;
    xq = std::move(x);
    wq = quantize_operand(w.data(), w.size(), Role::kWeight, ctx, 0);
    fa = active_grain(ctx, 0) != kScaleTensor;
    fw = active_grain(ctx, 1) != kScaleTensor;
    fg = active_grain(ctx, 2) != kScaleTensor;
    if (fa) xf.assign(x32, x32 + static_cast<std::size_t>(m) * in);
    note_sqnr(ctx, name, 0, x32, static_cast<std::size_t>(m) * in, xq);
    note_sqnr(ctx, name, 1, w.data(), w.size(), wq);
    const GemmSource sa{xf.data(), Role::kActivation}, sw{w.data(), Role::kWeight};
    linear_gemm(ctx, name, nullptr, Phase::kFwd, false, false, m, out, in, xq, wq, y, LayerType::kFc, fa ? &sa : nullptr,
                fw ? &sw : nullptr);
    for (int r = 0; r < m; ++r) {
      for (int j = 0; j < out; ++j) y[static_cast<std::size_t>(r) * out + j] += b[static_cast<std::size_t>(j)];
    }
    record_op(ctx, bias_op(name, OpPhase::kFwd, static_cast<std::uint64_t>(m) * out, static_cast<std::uint64_t>(out)));
  }
  // dy (m x out); dx (m x in) is added to when not null.
  void backward(const float* dy, float* dx_add, StepContext& ctx) {
    Grid g = quantize_operand(dy, static_cast<std::size_t>(m) * out, Role::kError, ctx, rounding_key(ctx, index));
    note_sqnr(ctx, name, 2, dy, static_cast<std::size_t>(m) * out, g);
    const GemmSource sa{xf.data(), Role::kActivation}, sw{w.data(), Role::kWeight},
        sg{dy, Role::kError, -1, rounding_key(ctx, index)};
    if (dx_add != nullptr) {
      std::vector<float> dx(static_cast<std::size_t>(m) * in);
      linear_gemm(ctx, name, nullptr, Phase::kBwdData, false, true, m, in, out, g, wq, dx.data(), LayerType::kFc,
                  fg ? &sg : nullptr, fw ? &sw : nullptr);
      for (std::size_t i = 0; i < dx.size(); ++i) dx_add[i] += dx[i];
    }
    linear_gemm(ctx, name, nullptr, Phase::kBwdWeight, true, false, in, out, m, xq, g, dw.data(), LayerType::kFc,
                fa ? &sa : nullptr, fg ? &sg : nullptr);
    std::fill(db.begin(), db.end(), 0.0f);
    for (int r = 0; r < m; ++r) {
      for (int j = 0; j < out; ++j) db[static_cast<std::size_t>(j)] += dy[static_cast<std::size_t>(r) * out + j];
    }
    record_op(ctx, bias_op(name, OpPhase::kBwd, static_cast<std::uint64_t>(m) * out, static_cast<std::uint64_t>(out)));
  }
  void params(ParamList& p) {
    p.emplace_back(&w, &dw);
    p.emplace_back(&b, &db);
  }
};

// LayerNorm over the last dimension (FP32, not a GEMM).
struct LayerNorm {
  int d = 0, m = 0;
  std::vector<float> gamma, beta, dgamma, dbeta, xhat, rstd;
  explicit LayerNorm(int dim) : d(dim), gamma(dim, 1.0f), beta(dim, 0.0f), dgamma(dim), dbeta(dim) {}
  void forward(const float* x, int rows, float* y) {
    m = rows;
    xhat.resize(static_cast<std::size_t>(m) * d);
    rstd.resize(static_cast<std::size_t>(m));
    for (int r = 0; r < m; ++r) {
      const float* xr = x + static_cast<std::size_t>(r) * d;
      double mean = 0, var = 0;
      for (int j = 0; j < d; ++j) mean += xr[j];
      mean /= d;
      for (int j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
      var /= d;
      const float rs = static_cast<float>(1.0 / std::sqrt(var + 1e-5));
      rstd[static_cast<std::size_t>(r)] = rs;
      for (int j = 0; j < d; ++j) {
        const float h = (xr[j] - static_cast<float>(mean)) * rs;
        xhat[static_cast<std::size_t>(r) * d + j] = h;
        y[static_cast<std::size_t>(r) * d + j] = h * gamma[static_cast<std::size_t>(j)] + beta[static_cast<std::size_t>(j)];
      }
    }
  }
  // dx (m x d) is added to.
  void backward(const float* dy, float* dx_add) {
    std::fill(dgamma.begin(), dgamma.end(), 0.0f);
    std::fill(dbeta.begin(), dbeta.end(), 0.0f);
    for (int r = 0; r < m; ++r) {
      const float* g = dy + static_cast<std::size_t>(r) * d;
      const float* h = &xhat[static_cast<std::size_t>(r) * d];
      double sum_g = 0, sum_gh = 0;
      for (int j = 0; j < d; ++j) {
        const float gg = g[j] * gamma[static_cast<std::size_t>(j)];
        sum_g += gg;
        sum_gh += gg * h[j];
        dgamma[static_cast<std::size_t>(j)] += g[j] * h[j];
        dbeta[static_cast<std::size_t>(j)] += g[j];
      }
      const float rs = rstd[static_cast<std::size_t>(r)];
      for (int j = 0; j < d; ++j) {
        const float gg = g[j] * gamma[static_cast<std::size_t>(j)];
        dx_add[static_cast<std::size_t>(r) * d + j] +=
            rs * (gg - static_cast<float>(sum_g / d) - h[j] * static_cast<float>(sum_gh / d));
      }
    }
  }
  void params(ParamList& p) {
    p.emplace_back(&gamma, &dgamma);
    p.emplace_back(&beta, &dbeta);
  }
};

// Rows [r0, r0 + rows) and columns [c0, c0 + cols) of a row-major grid of `ld` columns.
Grid slice(const Grid& g, int r0, int rows, int c0, int cols, int ld) {
  Grid s = g.like();
  s.v.resize(static_cast<std::size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    std::copy_n(&g.v[static_cast<std::size_t>(r0 + r) * ld + c0], cols, &s.v[static_cast<std::size_t>(r) * cols]);
  }
  return s;
}

// One pre-norm block: x + attn(ln1(x)), then + ffn(ln2(.)).
class Block {
 public:
  Block(const TransformerConfig& c, int i, SplitMix64& rng)
      : c_(c), i_(i), p_(fmt::format("block{}", i)), ln1_(c.d), ln2_(c.d),
        q_(p_ + ".q_proj", 100 * i + 1, c.d, c.d, rng), k_(p_ + ".k_proj", 100 * i + 2, c.d, c.d, rng),
        v_(p_ + ".v_proj", 100 * i + 3, c.d, c.d, rng),
        o_(p_ + ".out_proj", 100 * i + 4, c.d, c.d, rng, 1.0 / std::sqrt(2.0 * c.layers)),
        f1_(p_ + ".ffn1", 100 * i + 5, c.d, c.ff, rng),
        f2_(p_ + ".ffn2", 100 * i + 6, c.ff, c.d, rng, 1.0 / std::sqrt(2.0 * c.layers)) {}

  // x (m x d) in place.
  void forward(std::vector<float>& x, int batch, StepContext& ctx, bool attention_fp32) {
    batch_ = batch;
    m_ = batch * c_.seq;
    const std::size_t md = static_cast<std::size_t>(m_) * c_.d;
    std::vector<float> h(md);
    const auto e = static_cast<std::uint64_t>(md), rows = static_cast<std::uint64_t>(m_);
    ln1_.forward(x.data(), m_, h.data());
    record_op(ctx, layernorm_op(p_ + ".ln1", OpPhase::kFwd, e, rows));
    // h is quantized once and read by the three projections.
    const Grid hq = quantize_operand(h.data(), md, Role::kActivation, ctx, 0);
    q_buf_.resize(md);
    k_buf_.resize(md);
    v_buf_.resize(md);
    q_.forward(hq, h.data(), m_, q_buf_.data(), ctx);
    k_.forward(hq, h.data(), m_, k_buf_.data(), ctx);
    v_.forward(hq, h.data(), m_, v_buf_.data(), ctx);
    std::vector<float> ctx_out(md);
    attention_forward(ctx, attention_fp32, ctx_out.data());
    std::vector<float> a(md);
    o_.forward(quantize_operand(ctx_out.data(), md, Role::kActivation, ctx, 0), ctx_out.data(), m_, a.data(), ctx);
    for (std::size_t i = 0; i < md; ++i) x[i] += a[i];
    record_op(ctx, residual_op(p_ + ".add1", OpPhase::kFwd, e));
    ln2_.forward(x.data(), m_, h.data());
    record_op(ctx, layernorm_op(p_ + ".ln2", OpPhase::kFwd, e, rows));
    u_.resize(static_cast<std::size_t>(m_) * c_.ff);
    f1_.forward(quantize_operand(h.data(), md, Role::kActivation, ctx, 0), h.data(), m_, u_.data(), ctx);
    std::vector<float> r(u_.size());
    for (std::size_t i = 0; i < u_.size(); ++i) r[i] = u_[i] > 0.0f ? u_[i] : 0.0f;
    record_op(ctx, relu_op(p_ + ".ffn1.relu", OpPhase::kFwd, static_cast<std::uint64_t>(u_.size())));
    f2_.forward(quantize_operand(r.data(), r.size(), Role::kActivation, ctx, 0), r.data(), m_, a.data(), ctx);
    for (std::size_t i = 0; i < md; ++i) x[i] += a[i];
    record_op(ctx, residual_op(p_ + ".add2", OpPhase::kFwd, e));
  }

  // dx (m x d) in place: the gradient wrt the block's input.
  void backward(std::vector<float>& dx, StepContext& ctx, bool attention_fp32) {
    const std::size_t md = static_cast<std::size_t>(m_) * c_.d;
    const auto e = static_cast<std::uint64_t>(md), rows = static_cast<std::uint64_t>(m_);
    // Feed-forward branch (the residual passes dx through unchanged).
    std::vector<float> dr(u_.size(), 0.0f);
    f2_.backward(dx.data(), dr.data(), ctx);
    for (std::size_t i = 0; i < dr.size(); ++i) dr[i] = u_[i] > 0.0f ? dr[i] : 0.0f;
    record_op(ctx, relu_op(p_ + ".ffn1.relu", OpPhase::kBwd, static_cast<std::uint64_t>(dr.size())));
    std::vector<float> dh(md, 0.0f);
    f1_.backward(dr.data(), dh.data(), ctx);
    ln2_.backward(dh.data(), dx.data());  // added to dx: the residual's gradient sum
    record_op(ctx, layernorm_op(p_ + ".ln2", OpPhase::kBwd, e, rows));
    record_op(ctx, residual_op(p_ + ".add2", OpPhase::kBwd, e));
    // Attention branch.
    std::vector<float> dctx(md, 0.0f);
    o_.backward(dx.data(), dctx.data(), ctx);
    std::vector<float> dq(md, 0.0f), dk(md, 0.0f), dv(md, 0.0f);
    attention_backward(ctx, attention_fp32, dctx.data(), dq.data(), dk.data(), dv.data());
    std::fill(dh.begin(), dh.end(), 0.0f);
    v_.backward(dv.data(), dh.data(), ctx);  // the reverse of the forward order
    k_.backward(dk.data(), dh.data(), ctx);
    q_.backward(dq.data(), dh.data(), ctx);
    ln1_.backward(dh.data(), dx.data());
    record_op(ctx, layernorm_op(p_ + ".ln1", OpPhase::kBwd, e, rows));
    record_op(ctx, residual_op(p_ + ".add1", OpPhase::kBwd, e));
  }

  void params(ParamList& p) {
    ln1_.params(p);
    for (Linear* l : {&q_, &k_, &v_, &o_}) l->params(p);
    ln2_.params(p);
    f1_.params(p);
    f2_.params(p);
  }

 private:
  // The attention GEMMs in the step's arithmetic, or in FP32 (--attention-quant fp32).
  // The attention matmuls are their own layer class for a policy's per-layer precision.
  struct ArithScope {
    StepContext& ctx;
    NumFormat saved;
    LayerClassScope cls;
    ArithScope(StepContext& c, bool fp32) : ctx(c), saved(c.arith), cls(c, kAttentionLayer) {
      if (fp32) ctx.arith = NumFormat::kFp32;
    }
    ~ArithScope() { ctx.arith = saved; }
  };

  int dh() const { return c_.head_dim(); }
  // The causal softmax's rows (a row per query of each sequence and head) and the elements it
  // computes (query i sees keys 0..i).
  std::uint64_t attention_rows() const {
    return static_cast<std::uint64_t>(batch_) * static_cast<std::uint64_t>(c_.heads) * static_cast<std::uint64_t>(c_.seq);
  }
  std::uint64_t causal_elements() const {
    return static_cast<std::uint64_t>(batch_) * static_cast<std::uint64_t>(c_.heads) *
           (static_cast<std::uint64_t>(c_.seq) * (static_cast<std::uint64_t>(c_.seq) + 1) / 2);
  }

  // Writes head h's seq x dh block (row-major) of sequence b into its columns of an m x d tensor.
  void put_head(const float* block, int b, int h, float* tensor) const {
    const int S = c_.seq, D = dh();
    for (int i = 0; i < S; ++i) {
      std::copy_n(&block[static_cast<std::size_t>(i) * D], D, &tensor[static_cast<std::size_t>(b * S + i) * c_.d + h * D]);
    }
  }

  void attention_forward(StepContext& ctx, bool fp32, float* out) {
    ArithScope scope(ctx, fp32);
    const int S = c_.seq, D = dh(), H = c_.heads;
    const std::size_t md = static_cast<std::size_t>(m_) * c_.d;
    qg_ = quantize(q_buf_.data(), md, Role::kActivation, ctx, 0);
    // K and V are the right operands (the W slot of the policy's per-layer precision).
    kg_ = quantize(k_buf_.data(), md, Role::kActivation, ctx, 0, static_cast<int>(Role::kWeight));
    vg_ = quantize(v_buf_.data(), md, Role::kActivation, ctx, 0, static_cast<int>(Role::kWeight));
    note_sqnr(ctx, p_ + ".scores", 0, q_buf_.data(), md, qg_);
    note_sqnr(ctx, p_ + ".scores", 1, k_buf_.data(), md, kg_);
    note_sqnr(ctx, p_ + ".context", 1, v_buf_.data(), md, vg_);
    const std::size_t ss = static_cast<std::size_t>(S) * S;
    p_buf_.assign(static_cast<std::size_t>(batch_) * H * ss, 0.0f);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    std::vector<float> s(ss);
    for (int b = 0; b < batch_; ++b) {
      for (int h = 0; h < H; ++h) {
        const Grid qb = slice(qg_, b * S, S, h * D, D, c_.d), kb = slice(kg_, b * S, S, h * D, D, c_.d);
        linear_gemm(ctx, p_ + ".scores", nullptr, Phase::kFwd, false, true, S, S, D, qb, kb, s.data(),
                    LayerType::kMatmul);
        float* p = &p_buf_[(static_cast<std::size_t>(b) * H + h) * ss];
        for (int i = 0; i < S; ++i) {  // causal softmax of the scaled scores, row by row
          float mx = -INFINITY;
          for (int j = 0; j <= i; ++j) mx = std::max(mx, s[static_cast<std::size_t>(i) * S + j] * scale);
          double sum = 0;
          for (int j = 0; j <= i; ++j) {
            const float e = std::exp(s[static_cast<std::size_t>(i) * S + j] * scale - mx);
            p[static_cast<std::size_t>(i) * S + j] = e;
            sum += e;
          }
          for (int j = 0; j <= i; ++j) p[static_cast<std::size_t>(i) * S + j] /= static_cast<float>(sum);
        }
      }
    }
    record_op(ctx, attention_softmax_op(p_ + ".softmax", OpPhase::kFwd, causal_elements(), attention_rows()));
    pg_ = quantize(p_buf_.data(), p_buf_.size(), Role::kActivation, ctx, 0);
    note_sqnr(ctx, p_ + ".context", 0, p_buf_.data(), p_buf_.size(), pg_);
    std::vector<float> cb(static_cast<std::size_t>(S) * D);
    for (int b = 0; b < batch_; ++b) {
      for (int h = 0; h < H; ++h) {
        const Grid pb = slice(pg_, (b * H + h) * S, S, 0, S, S), vb = slice(vg_, b * S, S, h * D, D, c_.d);
        linear_gemm(ctx, p_ + ".context", nullptr, Phase::kFwd, false, false, S, D, S, pb, vb, cb.data(),
                    LayerType::kMatmul);
        put_head(cb.data(), b, h, out);
      }
    }
  }

  // dctx (m x d) -> dq, dk, dv (m x d).
  void attention_backward(StepContext& ctx, bool fp32, const float* dctx, float* dq, float* dk, float* dv) {
    ArithScope scope(ctx, fp32);
    const int S = c_.seq, D = dh(), H = c_.heads;
    const std::size_t md = static_cast<std::size_t>(m_) * c_.d, ss = static_cast<std::size_t>(S) * S;
    const Grid gc = quantize(dctx, md, Role::kError, ctx, rounding_key(ctx, 100 * i_ + 7));
    note_sqnr(ctx, p_ + ".context", 2, dctx, md, gc);
    std::vector<float> dp(p_buf_.size());
    std::vector<float> tmp(std::max(ss, static_cast<std::size_t>(S) * D));
    for (int b = 0; b < batch_; ++b) {  // dP = dC V^T (backward data of the context GEMM)
      for (int h = 0; h < H; ++h) {
        const Grid gb = slice(gc, b * S, S, h * D, D, c_.d), vb = slice(vg_, b * S, S, h * D, D, c_.d);
        linear_gemm(ctx, p_ + ".context", nullptr, Phase::kBwdData, false, true, S, S, D, gb, vb,
                    &dp[(static_cast<std::size_t>(b) * H + h) * ss], LayerType::kMatmul);
      }
    }
    for (int b = 0; b < batch_; ++b) {  // dV = P^T dC (backward weight of the context GEMM)
      for (int h = 0; h < H; ++h) {
        const Grid pb = slice(pg_, (b * H + h) * S, S, 0, S, S), gb = slice(gc, b * S, S, h * D, D, c_.d);
        linear_gemm(ctx, p_ + ".context", nullptr, Phase::kBwdWeight, true, false, S, D, S, pb, gb, tmp.data(),
                    LayerType::kMatmul);
        put_head(tmp.data(), b, h, dv);
      }
    }
    // Softmax backward (FP32): dS = scale * P (dP - rowsum(dP P)), zero where masked.
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    std::vector<float> ds(p_buf_.size(), 0.0f);
    for (std::size_t r = 0; r < static_cast<std::size_t>(batch_) * H * S; ++r) {
      const int i = static_cast<int>(r % static_cast<std::size_t>(S));
      const float* p = &p_buf_[r * S];
      const float* g = &dp[r * S];
      double dot = 0;
      for (int j = 0; j <= i; ++j) dot += static_cast<double>(p[j]) * g[j];
      for (int j = 0; j <= i; ++j) ds[r * S + j] = scale * p[j] * (g[j] - static_cast<float>(dot));
    }
    record_op(ctx, attention_softmax_op(p_ + ".softmax", OpPhase::kBwd, causal_elements(), attention_rows()));
    const Grid gs = quantize(ds.data(), ds.size(), Role::kError, ctx, rounding_key(ctx, 100 * i_ + 8));
    note_sqnr(ctx, p_ + ".scores", 2, ds.data(), ds.size(), gs);
    for (int b = 0; b < batch_; ++b) {  // dQ = dS K (backward data of the scores GEMM)
      for (int h = 0; h < H; ++h) {
        const Grid sb = slice(gs, (b * H + h) * S, S, 0, S, S), kb = slice(kg_, b * S, S, h * D, D, c_.d);
        linear_gemm(ctx, p_ + ".scores", nullptr, Phase::kBwdData, false, false, S, D, S, sb, kb, tmp.data(),
                    LayerType::kMatmul);
        put_head(tmp.data(), b, h, dq);
      }
    }
    for (int b = 0; b < batch_; ++b) {  // dK^T = Q^T dS (backward weight of the scores GEMM)
      for (int h = 0; h < H; ++h) {
        const Grid qb = slice(qg_, b * S, S, h * D, D, c_.d), sb = slice(gs, (b * H + h) * S, S, 0, S, S);
        linear_gemm(ctx, p_ + ".scores", nullptr, Phase::kBwdWeight, true, false, D, S, S, qb, sb, tmp.data(),
                    LayerType::kMatmul);
        for (int j = 0; j < D; ++j) {
          for (int i = 0; i < S; ++i) {
            dk[static_cast<std::size_t>(b * S + i) * c_.d + h * D + j] = tmp[static_cast<std::size_t>(j) * S + i];
          }
        }
      }
    }
  }

  TransformerConfig c_;
  int i_;
  std::string p_;
  LayerNorm ln1_, ln2_;
  Linear q_, k_, v_, o_, f1_, f2_;
  int batch_ = 0, m_ = 0;
  std::vector<float> q_buf_, k_buf_, v_buf_, p_buf_, u_;
  Grid qg_, kg_, vg_, pg_;
};

}  // namespace

class TransformerModel::Impl {
 public:
  Impl(const TransformerConfig& c, std::uint64_t seed) : c_(c), lnf_(c.d) {
    SplitMix64 rng(seed);
    tok_.resize(static_cast<std::size_t>(c.vocab) * c.d);
    pos_.resize(static_cast<std::size_t>(c.seq) * c.d);
    init_uniform(tok_, 0.1, rng);
    init_uniform(pos_, 0.1, rng);
    dtok_.resize(tok_.size());
    dpos_.resize(pos_.size());
    for (int i = 0; i < c.layers; ++i) blocks_.push_back(std::make_unique<Block>(c, i, rng));
    head_ = std::make_unique<Linear>("lm_head", 99, c.d, c.vocab, rng);
  }

  // logits (batch * seq x vocab) of `batch` sequences of tokens.
  std::vector<float> forward(const int* tokens, int batch, StepContext& ctx, bool attention_fp32) {
    tokens_.assign(tokens, tokens + static_cast<std::size_t>(batch) * c_.seq);
    m_ = batch * c_.seq;
    std::vector<float> x(static_cast<std::size_t>(m_) * c_.d);
    for (int r = 0; r < m_; ++r) {
      const float* t = &tok_[static_cast<std::size_t>(tokens_[static_cast<std::size_t>(r)]) * c_.d];
      const float* p = &pos_[static_cast<std::size_t>(r % c_.seq) * c_.d];
      for (int j = 0; j < c_.d; ++j) x[static_cast<std::size_t>(r) * c_.d + j] = t[j] + p[j];
    }
    record_op(ctx, embedding_op("embedding", OpPhase::kFwd, static_cast<std::uint64_t>(x.size()), true));
    for (auto& b : blocks_) b->forward(x, batch, ctx, attention_fp32);
    std::vector<float> h(x.size());
    lnf_.forward(x.data(), m_, h.data());
    record_op(ctx, layernorm_op("ln_f", OpPhase::kFwd, static_cast<std::uint64_t>(x.size()), static_cast<std::uint64_t>(m_)));
    std::vector<float> logits(static_cast<std::size_t>(m_) * c_.vocab);
    LayerClassScope cls(ctx, kLastLayer);  // the classifier head
    head_->forward(quantize_operand(h.data(), h.size(), Role::kActivation, ctx, 0), h.data(), m_, logits.data(), ctx);
    return logits;
  }

  void backward(const std::vector<float>& dlogits, StepContext& ctx, bool attention_fp32) {
    std::vector<float> dh(static_cast<std::size_t>(m_) * c_.d, 0.0f), dx(dh.size(), 0.0f);
    {
      LayerClassScope cls(ctx, kLastLayer);
      head_->backward(dlogits.data(), dh.data(), ctx);
    }
    lnf_.backward(dh.data(), dx.data());
    record_op(ctx, layernorm_op("ln_f", OpPhase::kBwd, static_cast<std::uint64_t>(dx.size()), static_cast<std::uint64_t>(m_)));
    for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) (*it)->backward(dx, ctx, attention_fp32);
    record_op(ctx, embedding_op("embedding", OpPhase::kBwd, static_cast<std::uint64_t>(dx.size()), true));
    std::fill(dtok_.begin(), dtok_.end(), 0.0f);
    std::fill(dpos_.begin(), dpos_.end(), 0.0f);
    for (int r = 0; r < m_; ++r) {
      float* t = &dtok_[static_cast<std::size_t>(tokens_[static_cast<std::size_t>(r)]) * c_.d];
      float* p = &dpos_[static_cast<std::size_t>(r % c_.seq) * c_.d];
      for (int j = 0; j < c_.d; ++j) {
        t[j] += dx[static_cast<std::size_t>(r) * c_.d + j];
        p[j] += dx[static_cast<std::size_t>(r) * c_.d + j];
      }
    }
  }

  ParamList params() {
    ParamList p;
    p.emplace_back(&tok_, &dtok_);
    p.emplace_back(&pos_, &dpos_);
    for (auto& b : blocks_) b->params(p);
    lnf_.params(p);
    head_->params(p);
    return p;
  }

 private:
  TransformerConfig c_;
  std::vector<float> tok_, pos_, dtok_, dpos_;
  std::vector<std::unique_ptr<Block>> blocks_;
  LayerNorm lnf_;
  std::unique_ptr<Linear> head_;
  std::vector<int> tokens_;
  int m_ = 0;
};

TransformerModel::TransformerModel(const TransformerConfig& c, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(c, seed)) {}
TransformerModel::~TransformerModel() = default;
std::vector<float> TransformerModel::forward(const int* tokens, int batch, StepContext& ctx, bool attention_fp32) {
  return impl_->forward(tokens, batch, ctx, attention_fp32);
}
void TransformerModel::backward(const std::vector<float>& dlogits, StepContext& ctx, bool attention_fp32) {
  impl_->backward(dlogits, ctx, attention_fp32);
}
std::vector<std::pair<std::vector<float>*, std::vector<float>*>> TransformerModel::params() { return impl_->params(); }

namespace {

// Softmax cross-entropy over the positions with a target; dlogits for the mean loss. Counts
// correct target tokens and sequences with every target token correct.
struct SeqLoss {
  double loss = 0;
  std::size_t tokens = 0, correct = 0, seqs_exact = 0;
};
SeqLoss seq_loss(const std::vector<float>& logits, const int* target, int batch, int seq, int vocab,
                 std::vector<float>* dlogits) {
  SeqLoss out;
  std::size_t n_targets = 0;
  for (int r = 0; r < batch * seq; ++r) n_targets += target[r] >= 0 ? 1 : 0;
  if (dlogits != nullptr) dlogits->assign(logits.size(), 0.0f);
  for (int b = 0; b < batch; ++b) {
    bool all = true;
    for (int s = 0; s < seq; ++s) {
      const int r = b * seq + s, y = target[r];
      if (y < 0) continue;
      const float* z = &logits[static_cast<std::size_t>(r) * vocab];
      const float mx = *std::max_element(z, z + vocab);
      double sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(z[v] - mx));
      out.loss += -(static_cast<double>(z[y] - mx) - std::log(sum));
      const int pred = static_cast<int>(std::max_element(z, z + vocab) - z);
      out.correct += pred == y ? 1 : 0;
      all = all && pred == y;
      ++out.tokens;
      if (dlogits != nullptr) {
        float* d = &(*dlogits)[static_cast<std::size_t>(r) * vocab];
        for (int v = 0; v < vocab; ++v) {
          d[v] = static_cast<float>(std::exp(static_cast<double>(z[v] - mx)) / sum / static_cast<double>(n_targets));
        }
        d[y] -= 1.0f / static_cast<float>(n_targets);
      }
    }
    out.seqs_exact += all ? 1 : 0;
  }
  out.loss /= static_cast<double>(std::max<std::size_t>(1, n_targets));
  return out;
}

}  // namespace

double sequence_loss(const std::vector<float>& logits, const int* target, int batch, int seq, int vocab,
                     std::vector<float>* dlogits) {
  return seq_loss(logits, target, batch, seq, vocab, dlogits).loss;
}

namespace {

// Adam with bias correction and decoupled weight decay (FP32; not a linear layer).
struct Adam {
  std::vector<std::vector<float>> m, v;
  std::uint64_t t = 0;
  void step(ParamList& params, double lr, double weight_decay) {
    if (m.empty()) {
      for (auto& p : params) {
        m.emplace_back(p.first->size(), 0.0f);
        v.emplace_back(p.first->size(), 0.0f);
      }
    }
    ++t;
    const double b1 = 0.9, b2 = 0.98, eps = 1e-9;
    const double c1 = 1.0 / (1.0 - std::pow(b1, static_cast<double>(t)));
    const double c2 = 1.0 / (1.0 - std::pow(b2, static_cast<double>(t)));
    for (std::size_t p = 0; p < params.size(); ++p) {
      auto& w = *params[p].first;
      const auto& g = *params[p].second;
      for (std::size_t i = 0; i < w.size(); ++i) {
        m[p][i] = static_cast<float>(b1 * m[p][i] + (1 - b1) * g[i]);
        v[p][i] = static_cast<float>(b2 * v[p][i] + (1 - b2) * g[i] * g[i]);
        const double upd = (m[p][i] * c1) / (std::sqrt(v[p][i] * c2) + eps) + weight_decay * w[i];
        w[i] -= static_cast<float>(lr * upd);
      }
    }
  }
};

struct EvalResult {
  double loss = 0, token_accuracy = 0, exact_match = 0;
};

EvalResult evaluate(TransformerModel& model, const SeqData& d, const TransformerConfig& c, StepContext& ctx, bool attention_fp32,
                    int batch) {
  SeqLoss total;
  double loss_sum = 0;
  StepContext eval = ctx;
  eval.trace = nullptr;
  eval.ops = nullptr;
  for (int s = 0; s < d.n; s += batch) {
    const int count = std::min(batch, d.n - s);
    const auto off = static_cast<std::size_t>(s) * d.seq;
    std::vector<float> logits = model.forward(&d.input[off], count, eval, attention_fp32);
    SeqLoss l = seq_loss(logits, &d.target[off], count, d.seq, c.vocab, nullptr);
    loss_sum += l.loss * static_cast<double>(l.tokens);
    total.tokens += l.tokens;
    total.correct += l.correct;
    total.seqs_exact += l.seqs_exact;
  }
  EvalResult r;
  r.loss = loss_sum / static_cast<double>(std::max<std::size_t>(1, total.tokens));
  r.token_accuracy = static_cast<double>(total.correct) / static_cast<double>(std::max<std::size_t>(1, total.tokens));
  r.exact_match = static_cast<double>(total.seqs_exact) / static_cast<double>(std::max(1, d.n));
  return r;
}

}  // namespace

int text_token(unsigned char ch) {
  if (ch == '\n') return 0;
  if (ch >= 32 && ch <= 126) return ch - 31;
  return kTextVocab - 1;
}

namespace {
// Non-overlapping windows of seq + 1 characters' worth of a token stream: input the first seq,
// target the next character at each position; at most `max` windows, evenly spaced (0: all).
SeqData text_windows(const std::vector<int>& tokens, int seq, int max) {
  SeqData d;
  d.seq = seq;
  const std::size_t all = tokens.size() > static_cast<std::size_t>(seq) ? (tokens.size() - 1) / seq : 0;
  const std::size_t n = max > 0 ? std::min(all, static_cast<std::size_t>(max)) : all;
  d.n = static_cast<int>(n);
  for (std::size_t w = 0; w < n; ++w) {
    const std::size_t start = (w * all / n) * static_cast<std::size_t>(seq);
    d.input.insert(d.input.end(), tokens.begin() + static_cast<std::ptrdiff_t>(start),
                   tokens.begin() + static_cast<std::ptrdiff_t>(start + seq));
    d.target.insert(d.target.end(), tokens.begin() + static_cast<std::ptrdiff_t>(start + 1),
                    tokens.begin() + static_cast<std::ptrdiff_t>(start + seq + 1));
  }
  return d;
}
}  // namespace

TextCorpus make_text_task(const std::string& dir, int seq, int max_train_windows, int max_test_windows) {
  DIR* dp = ::opendir(dir.c_str());
  if (dp == nullptr) {
    throw InputError(fmt::format("{}: text directory not found (install the Debian package fortunes: scripts/setup.sh)", dir));
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dp)) {
    const std::string n = e->d_name;
    if (n.find('.') == std::string::npos) names.push_back(n);
  }
  ::closedir(dp);
  std::sort(names.begin(), names.end());
  TextCorpus c;
  std::vector<int> train, test;
  for (const auto& n : names) {
    const std::string path = dir + "/" + n;
    std::ifstream in(path, std::ios::binary);
    if (!in) continue;  // a directory or an unreadable entry
    note_input(path);
    std::stringstream ss;
    ss << in.rdbuf();
    ++c.files;
    std::istringstream lines(ss.str());
    std::string line, fortune;
    auto flush = [&] {
      if (fortune.empty()) return;
      std::vector<int>& out = c.fortunes % 10 == 0 ? test : train;
      for (unsigned char ch : fortune) out.push_back(text_token(ch));
      out.push_back(0);  // fortunes joined by a newline
      ++c.fortunes;
      fortune.clear();
    };
    while (std::getline(lines, line)) {
      if (line == "%") {
        flush();
      } else {
        fortune += line + "\n";
      }
    }
    flush();
  }
  if (c.fortunes < 10) throw InputError(fmt::format("{}: no fortune text files (expected files of text separated by lines \"%\")", dir));
  c.train_chars = train.size();
  c.test_chars = test.size();
  c.train = text_windows(train, seq, max_train_windows);
  c.test = text_windows(test, seq, max_test_windows);
  return c;
}

ojson train_transformer(const TransformerOptions& o) {
  const TrainOptions& opt = o.train;
  const TransformerConfig& c = o.config;
  set_blas_threads(opt.threads);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const bool text = o.task == "text";
  TextCorpus corpus;
  if (text) corpus = make_text_task(o.text_dir, c.seq, o.train_examples, o.test_examples);
  const SeqData train = text ? corpus.train : make_reverse_task(c, o.train_examples, opt.seed, false);
  const SeqData test = text ? corpus.test : make_reverse_task(c, o.test_examples, opt.seed, true, &train);
  TransformerModel model(c, opt.seed);
  ParamList params = model.params();
  std::uint64_t parameter_elements = 0;  // what Adam updates (the traced step's update)
  for (auto& p : params) parameter_elements += p.first->size();
  Adam adam;
  StepContext ctx = make_context(opt);  // the same options as the other networks (--first-last is refused)

  ojson rep;
  rep["model"] = "transformer";
  rep["spec"] = to_spec(c);
  rep["task"] = text ? fmt::format("character-level language model: {} ({} files, {} fortunes; every tenth held out): "
                                   "{} training and {} test characters, windows of {}",
                                   o.text_dir, corpus.files, corpus.fortunes, corpus.train_chars, corpus.test_chars, c.seq)
                     : fmt::format("reverse-and-remap translation: {} source tokens over {} symbols, separator, target",
                                   c.seq / 2, c.vocab - 1);
  rep["quant"] = arith_name(opt.arith);
  rep["attention_quant"] = o.attention_fp32 ? "fp32" : "same";
  rep["epochs"] = opt.epochs;
  rep["batch"] = opt.batch;
  rep["seed"] = opt.seed;
  rep["optimizer"] = "adam (beta 0.9, 0.98), linear warm-up over 5% of the steps, then cosine decay";
  rep["lr"] = opt.lr;
  rep["weight_decay"] = opt.weight_decay;
  rep["wbc"] = opt.arith == NumFormat::kPot4 && opt.wbc;
  rep["prc"] = opt.arith == NumFormat::kPot4 && opt.prc;
  rep["prc_operands"] = prc_operands_name(opt);
  rep["policy"] = opt.policy.empty() ? "none" : opt.policy;
  rep["int8_operands"] = opt.arith == NumFormat::kPot4 ? int8_operands_spec(opt.int8_roles) : "";
  rep["multiplication_free"] = multiplication_free(opt) && !o.attention_fp32;
  rep["scales"] = opt.arith == NumFormat::kPot4 ? scales_spec(opt.scale_grain) : "";
  rep["apot_weights"] = opt.arith == NumFormat::kPot4 && opt.apot_weights;
  rep["apot_errors"] = opt.arith == NumFormat::kPot4 && opt.apot_errors;
  rep["prc_criterion"] = opt.prc_criterion == PrcCriterion::kL1 ? "l1" : opt.prc_criterion == PrcCriterion::kMse ? "mse" : "range";
  rep["error_scale"] = opt.error_scale_floor ? "floor" : "ceil";
  rep["threads"] = opt.threads;
  rep["train_examples"] = train.n;
  rep["test_examples"] = test.n;
  std::size_t nparams = 0;
  for (auto& p : params) nparams += p.first->size();
  rep["parameters"] = nparams;

  const int steps_per_epoch = (train.n + opt.batch - 1) / opt.batch;
  const double total_steps = static_cast<double>(steps_per_epoch) * opt.epochs;
  const double warmup = std::max(1.0, 0.05 * total_steps);
  const bool tty = ::isatty(2) != 0;
  std::vector<double> token_acc, exact, test_loss, train_loss, epoch_seconds, bpc;
  bool diverged = false;
  double first_loss = 0;  // the first step's loss: divergence is measured against it
  StepTracer tracer(opt, ctx);
  std::map<std::string, QuantNoise> sqnr;  // this epoch's samples
  ojson sqnr_per_epoch = ojson::array();
  if (opt.sqnr_every > 0 && opt.arith != NumFormat::kFp32) ctx.sqnr = &sqnr;
  std::uint64_t step = 0;
  SplitMix64 shuffle_rng(opt.seed ^ 0x5eedull);
  std::vector<int> order(static_cast<std::size_t>(train.n));
  for (int epoch = 0; epoch < opt.epochs && !diverged; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.next() % i]);
    double loss_sum = 0;
    std::size_t seen = 0;
    auto last_print = t0;
    for (int s = 0; s < steps_per_epoch; ++s, ++step) {
      const int start = s * opt.batch, count = std::min(opt.batch, train.n - start);
      std::vector<int> in, tg;
      for (int j = 0; j < count; ++j) {
        const auto off = static_cast<std::size_t>(order[static_cast<std::size_t>(start + j)]) * train.seq;
        in.insert(in.end(), &train.input[off], &train.input[off] + train.seq);
        tg.insert(tg.end(), &train.target[off], &train.target[off] + train.seq);
      }
      ctx.step = step;
      ctx.sqnr_sample = opt.sqnr_every > 0 && step % static_cast<std::uint64_t>(opt.sqnr_every) == 0;
      tracer.begin(epoch, static_cast<std::size_t>(s),
                   fmt::format("mfsim train --model {} --quant {}{} --seed {}", to_spec(c), arith_name(opt.arith),
                               o.attention_fp32 ? " --attention-quant fp32" : "", opt.seed),
                   fmt::format("training step {} of epoch 1: every GEMM of the forward and backward pass (attention: "
                               "one GEMM per sequence and head), batch {}",
                               s, count));
      const double loss = tracer.run([&] {
        std::vector<float> logits = model.forward(in.data(), count, ctx, o.attention_fp32);
        std::vector<float> dlogits;
        const SeqLoss l = seq_loss(logits, tg.data(), count, c.seq, c.vocab, &dlogits);
        // The loss over the positions with a target (its rows), each a softmax over the vocabulary.
        const auto loss_rows = static_cast<std::uint64_t>(l.tokens);
        tracer.add_op(softmax_loss_op("loss", OpPhase::kFwd, loss_rows * static_cast<std::uint64_t>(c.vocab), loss_rows));
        tracer.add_op(softmax_loss_op("loss", OpPhase::kBwd, loss_rows * static_cast<std::uint64_t>(c.vocab), loss_rows));
        if (std::isfinite(l.loss)) model.backward(dlogits, ctx, o.attention_fp32);
        return l.loss;
      });
      if (step == 0) first_loss = loss;
      if (loss_diverged(loss, first_loss)) {
        diverged = true;
        break;
      }
      tracer.add_op(adam_op(parameter_elements));
      tracer.commit();
      const double progress = static_cast<double>(step);
      const double lr = progress < warmup ? opt.lr * (progress + 1) / warmup
                                          : 0.5 * opt.lr *
                                                (1.0 + std::cos(3.14159265358979323846 * (progress - warmup) /
                                                                std::max(1.0, total_steps - warmup)));
      adam.step(params, lr, opt.weight_decay);
      loss_sum += loss * count;
      seen += static_cast<std::size_t>(count);
      if (opt.progress && tty) {
        auto now = std::chrono::steady_clock::now();
        if (std::chrono::duration<double>(now - last_print).count() > 0.5) {
          std::fprintf(stderr, "\r[transformer %s] epoch %d/%d  %zu/%d  loss %.4f  ", arith_name(opt.arith), epoch + 1,
                       opt.epochs, seen, train.n, loss_sum / static_cast<double>(seen));
          last_print = now;
        }
      }
    }
    if (diverged) break;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    epoch_seconds.push_back(secs);
    train_loss.push_back(loss_sum / static_cast<double>(seen));
    ctx.sqnr_sample = false;
    if (ctx.sqnr != nullptr) sqnr_per_epoch.push_back(sqnr_json(sqnr));
    sqnr.clear();
    const EvalResult e = evaluate(model, test, c, ctx, o.attention_fp32, 250);
    token_acc.push_back(e.token_accuracy);
    exact.push_back(e.exact_match);
    test_loss.push_back(e.loss);
    bpc.push_back(e.loss / std::log(2.0));
    if (opt.progress) {
      std::fprintf(stderr, "%s[transformer %s] epoch %d/%d  train loss %.4f  test token accuracy %.4f  exact %.4f  (%.1f s)\n",
                   tty ? "\r" : "", arith_name(opt.arith), epoch + 1, opt.epochs, train_loss.back(), e.token_accuracy,
                   e.exact_match, secs);
    }
  }
  rep["diverged"] = diverged;
  rep["test_accuracy"] = token_acc.empty() ? 0.0 : token_acc.back();  // token accuracy, as the scripts read it
  rep["test_token_accuracy"] = token_acc.empty() ? 0.0 : token_acc.back();
  rep["test_exact_match"] = exact.empty() ? 0.0 : exact.back();
  rep["test_accuracy_per_epoch"] = token_acc;
  rep["test_exact_match_per_epoch"] = exact;
  rep["test_loss_per_epoch"] = test_loss;
  if (text) {
    rep["test_bits_per_char"] = bpc.empty() ? 0.0 : bpc.back();
    rep["test_bits_per_char_per_epoch"] = bpc;
  }
  rep["train_loss_per_epoch"] = train_loss;
  if (ctx.sqnr != nullptr) {
    rep["sqnr_db_per_epoch"] = sqnr_per_epoch;
    rep["sqnr_note"] = fmt::format("per linear layer and attention matmul, the mean over sampled steps (every {}) of "
                                   "10 log10(sum x^2 / sum (x - Q(x))^2) for A (input activations; attention: Q and "
                                   "softmax(S)), W (weights; attention: K and V), G (output errors)",
                                   opt.sqnr_every);
  }
  rep["epoch_seconds"] = epoch_seconds;
  rep["steps"] = step;
  add_quantizer_stats(rep, opt, ctx);
  if (!tracer.written().empty()) rep["trace"] = tracer.written();
  rep["blas"] = blas_info();
  return rep;
}

}  // namespace mfsim
