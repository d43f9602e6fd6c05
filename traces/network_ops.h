// The non-GEMM work of a known network's training step (docs/non-gemm.md): batch and layer
// normalization, activations, residual additions, pooling, dropout, biases, embeddings, the
// attention softmax, the loss and the optimizer's update, each with its elements, its FP32
// arithmetic and the tensors it reads and writes, in the order the step runs them (forward,
// backward from the last layer, update). `mfsim trace --network NAME --ops` adds them to the trace.
//
// What each network has around its GEMMs follows its reference implementation (torchvision's
// ResNet, VGG-16 and MobileNetV2; the Transformer of training/transformer.h for the
// "transformer:..." specs; Transformer-base as in Vaswani et al., post-norm, biases in every
// linear layer, separate source and target embeddings, sinusoidal positions); the arithmetic of
// each kind of operation is one table in network_ops.cpp, documented in docs/non-gemm.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "traces/networks.h"
#include "traces/trace.h"

namespace mfsim {

struct NetworkOpsResult {
  std::vector<NonGemmOp> ops;
  std::uint64_t parameters = 0;  // the network's trainable parameters (the optimizer's elements)
  std::string optimizer;         // "sgd_momentum" (the CNNs) or "adam" (the Transformers)
};

// One operation, forward (OpPhase::kFwd) or backward (kBwd), with the arithmetic of
// docs/non-gemm.md: the generator below and the functional training core (training/nn.cpp)
// record the same operations with these.
NonGemmOp batchnorm_op(const std::string& layer, OpPhase phase, std::uint64_t elements, std::uint64_t channels);
NonGemmOp layernorm_op(const std::string& layer, OpPhase phase, std::uint64_t elements, std::uint64_t rows);
NonGemmOp relu_op(const std::string& layer, OpPhase phase, std::uint64_t elements, bool six = false);
NonGemmOp residual_op(const std::string& layer, OpPhase phase, std::uint64_t elements);
NonGemmOp bias_op(const std::string& layer, OpPhase phase, std::uint64_t elements, std::uint64_t n);
NonGemmOp dropout_op(const std::string& layer, OpPhase phase, std::uint64_t elements);
NonGemmOp maxpool_op(const std::string& layer, OpPhase phase, std::uint64_t in, std::uint64_t out, std::uint64_t window);
NonGemmOp avgpool_op(const std::string& layer, OpPhase phase, std::uint64_t in, std::uint64_t out);
NonGemmOp softmax_loss_op(const std::string& layer, OpPhase phase, std::uint64_t elements, std::uint64_t rows);
NonGemmOp attention_softmax_op(const std::string& layer, OpPhase phase, std::uint64_t elements, std::uint64_t rows);
NonGemmOp embedding_op(const std::string& layer, OpPhase phase, std::uint64_t elements, bool learned_positions);
NonGemmOp sgd_momentum_op(std::uint64_t parameters);  // the update phase
// Marks a forward operation's output as saved (a `save` write "y" of its elements, unless it has
// one): the operation that makes a residual block's skip input, which the addition at the block's
// output reads from DRAM when the vector unit is fused (docs/non-gemm.md#fusion).
void save_output(NonGemmOp& op);
NonGemmOp adam_op(std::uint64_t parameters);

// `layers` is network_layers(name, opt); InputError for a network without a non-GEMM model.
NetworkOpsResult network_ops(const std::string& name, const NetworkOptions& opt, const std::vector<LayerGemm>& layers);

}  // namespace mfsim
