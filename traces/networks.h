// Shape-only training traces of known networks: the GEMM view of every linear layer's three
// training GEMMs (docs/trace-format.md, "The GEMM of a record").
//
// Convolution as im2col GEMM, input (B, Cin, H, W), kernel R x S, output P x Q:
//   fwd         M = B*P*Q   N = Cout       K = R*S*Cin
//   bwd_data    M = B*P*Q   N = R*S*Cin    K = Cout      (dA = G . W^T, then col2im)
//   bwd_weight  M = R*S*Cin N = Cout       K = B*P*Q     (dW = A^T . G)
// Fully connected (in -> out): fwd (B, out, in), bwd_data (B, in, out), bwd_weight (in, out, B).
// The first layer has no bwd_data GEMM: the input image needs no gradient.
#pragma once

#include <string>
#include <vector>

#include "traces/trace.h"

namespace mfsim {

struct LayerSpec {
  std::string name;
  bool conv = true;
  int cin = 0, cout = 0;
  int kh = 1, kw = 1, stride = 1, pad = 0;
  int h_in = 1, w_in = 1;  // conv input size
  int h_out() const { return (h_in + 2 * pad - kh) / stride + 1; }
  int w_out() const { return (w_in + 2 * pad - kw) / stride + 1; }
};

// ResNet-18 for ImageNet (torchvision layout), input image h x w.
std::vector<LayerSpec> resnet18_layers(int h, int w);

// The training GEMMs of the layers at batch `batch`, in execution order: all forward GEMMs,
// then the backward GEMMs from the last layer to the first (bwd_data then bwd_weight).
std::vector<TraceRecord> training_gemms(const std::vector<LayerSpec>& layers, int batch,
                                        NumFormat format);

}  // namespace mfsim
