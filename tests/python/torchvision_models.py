#!/usr/bin/python3
"""Captures torchvision's classification models in shape-only mode (the meta device) and checks
each against a count made independently of the capture.

The capture intercepts aten operators (a TorchDispatchMode) and counts GEMMs from their operand
shapes. The independent count here works one level up, on the torch functions the models call
(a TorchFunctionMode, forward pass only): a convolution's MACs are its output's elements times the
weight's C/g x R x S, a linear layer's its output's elements times the weight's input width, a
matmul/bmm/einsum's the product of its index sizes, nn.MultiheadAttention's the closed form of its
projections and its two batched products. Checks, per model:
- forward MACs of the trace == the independent count;
- weight-gradient MACs (bwd_weight: the gradient of a product's B operand, a layer's weight or
  attention's K and V) == the independent count of the products whose B operand needs a gradient
  (every parameter of a training step gets its gradient, auxiliary classifiers included);
- no operator needed the capture's CPU fallback (each has a meta rule);
- `mfsim inspect` accepts the trace (when MFSIM_BINARY is set).

    /usr/bin/python3 tests/python/torchvision_models.py [NAME ...]   (default: the whole list)

scripts/capture_torchvision.sh runs it; so does the CTest test
python.mfsim_torch.test_every_torchvision_classification_model_matches_the_independent_count.
"""

import os
import subprocess
import sys
import tempfile
import time

import torch
import torchvision
from torch.overrides import TorchFunctionMode

import mfsim_torch
from mfsim_torch.step import load_model, loss_of

BATCH = 2


def classification_models():
    return torchvision.models.list_models(module=torchvision.models)


def input_shape(name):
    return [3, 299, 299] if name == "inception_v3" else [3, 224, 224]  # Inception's aux head needs 299


def _prod(xs):
    p = 1
    for x in xs:
        p *= int(x)
    return p


class IndependentCount(TorchFunctionMode):
    """MACs of the forward pass from torch-level calls: `total`, and `b_grad` (products whose B
    operand, the weight of a layer, needs a gradient)."""

    UNHANDLED = {"conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "bilinear",
                 "tensordot", "addbmm", "mv", "dot", "chain_matmul", "inner", "outer", "kron", "addmv", "addr"}

    def __init__(self):
        super().__init__()
        self.total = 0
        self.b_grad = 0

    def _add(self, macs, b):
        self.total += macs
        if b.requires_grad:
            self.b_grad += macs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in self.UNHANDLED:
            raise AssertionError("the independent count has no rule for %s" % name)
        if name == "conv2d":
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self._add(out.numel() * _prod(w.shape[1:]), w)
        elif name == "linear":
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self._add(out.numel() * w.shape[1], w)
        elif name in ("matmul", "__matmul__", "bmm", "mm"):
            self._add(out.numel() * args[0].shape[-1], args[1])
        elif name in ("baddbmm", "addmm"):
            self._add(out.numel() * args[1].shape[-1], args[2])
        elif name == "einsum":
            self._einsum(args[0], list(args[1:]) if len(args) > 2 else list(args[1]))
        elif name == "multi_head_attention_forward":
            q, k = args[0], args[1]
            L, n, e = q.shape if q.dim() == 3 else (q.shape[0], 1, q.shape[1])
            s = k.shape[0]
            proj = (L + 2 * s) * n * e * e + L * n * e * e  # Q, K, V in, output out
            self.total += proj + 2 * n * L * s * e      # scores Q K^T and context softmax(S) V
            self.b_grad += proj + 2 * n * L * s * e     # K and V are projections: they need gradients
        return out

    def _einsum(self, equation, operands):
        lhs = equation.replace(" ", "").split("->")[0]
        if "..." in lhs or len(operands) != 2:
            raise AssertionError("the independent count has no rule for einsum %s" % equation)
        sizes = {}
        for spec, t in zip(lhs.split(","), operands):
            for letter, size in zip(spec, t.shape):
                sizes[letter] = int(size)
        self._add(_prod(sizes.values()), operands[1])


def check(name, directory, mfsim=None):
    """Captures `name` and checks it; returns (records, forward MACs, seconds)."""
    start = time.time()
    model = load_model("torchvision:" + name, meta=True).to("meta").train()
    x = torch.randn([BATCH] + input_shape(name), device="meta")
    path = os.path.join(directory, name + ".json")
    count = IndependentCount()
    with mfsim_torch.capture(path, model) as cap:
        with count:  # the forward pass
            out = model(x)
        loss_of(out, "meta").backward()
    fwd = sum(r.macs() for r in cap.records if r.phase == "fwd")
    dw = sum(r.macs() for r in cap.records if r.phase == "bwd_weight")
    problems = []
    if fwd != count.total:
        problems.append("forward MACs %d, independent count %d" % (fwd, count.total))
    if dw != count.b_grad:
        problems.append("weight-gradient MACs %d, independent count %d" % (dw, count.b_grad))
    if cap.cpu_fallbacks:
        problems.append("operators without a meta rule: %s" % dict(cap.cpu_fallbacks))
    if mfsim:
        r = subprocess.run([mfsim, "inspect", path], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("mfsim inspect: " + r.stderr.strip())
    os.unlink(path)
    if problems:
        raise AssertionError("%s: %s" % (name, "; ".join(problems)))
    return len(cap.records), fwd, time.time() - start


def main(names):
    names = names or classification_models()
    mfsim = os.environ.get("MFSIM_BINARY")
    start = time.time()
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            try:
                n, fwd, secs = check(name, d, mfsim)
                print("%-20s ok   %5d records %10.3f GMAC forward  %5.1f s" % (name, n, fwd / 1e9, secs), flush=True)
            except Exception as e:  # noqa: BLE001 - report every model, then fail
                failed += 1
                print("%-20s FAIL %s" % (name, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__),
                      flush=True)
    print("%d models, %d failed, %.0f s (batch %d, meta device, torch %s, torchvision %s)"
          % (len(names), failed, time.time() - start, BATCH, torch.__version__, torchvision.__version__))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
