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

// `layers` is network_layers(name, opt); InputError for a network without a non-GEMM model.
NetworkOpsResult network_ops(const std::string& name, const NetworkOptions& opt, const std::vector<LayerGemm>& layers);

}  // namespace mfsim
