"""Capture the GEMMs of one PyTorch training step as an mfsim trace (docs/pytorch.md).

    import mfsim_torch
    with mfsim_torch.capture("step.json", model) as cap:
        loss_fn(model(x), y).backward()

Every matrix product and convolution that PyTorch really runs during the forward and the backward
pass is intercepted at the aten level (a TorchDispatchMode) and becomes a trace record: its GEMM
shape (convolutions as im2col GEMMs, with their geometry), its phase (fwd, bwd_data, bwd_weight)
and the module path of its layer. Identical consecutive records fold into `repeat`. Other aten
operators are counted in the trace's description. Shapes only: `mfsim simulate --mode timing`.
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
