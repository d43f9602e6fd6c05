// The functional training core's network: layers on NHWC float tensors, with every linear
// layer's three GEMMs (forward, backward data, backward weight) computed in the selected
// arithmetic (docs/training-core.md):
//   fp32      FP32 operands, BLAS sgemm
//   int8      INT8 operands (per-tensor scale; nearest for A and W, stochastic for G), exact
//             INT32 accumulation, float rescale
//   als-potq  PoT4 operands (ALS scale, WBC for W, PRC, stochastic G), MF-MAC accumulation
//             (exact integer), dequantization by exponent add (ldexp) -- no multiplication
//   int4      as int8 with symmetric INT4 operands in [-7, 7]
//   fp8       hybrid FP8: E4M3 activations and weights, E5M2 errors, power-of-two per-tensor
//             scales, round to nearest even; exact products, FP32 accumulation
//   bf16      BF16 operands (round to nearest even), FP32 accumulation
// Networks are data: a spec string such as "conv:16:5:1:2,relu,maxpool:2,flatten,fc:10".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/number_format.h"
#include "models/quantizer.h"

namespace mfsim {

// The step's arithmetic is its operands' number format (models/number_format.h): FP32, INT8, or
// PoT4 (ALS-POTQ).
const char* arith_name(NumFormat a);  // "fp32", "bf16", "fp8", "int8", "int4", "als-potq" (--quant)
bool parse_arith(const std::string& s, NumFormat* out);
std::string arith_choices();          // "fp32|bf16|fp8|int8|int4|als-potq"

struct Tensor {
  std::vector<float> v;
  int n = 0, h = 1, w = 1, c = 0;  // NHWC; fully connected activations have h = w = 1
  std::size_t size() const { return v.size(); }
};

class GemmRecorder;
struct NonGemmOp;
class ConvPathChooser;

// Signal-to-quantization-noise ratio samples of one layer's tensors: A (input activations),
// W (weights), G (output errors); sums of dB over the sampled steps, and their counts.
struct QuantNoise {
  double db_sum[3] = {0, 0, 0};
  int count[3] = {0, 0, 0};
};

// Where a linear layer sits, for the per-layer precision of a policy (docs/method.md): the first
// linear layer (its input is the data), the last (the classifier), the others, and the
// Transformer's attention matmuls (Q K^T and softmax(S) V; their left operand takes the A slot,
// their right operand the W slot).
constexpr int kScaleTensor = 0, kScaleOuter = -1;

enum LayerClass : int { kFirstLayer = 0, kHiddenLayer = 1, kLastLayer = 2, kAttentionLayer = 3 };
constexpr int kLayerClasses = 4;
const char* layer_class_name(int c);  // "first", "hidden", "last", "attention"

// Everything a linear layer needs to know about the current step.
struct StepContext {
  NumFormat arith = NumFormat::kFp32;
  // --first-last: the first and the last linear layer in this arithmetic instead (when set).
  bool edge_override = false;
  NumFormat edge_arith = NumFormat::kFp32;
  // Per-layer SQNR diagnostics: sampled on steps where sqnr_sample is set (null: off).
  std::map<std::string, QuantNoise>* sqnr = nullptr;
  bool sqnr_sample = false;
  PotqOptions potq;        // PRC for A, W, G; WBC applies to W when wbc is set
  bool prc_roles[3] = {true, true, true};  // --prc-operands: PRC for A, W, G (by Role) when potq.prc
  bool wbc = true;
  // ALS-POTQ's per-layer precision: bit r (A 1, W 2, G 4; Role order) of int8_roles[class] puts
  // that operand of the layers of that class in INT8 with a power-of-two scale instead of PoT4,
  // so its products with PoT4 operands are shifts. `layer_class` is the class of the layer
  // running (set by the layers' scopes).
  std::uint8_t int8_roles[kLayerClasses] = {0, 0, 0, 0};
  int layer_class = kHiddenLayer;
  // Finer power-of-two scales of the PoT4 operands, by operand slot (A, W, G): kScaleTensor one
  // exponent per tensor; kScaleOuter one per outer index of each GEMM the tensor enters (a row of
  // its left operand, a column of its right: per sample or token for A and G, per output channel
  // for W in the forward GEMM); B > 0 one per block of B elements along each GEMM's reduction
  // dimension (and per outer index). Outer scales factor out of the dot product (an exponent add
  // per output); block scales need an alignment shift per block (training/quant_gemm.h).
  int scale_grain[3] = {0, 0, 0};
  // ALS-POTQ's W slot (the weights, and the attention's K and V) as two-term powers of two
  // (models/quantizer.h apot_nearest) instead of PoT4: per tensor, nearest; --apot-weights.
  bool apot_weights = false;
  bool apot_errors = false;  // the errors G likewise (stochastic rounding); --apot-errors
  std::uint64_t seed = 1;  // stochastic rounding keys derive from seed, step and layer
  std::uint64_t step = 0;
  GemmRecorder* trace = nullptr;  // when set, every GEMM of this step is recorded
  // When set, a convolution's three GEMMs take the direct kernels where this run's chooser allows
  // (FP32 and the integer arithmetics; training/conv_direct.h; not in a traced step, whose records
  // hold the im2col matrix).
  ConvPathChooser* conv = nullptr;
  // When set, every operation outside the GEMMs that this step runs (batch norm, ReLU, pooling,
  // the residual additions, biases; the loss and the optimizer by the trainer) is appended, in
  // the order it runs (traces/network_ops.h; docs/non-gemm.md).
  std::vector<NonGemmOp>* ops = nullptr;
  // Per-step statistics (reset by the trainer): chosen PRC offsets and WBC thresholds.
  double wbc_threshold_sum = 0;
  int wbc_count = 0;
  int rho_hist[8] = {0};
};

// Appends an operation this step ran when the step records them (StepContext::ops); the
// operations come from traces/network_ops.h.
void record_op(StepContext& ctx, NonGemmOp op);

class Layer {
 public:
  virtual ~Layer() = default;
  // Inputs are taken by value: layers that keep their input for the backward pass move it.
  virtual Tensor forward(Tensor x, StepContext& ctx, bool train) = 0;
  virtual Tensor backward(Tensor dy, StepContext& ctx) = 0;
  virtual std::string name() const = 0;
  // Parameters and their gradients (empty for parameter-free layers).
  virtual std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params() { return {}; }
};

// What the training core holds (checked from a spec before anything is allocated): weights of a
// network (1 GiB of FP32, before the optimizer's copies) and elements of one example's largest tensor.
constexpr std::uint64_t kMaxNetworkParameters = std::uint64_t{1} << 28;
constexpr std::uint64_t kMaxActivationElements = std::uint64_t{1} << 26;

class Network {
 public:
  // Builds layers from a spec for inputs h x w x c; weights drawn from `seed`.
  Network(const std::string& spec, int h, int w, int c, std::uint64_t seed);
  Tensor forward(Tensor x, StepContext& ctx, bool train);
  void backward(Tensor dlogits, StepContext& ctx);
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params();
  std::vector<std::unique_ptr<Layer>>& layers() { return layers_; }
  std::size_t parameter_count();
  std::uint64_t outputs() const { return outputs_; }  // the last layer's output elements per example
  // The largest tensor per example any layer makes (outputs and im2col matrices), in elements.
  std::uint64_t max_activation_elements() const { return max_activation_elements_; }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::uint64_t outputs_ = 0, max_activation_elements_ = 0;
};

// Built-in network specs by name (mlp, cnn); throws InputError for others.
std::string network_spec(const std::string& name);

// Softmax cross-entropy: mean loss over the batch, gradient wrt the logits, correct count.
double softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels, Tensor* dlogits,
                             int* correct);

}  // namespace mfsim
