// Shape-only training traces of known networks and of SCALE-Sim topology files: the GEMM view
// of every linear layer's three training GEMMs (docs/workloads.md).
//
// A layer's forward GEMM is Y[M x N] = A[M x K] . W[K x N], `repeat` times (attention heads,
// groups). Its backward GEMMs are
//   bwd_data    dA = G . W^T   (M, K, N)   -- omitted when the layer's input needs no gradient
//   bwd_weight  dW = A^T . G   (K, N, M)
// Convolution as im2col GEMM, input (B, Cin, H, W), kernel R x S, g groups, output P x Q:
//   M = B*P*Q, N = Cout/g, K = R*S*Cin/g, repeat = g.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "traces/trace.h"

namespace mfsim {

struct LayerGemm {
  std::string name;
  std::int64_t m = 0, n = 0, k = 0;  // forward GEMM
  std::int64_t repeat = 1;
  bool input_grad = true;            // false for the first layer of a CNN (the image)
  LayerType type = LayerType::kFc;   // conv: `conv` holds the geometry (per group)
  ConvGeometry conv;
};

struct NetworkOptions {
  int batch = 1;
  int image_h = 224, image_w = 224;  // CNNs
  int seq = 128;                     // Transformer: tokens per sentence (source and target)
  int vocab = 32000;                 // Transformer: output vocabulary
};

struct NetworkInfo {
  const char* name;
  const char* description;
};
const std::vector<NetworkInfo>& known_networks();

// A decoder-only Transformer (pre-norm blocks of causal multi-head self-attention and a ReLU
// feed-forward, learned token and position embeddings, a final linear layer): the shape the
// functional core trains (training/transformer.h) and `mfsim trace` generates. Spec string:
// "transformer" or "transformer:layers=2,d=64,heads=4,ff=256,seq=32,vocab=17" (any subset).
struct TransformerConfig {
  int layers = 2, d = 64, heads = 4, ff = 256, seq = 32, vocab = 17;
  int head_dim() const { return d / heads; }
};
bool is_transformer_spec(const std::string& spec);
TransformerConfig parse_transformer_spec(const std::string& spec);  // InputError naming the field
std::string to_spec(const TransformerConfig& c);
// Its forward GEMMs for `batch` sequences, in execution order: per block q_proj, k_proj, v_proj,
// the attention matmuls scores (Q K^T) and context (softmax(S) V), one GEMM per sequence and
// head (repeat = batch * heads), out_proj, ffn1, ffn2; then lm_head.
std::vector<LayerGemm> transformer_layers(const TransformerConfig& c, int batch);

// Forward GEMMs of a known network (or a Transformer spec); throws InputError for an unknown name.
std::vector<LayerGemm> network_layers(const std::string& name, const NetworkOptions& opt);

// Convolution helper (used by the networks and the SCALE-Sim import): output size by the
// usual rule P = floor((H + 2*pad - R) / stride) + 1.
LayerGemm conv_gemm(std::string name, int batch, int cin, int cout, int k, int stride, int pad,
                    int h, int w, int groups = 1);

struct PhaseSelection {
  bool fwd = true, bwd_data = true, bwd_weight = true;
};

// Training records, in execution order: the forward GEMMs, then the backward GEMMs from the
// last layer to the first (bwd_data, then bwd_weight, per layer).
std::vector<TraceRecord> training_records(const std::vector<LayerGemm>& layers,
                                          const PhaseSelection& phases, NumFormat format);

// SCALE-Sim topology CSV (header line, then rows with a trailing comma):
//   conv: Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
//         Num Filter, Strides[, Stride width]
//   gemm: Layer name, M, N, K
// SCALE-Sim's output-size rule: P = ceil((H - R + stride) / stride) (no padding: the IFMAP is
// taken as already padded). Every conv row with one stride gets its geometry, the last window's
// rows and columns past the far edge as pad_end_h / pad_end_w. Layers whose name contains "DP"
// are depthwise: one GEMM per channel (repeat = Channels). Errors name the file and line.
std::vector<LayerGemm> read_scalesim_topology(const std::string& path, bool gemm_form, int batch);
// The same from the file's text (`path` names it in errors).
std::vector<LayerGemm> parse_scalesim_topology(const std::string& text, const std::string& path, bool gemm_form,
                                               int batch);

}  // namespace mfsim
