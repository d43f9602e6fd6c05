"""Capture one PyTorch training step as an mfsim trace (docs/pytorch.md).

    import mfsim_torch
    with mfsim_torch.capture("step.json", model) as cap:
        loss_fn(model(x), y).backward()
        optimizer.step()            # optional: the update is captured too

Every matrix product and convolution that PyTorch really runs during the forward and the backward
pass is intercepted at the aten level (a TorchDispatchMode) and becomes a trace record: its GEMM
shape (convolutions as im2col GEMMs, with their geometry), its phase (fwd, bwd_data, bwd_weight)
and the module path of its layer. Identical consecutive records fold into `repeat`.

Every other operator that does floating-point arithmetic (batch norm, layer norm, activations,
pooling, softmax, the loss, residual additions, dropout, embeddings, the optimizer's step) becomes
one of the trace's `ops` (docs/non-gemm.md), which `mfsim simulate` times and prices on its vector
unit: its kind, aten name, layer, phase (fwd; bwd; update inside torch.optim's step or where a
parameter is written in place), output elements, FP32 flops (the network generator's arithmetic,
traces/network_ops.cpp, for the operators it models; the rules are in mfsim_torch/ops.py) and the
tensors it reads and writes with their roles (state: parameters, buffers, gradients and the
optimizer's tensors; saved: a forward tensor the backward pass reads, written once more as
`save` by the forward operator that made it; stream: the rest). Views, copies, fills, operators
that only move data (cat, indexing, padding) and integer work are not recorded; the trace's
description counts every operator, recorded or not. Shapes only: `mfsim simulate --mode timing`.
"""

from mfsim_torch.errors import CaptureError  # noqa: F401

try:
    from mfsim_torch.capture import Capture, capture  # noqa: F401
except ImportError as _e:  # no torch for this Python: `python3 -m mfsim_torch` says so in one line
    if _e.name not in ("torch", "torchvision"):
        raise
    _missing = _e

    def __getattr__(name):
        if name in ("Capture", "capture"):
            raise _missing
        raise AttributeError(name)

__all__ = ["Capture", "capture", "CaptureError"]
