#include "traces/network_ops.h"

#include <fmt/format.h>

#include "common/error.h"

namespace mfsim {

namespace {

using U = std::uint64_t;

// FP32 arithmetic of one operation: per element of its output and per row (a channel of batch
// norm, a token of layer norm, a row of a softmax). docs/non-gemm.md lists these.
struct Cost {
  double add = 0, mul = 0, div = 0, sqrt = 0, exp = 0, cmp = 0;
};

// FP32 tensors by role (trace.h TensorRole): the stream in and out, a saved forward tensor the
// backward reads, parameters and optimizer state, and the fused forward pass's copy of a saved one.
OpTensor tensor(std::string name, U elements) {
  return OpTensor{std::move(name), elements, NumFormat::kFp32, TensorRole::kStream};
}
OpTensor saved(std::string name, U elements) { return OpTensor{std::move(name), elements, NumFormat::kFp32, TensorRole::kSaved}; }
OpTensor state(std::string name, U elements) { return OpTensor{std::move(name), elements, NumFormat::kFp32, TensorRole::kState}; }
OpTensor save(std::string name, U elements) { return OpTensor{std::move(name), elements, NumFormat::kFp32, TensorRole::kSave}; }

NonGemmOp make(OpKind kind, const std::string& name, const std::string& layer, OpPhase phase, U elements, U rows,
               const Cost& per_element, const Cost& per_row, std::vector<OpTensor> reads, std::vector<OpTensor> writes) {
  NonGemmOp op;
  op.kind = kind;
  op.name = name;
  op.layer = layer;
  op.phase = phase;
  op.elements = elements;
  const double e = static_cast<double>(elements), r = static_cast<double>(rows);
  const double counts[kNumFpOps] = {per_element.add * e + per_row.add * r,   per_element.mul * e + per_row.mul * r,
                                    per_element.div * e + per_row.div * r,   per_element.sqrt * e + per_row.sqrt * r,
                                    per_element.exp * e + per_row.exp * r,   per_element.cmp * e + per_row.cmp * r};
  for (int o = 0; o < kNumFpOps; ++o) op.flops[o] = static_cast<U>(counts[o]);
  op.reads = std::move(reads);
  op.writes = std::move(writes);
  return op;
}

}  // namespace

// One operation, forward or backward, with the arithmetic of docs/non-gemm.md (network_ops.h).
NonGemmOp batchnorm_op(const std::string& layer, OpPhase phase, U e, U c) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kNormalization, "batchnorm", layer, phase, e, c, {4, 3, 0, 0, 0, 0}, {3, 6, 1, 1, 0, 0},
                {tensor("x", e), state("gamma_beta", 2 * c)}, {tensor("y", e), save("x", e)});
  }
  return make(OpKind::kNormalization, "batchnorm", layer, phase, e, c, {5, 5, 0, 0, 0, 0}, {0, 2, 0, 0, 0, 0},
              {tensor("dy", e), saved("x", e)}, {tensor("dx", e), state("dgamma_dbeta", 2 * c)});
}
NonGemmOp layernorm_op(const std::string& layer, OpPhase phase, U e, U rows) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kNormalization, "layernorm", layer, phase, e, rows, {5, 3, 0, 0, 0, 0}, {1, 2, 1, 1, 0, 0},
                {tensor("x", e)}, {tensor("y", e), save("x", e)});
  }
  return make(OpKind::kNormalization, "layernorm", layer, phase, e, rows, {6, 6, 0, 0, 0, 0}, {0, 2, 0, 0, 0, 0},
              {tensor("dy", e), saved("x", e)}, {tensor("dx", e)});
}
NonGemmOp relu_op(const std::string& layer, OpPhase phase, U e, bool six) {
  const double c = six ? 2 : 1;
  const char* name = six ? "relu6" : "relu";
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kElementwise, name, layer, phase, e, 0, {0, 0, 0, 0, 0, c}, {}, {tensor("x", e)},
                {tensor("y", e), save("y", e)});
  }
  return make(OpKind::kElementwise, name, layer, phase, e, 0, {0, 0, 0, 0, 0, c}, {}, {tensor("dy", e), saved("y", e)},
              {tensor("dx", e)});
}
NonGemmOp residual_op(const std::string& layer, OpPhase phase, U e) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kElementwise, "residual_add", layer, phase, e, 0, {1, 0, 0, 0, 0, 0}, {},
                {tensor("a", e), saved("b", e)}, {tensor("y", e)});
  }
  // The merge, at the block's input, of the gradient from the branch and the one from the skip
  // path (held in DRAM while the branch's backward pass ran); its sum is the gradient of the block
  // before's output, which that block's skip path needs again, so fused it is also written.
  return make(OpKind::kElementwise, "residual_add", layer, phase, e, 0, {1, 0, 0, 0, 0, 0}, {},
              {tensor("dy_branch", e), saved("dy_skip", e)}, {tensor("dx", e), save("dx", e)});
}
NonGemmOp bias_op(const std::string& layer, OpPhase phase, U e, U n) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kElementwise, "bias_add", layer, phase, e, 0, {1, 0, 0, 0, 0, 0}, {},
                {tensor("x", e), state("bias", n)}, {tensor("y", e)});
  }
  return make(OpKind::kReduction, "bias_grad", layer, phase, e, 0, {1, 0, 0, 0, 0, 0}, {}, {tensor("dy", e)},
              {state("dbias", n)});
}
NonGemmOp dropout_op(const std::string& layer, OpPhase phase, U e) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kElementwise, "dropout", layer, phase, e, 0, {0, 1, 0, 0, 0, 1}, {}, {tensor("x", e)},
                {tensor("y", e)});
  }
  return make(OpKind::kElementwise, "dropout", layer, phase, e, 0, {0, 1, 0, 0, 0, 0}, {}, {tensor("dy", e)},
              {tensor("dx", e)});
}
NonGemmOp maxpool_op(const std::string& layer, OpPhase phase, U in, U out, U window) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kPooling, "maxpool", layer, phase, out, 0, {0, 0, 0, 0, 0, static_cast<double>(window - 1)}, {},
                {tensor("x", in)}, {tensor("y", out)});
  }
  NonGemmOp op = make(OpKind::kPooling, "maxpool", layer, phase, in, 0, {}, {}, {tensor("dy", out)}, {tensor("dx", in)});
  op.flops[static_cast<int>(FpOp::kAdd)] = out;  // each gradient added at its argmax
  return op;
}
NonGemmOp avgpool_op(const std::string& layer, OpPhase phase, U in, U out) {
  if (phase == OpPhase::kFwd) {
    NonGemmOp op = make(OpKind::kPooling, "avgpool", layer, phase, out, 0, {}, {}, {tensor("x", in)}, {tensor("y", out)});
    op.flops[static_cast<int>(FpOp::kAdd)] = in;   // the sums
    op.flops[static_cast<int>(FpOp::kMul)] = out;  // times 1/n
    return op;
  }
  NonGemmOp op = make(OpKind::kPooling, "avgpool", layer, phase, in, 0, {}, {}, {tensor("dy", out)}, {tensor("dx", in)});
  op.flops[static_cast<int>(FpOp::kMul)] = out;  // dy/n, broadcast to the window
  return op;
}
NonGemmOp softmax_loss_op(const std::string& layer, OpPhase phase, U e, U rows) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kLoss, "softmax_cross_entropy", layer, phase, e, rows, {2, 1, 0, 0, 1, 1}, {2, 0, 1, 0, 1, 0},
                {tensor("logits", e)}, {tensor("probabilities", e), save("probabilities", e)});
  }
  return make(OpKind::kLoss, "softmax_cross_entropy", layer, phase, e, rows, {1, 1, 0, 0, 0, 0}, {},
              {saved("probabilities", e)}, {tensor("dlogits", e)});
}
NonGemmOp attention_softmax_op(const std::string& layer, OpPhase phase, U e, U rows) {
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kSoftmax, "attention_softmax", layer, phase, e, rows, {2, 2, 0, 0, 1, 1}, {0, 0, 1, 0, 0, 0},
                {tensor("scores", e)}, {tensor("probabilities", e), save("probabilities", e)});
  }
  return make(OpKind::kSoftmax, "attention_softmax", layer, phase, e, rows, {2, 3, 0, 0, 0, 0}, {},
              {tensor("dprobabilities", e), saved("probabilities", e)}, {tensor("dscores", e)});
}
NonGemmOp embedding_op(const std::string& layer, OpPhase phase, U e, bool learned_positions) {
  const double tables = learned_positions ? 2 : 1;
  if (phase == OpPhase::kFwd) {
    return make(OpKind::kElementwise, "embedding", layer, phase, e, 0, {1, 0, 0, 0, 0, 0}, {},
                {state("rows", e), state("positions", e)}, {tensor("y", e)});
  }
  return make(OpKind::kElementwise, "embedding", layer, phase, e, 0, {tables, 0, 0, 0, 0, 0}, {}, {tensor("dy", e)},
              {state("dtable_rows", static_cast<U>(tables) * e)});
}
NonGemmOp sgd_momentum_op(U p) {
  return make(OpKind::kOptimizer, "sgd_momentum", "optimizer", OpPhase::kUpdate, p, 0, {3, 3, 0, 0, 0, 0}, {},
              {state("w", p), state("grad", p), state("momentum", p)}, {state("w", p), state("momentum", p)});
}
NonGemmOp adam_op(U p) {
  return make(OpKind::kOptimizer, "adam", "optimizer", OpPhase::kUpdate, p, 0, {4, 8, 1, 1, 0, 0}, {},
              {state("w", p), state("grad", p), state("m", p), state("v", p)},
              {state("w", p), state("m", p), state("v", p)});
}

void save_output(NonGemmOp& op) {
  for (const auto& t : op.writes) {
    if (t.role == TensorRole::kSave && t.name == "y") return;
  }
  op.writes.push_back(save("y", op.elements));
}

namespace {

// The step's operations: forward ones in order; each forward operation's backward counterpart
// is collected and run in reverse order after the forward pass; the update last.
class StepOps {
 public:
  void update(NonGemmOp op) { update_.push_back(std::move(op)); }
  // The forward operations so far; save_output_of(i): operation i makes a skip input.
  std::size_t forward_ops() const { return fwd_.size(); }
  void save_output_of(std::size_t i) { save_output(fwd_.at(i)); }
  std::vector<NonGemmOp> ops() const {
    std::vector<NonGemmOp> out = fwd_;
    for (auto it = bwd_.rbegin(); it != bwd_.rend(); ++it) out.push_back(*it);
    for (const auto& op : update_) out.push_back(op);
    return out;
  }
  void batchnorm(const std::string& layer, U e, U c) { both(batchnorm_op, layer, e, c); }
  void layernorm(const std::string& layer, U e, U rows) { both(layernorm_op, layer, e, rows); }
  void relu(const std::string& layer, U e, bool six = false) { both(relu_op, layer, e, six); }
  // The forward addition is at the block's output; the backward one merges the branch's and the
  // skip path's gradients at the block's input (larger in a downsampling block).
  void residual(const std::string& layer, U out, U in) {
    fwd_.push_back(residual_op(layer, OpPhase::kFwd, out));
    bwd_.push_back(residual_op(layer, OpPhase::kBwd, in));
  }
  void residual(const std::string& layer, U e) { residual(layer, e, e); }
  void bias(const std::string& layer, U e, U n) { both(bias_op, layer, e, n); }
  void dropout(const std::string& layer, U e) { both(dropout_op, layer, e); }
  void maxpool(const std::string& layer, U in, U out, U window) { both(maxpool_op, layer, in, out, window); }
  void avgpool(const std::string& layer, U in, U out) { both(avgpool_op, layer, in, out); }
  void softmax_loss(const std::string& layer, U e, U rows) { both(softmax_loss_op, layer, e, rows); }
  void attention_softmax(const std::string& layer, U e, U rows) { both(attention_softmax_op, layer, e, rows); }
  void embedding(const std::string& layer, U e, bool learned) { both(embedding_op, layer, e, learned); }
  void sgd_momentum(U p) { update(sgd_momentum_op(p)); }
  void adam(U p) { update(adam_op(p)); }

 private:
  template <typename F, typename... A>
  void both(F f, const std::string& layer, A... a) {
    fwd_.push_back(f(layer, OpPhase::kFwd, a...));
    bwd_.push_back(f(layer, OpPhase::kBwd, a...));
  }
  std::vector<NonGemmOp> fwd_, bwd_, update_;
};

U out_elements(const LayerGemm& l) { return static_cast<U>(l.m) * static_cast<U>(l.n) * static_cast<U>(l.repeat); }
U weights(const LayerGemm& l) { return static_cast<U>(l.k) * static_cast<U>(l.n) * static_cast<U>(l.repeat); }
U channels(const LayerGemm& l) { return static_cast<U>(l.n) * static_cast<U>(l.repeat); }
bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
std::string block_of(const std::string& layer) { return layer.substr(0, layer.rfind('.')); }

NetworkOpsResult resnet_ops(const std::vector<LayerGemm>& L, int batch) {
  StepOps s;
  U params = 0;
  for (std::size_t i = 0; i < L.size(); ++i) {
    const LayerGemm& l = L[i];
    if (l.type != LayerType::kConv) continue;
    params += weights(l) + 2 * channels(l);
  }
  // conv1, bn, relu, max-pool 3x3/2
  const LayerGemm& c1 = L.front();
  s.batchnorm("bn1", out_elements(c1), channels(c1));
  s.relu("relu", out_elements(c1));
  s.maxpool("maxpool", out_elements(c1), L[1].conv.input_elements(), 9);
  std::size_t block_input = s.forward_ops() - 1;  // the operation whose output enters the next block
  // blocks: bn after every convolution, relu after all but the last, the residual add, relu
  std::size_t i = 1;
  while (i < L.size() && L[i].type == LayerType::kConv) {
    const std::string block = block_of(L[i].name);
    std::vector<const LayerGemm*> main;
    const LayerGemm* down = nullptr;
    for (; i < L.size() && L[i].type == LayerType::kConv && block_of(L[i].name) == block; ++i) {
      if (ends_with(L[i].name, ".downsample")) {
        down = &L[i];
      } else {
        main.push_back(&L[i]);
      }
    }
    for (std::size_t j = 0; j < main.size(); ++j) {
      const std::string bn = block + ".bn" + std::to_string(j + 1);
      s.batchnorm(bn, out_elements(*main[j]), channels(*main[j]));
      if (j + 1 < main.size()) s.relu(block + ".relu" + std::to_string(j + 1), out_elements(*main[j]));
    }
    // The skip input, read again by the addition: the projection's batch norm, or the block's input.
    if (down != nullptr) {
      s.batchnorm(block + ".downsample.bn", out_elements(*down), channels(*down));
      s.save_output_of(s.forward_ops() - 1);
    } else {
      s.save_output_of(block_input);
    }
    const U out = out_elements(*main.back());
    s.residual(block + ".add", out, main.front()->conv.input_elements() * static_cast<U>(main.front()->repeat));
    s.relu(block + ".relu", out);
    block_input = s.forward_ops() - 1;
  }
  const LayerGemm& fc = L.back();
  const LayerGemm& last = L[L.size() - 2];
  s.avgpool("avgpool", out_elements(last), static_cast<U>(batch) * channels(last));
  s.bias("fc", out_elements(fc), static_cast<U>(fc.n));
  s.softmax_loss("loss", out_elements(fc), static_cast<U>(batch));
  params += weights(fc) + static_cast<U>(fc.n);
  s.sgd_momentum(params);
  return {s.ops(), params, "sgd_momentum"};
}

NetworkOpsResult vgg16_ops(const std::vector<LayerGemm>& L, int batch) {
  StepOps s;
  U params = 0;
  int conv_index = 0;
  for (const LayerGemm& l : L) {
    const U out = out_elements(l);
    params += weights(l) + static_cast<U>(l.n);
    s.bias(l.name, out, static_cast<U>(l.n));
    if (l.type == LayerType::kConv) {
      ++conv_index;
      s.relu(l.name + ".relu", out);
      if (conv_index == 2 || conv_index == 4 || conv_index == 7 || conv_index == 10 || conv_index == 13) {
        s.maxpool(fmt::format("pool{}", conv_index), out, out / 4, 4);
      }
    } else if (l.name != "fc3") {
      s.relu(l.name + ".relu", out);
      s.dropout(l.name + ".dropout", out);
    }
  }
  s.softmax_loss("loss", out_elements(L.back()), static_cast<U>(batch));
  s.sgd_momentum(params);
  return {s.ops(), params, "sgd_momentum"};
}

NetworkOpsResult mobilenetv2_ops(const std::vector<LayerGemm>& L, int batch) {
  StepOps s;
  U params = 0;
  std::string current;
  std::size_t block_start = 0;  // the block's first forward operation
  for (std::size_t i = 0; i < L.size(); ++i) {
    const LayerGemm& l = L[i];
    const U out = out_elements(l);
    if (l.type != LayerType::kConv) continue;
    params += weights(l) + 2 * channels(l);
    if (block_of(l.name) != current) {
      current = block_of(l.name);
      block_start = s.forward_ops();
    }
    s.batchnorm(l.name + ".bn", out, channels(l));
    if (!ends_with(l.name, ".project")) {
      s.relu(l.name + ".relu6", out, true);
      continue;
    }
    // An inverted residual adds its input when the shape is kept (stride 1, same channels).
    const std::string block = block_of(l.name);
    const bool expanded = i >= 2 && L[i - 2].name == block + ".expand";
    const LayerGemm& first = expanded ? L[i - 2] : L[i - 1];  // the block's first convolution
    const U in = first.conv.input_elements() * static_cast<U>(first.repeat);
    const bool keep = L[i - 1].conv.stride == 1 && in == out;
    if (keep) {
      s.save_output_of(block_start - 1);  // the block's input (the block before's output): the skip
      s.residual(block + ".add", out);
    }
  }
  const LayerGemm& head = L[L.size() - 2];
  const LayerGemm& fc = L.back();
  s.avgpool("avgpool", out_elements(head), static_cast<U>(batch) * channels(head));
  s.dropout("classifier.dropout", static_cast<U>(batch) * channels(head));
  s.bias("classifier", out_elements(fc), static_cast<U>(fc.n));
  s.softmax_loss("loss", out_elements(fc), static_cast<U>(batch));
  params += weights(fc) + static_cast<U>(fc.n);
  s.sgd_momentum(params);
  return {s.ops(), params, "sgd_momentum"};
}

// The decoder-only Transformer of the training core: pre-norm blocks, learned positions, a final
// layer norm; biases in every projection.
NetworkOpsResult transformer_ops(const TransformerConfig& c, int batch) {
  StepOps s;
  const U tokens = static_cast<U>(batch) * static_cast<U>(c.seq);
  const U d = static_cast<U>(c.d), ff = static_cast<U>(c.ff), v = static_cast<U>(c.vocab);
  // Causal attention: query i sees keys 0..i.
  const U scores = static_cast<U>(batch) * static_cast<U>(c.heads) * (static_cast<U>(c.seq) * (static_cast<U>(c.seq) + 1) / 2);
  const U score_rows = static_cast<U>(batch) * static_cast<U>(c.heads) * static_cast<U>(c.seq);
  U params = v * d + static_cast<U>(c.seq) * d;
  s.embedding("embedding", tokens * d, true);
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("block{}", i);
    s.layernorm(p + ".ln1", tokens * d, tokens);
    for (const char* proj : {".q_proj", ".k_proj", ".v_proj"}) s.bias(p + proj, tokens * d, d);
    s.attention_softmax(p + ".softmax", scores, score_rows);
    s.bias(p + ".out_proj", tokens * d, d);
    s.residual(p + ".add1", tokens * d);
    s.layernorm(p + ".ln2", tokens * d, tokens);
    s.bias(p + ".ffn1", tokens * ff, ff);
    s.relu(p + ".ffn1.relu", tokens * ff);
    s.bias(p + ".ffn2", tokens * d, d);
    s.residual(p + ".add2", tokens * d);
    params += 4 * (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d;
  }
  s.layernorm("ln_f", tokens * d, tokens);
  s.bias("lm_head", tokens * v, v);
  s.softmax_loss("loss", tokens * v, tokens);
  params += 2 * d + d * v + v;
  s.adam(params);
  return {s.ops(), params, "adam"};
}

// Transformer-base (post-norm encoder-decoder): layer norm after each residual addition,
// sinusoidal positions (no parameters), separate source and target embeddings.
NetworkOpsResult transformer_base_ops(const NetworkOptions& o) {
  StepOps s;
  const U d = 512, heads = 8, ff = 2048, layers = 6, v = static_cast<U>(o.vocab);
  const U tokens = static_cast<U>(o.batch) * static_cast<U>(o.seq);
  const U seq = static_cast<U>(o.seq);
  // Encoder self-attention and cross-attention see every key; the decoder's self-attention is
  // causal (query i sees keys 0..i).
  const U scores = static_cast<U>(o.batch) * heads * seq * seq, rows = static_cast<U>(o.batch) * heads * seq;
  const U causal = static_cast<U>(o.batch) * heads * (seq * (seq + 1) / 2);
  U params = 2 * v * d;
  // Each sublayer's input is its residual's skip (the embedding's or the norm's output before it).
  auto attention = [&](const std::string& p, bool is_causal) {
    s.save_output_of(s.forward_ops() - 1);
    for (const char* proj : {".q_proj", ".k_proj", ".v_proj"}) s.bias(p + proj, tokens * d, d);
    s.attention_softmax(p + ".softmax", is_causal ? causal : scores, rows);
    s.bias(p + ".out_proj", tokens * d, d);
    params += 4 * (d * d + d);
  };
  auto sublayer_end = [&](const std::string& p) {
    s.dropout(p + ".dropout", tokens * d);
    s.residual(p + ".add", tokens * d);
    s.layernorm(p + ".norm", tokens * d, tokens);
    params += 2 * d;
  };
  auto ffn = [&](const std::string& p) {
    s.save_output_of(s.forward_ops() - 1);
    s.bias(p + ".ffn1", tokens * ff, ff);
    s.relu(p + ".ffn1.relu", tokens * ff);
    s.bias(p + ".ffn2", tokens * d, d);
    params += (d * ff + ff) + (ff * d + d);
    sublayer_end(p + ".ffn");
  };
  s.embedding("src_embedding", tokens * d, false);
  for (U i = 0; i < layers; ++i) {
    const std::string p = fmt::format("encoder{}", i);
    attention(p + ".self_attn", false);
    sublayer_end(p + ".self_attn");
    ffn(p);
  }
  s.embedding("tgt_embedding", tokens * d, false);
  for (U i = 0; i < layers; ++i) {
    const std::string p = fmt::format("decoder{}", i);
    attention(p + ".self_attn", true);
    sublayer_end(p + ".self_attn");
    attention(p + ".cross_attn", false);
    sublayer_end(p + ".cross_attn");
    ffn(p);
  }
  s.bias("generator", tokens * v, v);
  s.softmax_loss("loss", tokens * v, tokens);
  params += d * v + v;
  s.adam(params);
  return {s.ops(), params, "adam"};
}

}  // namespace

NetworkOpsResult network_ops(const std::string& name, const NetworkOptions& opt, const std::vector<LayerGemm>& layers) {
  if (is_transformer_spec(name)) return transformer_ops(parse_transformer_spec(name), opt.batch);
  if (name == "resnet18" || name == "resnet50") return resnet_ops(layers, opt.batch);
  if (name == "vgg16") return vgg16_ops(layers, opt.batch);
  if (name == "mobilenetv2") return mobilenetv2_ops(layers, opt.batch);
  if (name == "transformer-base") return transformer_base_ops(opt);
  throw InputError(fmt::format("--ops: no model of the non-GEMM work of \"{}\"", name));
}

}  // namespace mfsim
