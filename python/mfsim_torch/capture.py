"""The capture: aten operators to mfsim trace records."""

import json
import os
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mfsim_torch.errors import CaptureError
from mfsim_torch.files import check_output, write_all

aten = torch.ops.aten

MAX_DIM = 2**31 - 1


def _prod(xs):
    p = 1
    for x in xs:
        p *= int(x)
    return p


class _Record:
    __slots__ = ("layer", "phase", "m", "n", "k", "repeat", "layer_type", "conv", "data_left", "weight_left",
                 "operands")

    def __init__(self, layer, phase, m, n, k, repeat=1, layer_type="fc", conv=None):
        self.layer, self.phase = layer, phase
        self.m, self.n, self.k, self.repeat = int(m), int(n), int(k), int(repeat)
        self.layer_type, self.conv = layer_type, conv
        self.data_left = self.weight_left = self.repeat  # backward GEMMs not yet attributed to it
        self.operands = None  # PoT4 operand specs and payload refs (operands="potq")

    def key(self):
        return (self.layer, self.phase, self.m, self.n, self.k, self.layer_type,
                json.dumps(self.conv, sort_keys=True) if self.conv else "")

    def macs(self):
        return self.m * self.n * self.k * self.repeat

    def to_json(self):
        r = {"layer": self.layer, "phase": self.phase, "M": self.m, "N": self.n, "K": self.k}
        if self.repeat != 1:
            r["repeat"] = self.repeat
        if self.layer_type != "fc":
            r["layer_type"] = self.layer_type
        if self.conv is not None:
            r["conv"] = self.conv
        if self.operands is not None:
            r.update(self.operands)
        else:
            r["a"] = {"format": "pot4", "scale_exp": 0}
            r["b"] = {"format": "pot4", "scale_exp": 0}
        return r


def _conv_backward_meta(g, x, w, bias_sizes, *rest):
    mask = rest[-1]
    return (torch.empty_like(x) if mask[0] else None, torch.empty_like(w) if mask[1] else None,
            torch.empty(bias_sizes, device="meta", dtype=g.dtype) if mask[2] and bias_sizes is not None else None)


# Shape rules for the backward operators that torch 1.13 has no Meta kernel for and that
# torchvision's classification models run (tests/python/torchvision_models.py captures every one
# of them): each gradient has its input's shape.
META_RULES = {
    aten.convolution_backward: _conv_backward_meta,
    aten._adaptive_avg_pool2d_backward: lambda g, x: torch.empty_like(x),
}


def _is_meta(a):
    return isinstance(a, torch.Tensor) and a.is_meta


def _map(f, a):
    if isinstance(a, (list, tuple)):
        return type(a)(_map(f, x) for x in a)
    return f(a)


def _on_cpu(func, args, kwargs):
    """Any other operator without a Meta kernel: run it on zero tensors of the same shapes on the
    CPU and return its results on meta (shapes only). None for operators that write an argument."""
    if any(a.alias_info is not None and a.alias_info.is_write for a in func._schema.arguments):
        return None
    to_cpu = lambda a: torch.zeros(a.shape, dtype=a.dtype) if _is_meta(a) else a  # noqa: E731
    out = func(*_map(to_cpu, args), **{k: _map(to_cpu, v) for k, v in kwargs.items()})
    return _map(lambda a: a.to("meta") if isinstance(a, torch.Tensor) else a, out)


class _Mode(TorchDispatchMode):
    def __init__(self, cap):
        super().__init__()
        self.cap = cap

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.cap._on_op(func, args, kwargs)
        meta = any(_is_meta(a) for a in args)
        if meta and func.overloadpacket in META_RULES:
            return META_RULES[func.overloadpacket](*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except NotImplementedError as e:
            if not meta or "'Meta' backend" not in str(e):
                raise
            out = _on_cpu(func, args, kwargs)
            if out is None:
                raise
            self.cap.cpu_fallbacks[str(func.overloadpacket).replace("aten.", "")] += 1
            return out


class Capture:
    """Records the GEMMs of everything run inside `with`; writes the trace on a clean exit."""

    def __init__(self, path, model, generator="mfsim_torch.capture", description="", operands=None,
                 max_payload_mb=256):
        if operands not in (None, "potq"):
            raise CaptureError("--operands: expected potq, got \"%s\"" % operands)
        self.path, self.model = path, model
        self.payload = None
        if operands == "potq":
            from mfsim_torch.potq import PayloadFile
            self.payload = PayloadFile(int(max_payload_mb * 2**20))
        self.generator, self.description = generator, description
        self.records = []
        self.other_ops = Counter()
        self._backward = False
        self._stack = []          # module paths of the forward pass
        self._fwd = []            # forward records, for attributing backward GEMMs
        self._params = {}         # id of a parameter -> its module path
        self._hooks = []
        self._mode = None
        self.cpu_fallbacks = Counter()  # operators without a Meta kernel, run on the CPU for shapes
        self.write_on_exit = True       # False: the caller writes outputs() itself (the command line)

    # Module paths during the forward pass; the backward pass starts at the model's output.
    def _install_hooks(self):
        names = {m: n for n, m in self.model.named_modules()}
        for name, p in self.model.named_parameters():
            self._params[id(p)] = name.rsplit(".", 1)[0] if "." in name else ""

        def pre(module, inputs):
            self._stack.append(names.get(module, ""))

        def post(module, inputs, output):
            self._stack.pop()
            if module is self.model:
                outs = output if isinstance(output, (tuple, list)) else (output,)
                for o in outs:
                    if isinstance(o, torch.Tensor) and o.requires_grad:
                        o.register_hook(self._start_backward)

        for m in self.model.modules():
            self._hooks.append(m.register_forward_pre_hook(pre))
            self._hooks.append(m.register_forward_hook(post))

    def _start_backward(self, grad):
        self._backward = True
        return grad

    # The layer whose parameter (or a view of it, e.g. weight.t()) is among the operands.
    def _param_layer(self, *tensors):
        for t in tensors:
            while isinstance(t, torch.Tensor):
                if id(t) in self._params:
                    return self._params[id(t)]
                t = t._base
        return None

    def _layer(self):
        return self._stack[-1] if self._stack else "model"

    def _add(self, rec, a=None, b=None, matmul=False):
        """`a`, `b`: the GEMM's operands (M x K, K x N float tensors) when operands are captured.
        `matmul`: a forward matrix product, whose backward products _attribute() will look for (a
        convolution's come from convolution_backward, which names its phases itself)."""
        for d in (rec.m, rec.n, rec.k, rec.repeat):
            if d > MAX_DIM:
                raise CaptureError("%s %s: a GEMM dimension of %d passes mfsim's limit 2^31 - 1" % (rec.layer, rec.phase, d))
        if rec.m * rec.n * rec.k == 0:
            return
        if rec.phase == "fwd" and matmul:
            self._fwd.append(rec)
        if self.payload is not None and a is not None and rec.repeat == 1 and not a.is_meta:
            rec.operands = self.payload.add_gemm(a, b)
        last = self.records[-1] if self.records else None
        if last is not None and last.key() == rec.key() and last.operands is None and rec.operands is None:
            last.repeat += rec.repeat
            last.data_left += rec.repeat
            last.weight_left += rec.repeat
            if rec.phase == "fwd" and self._fwd and self._fwd[-1] is rec:
                self._fwd.pop()  # folded into `last`, which is already listed
        else:
            self.records.append(rec)

    # A backward matmul: which forward GEMM's data or weight gradient is it? The latest forward
    # GEMM (backward runs in reverse) of the same layer (when an operand is a parameter) whose
    # shape fits and that still has unattributed gradients. PyTorch computes a weight gradient in
    # the parameter's layout (N x K for a linear layer) or as A^T G (K x N).
    def _attribute(self, m, n, k, repeat, named):
        for f in reversed(self._fwd):
            if named is not None and f.layer != named:
                continue
            if (m, n, k) == (f.m, f.k, f.n) and f.data_left >= repeat:
                f.data_left -= repeat
                return f, "bwd_data", (m, n, k)
            if (m, n, k) in ((f.n, f.k, f.m), (f.k, f.n, f.m)) and f.weight_left >= repeat:
                f.weight_left -= repeat
                return f, "bwd_weight", (f.k, f.n, f.m)  # mfsim's dW = A^T G is K x N
        return None, None, None

    def _matmul(self, a, b, batched):
        if batched:
            bs, m, k = a.shape
            n = b.shape[2]
        else:
            m, k = a.shape
            n = b.shape[1]
        named = self._param_layer(a, b)
        ops = (a, b) if not batched else (None, None)
        if not self._backward:
            layer = named if named is not None else self._layer()
            self._add(_Record(layer, "fwd", m, n, k, bs if batched else 1, "fc" if named is not None else "matmul"), *ops,
                      matmul=True)
            return
        f, phase, shape = self._attribute(m, n, k, bs if batched else 1, named)
        if f is None:  # not matched to a forward GEMM (e.g. a custom autograd function)
            self._add(_Record(named or self._layer(), "bwd_data", m, n, k, bs if batched else 1), *ops)
        else:
            if shape != (m, n, k) and not batched:  # PyTorch's N x K weight gradient: C^T = b^T a^T
                ops = (b.t(), a.t())
            self._add(_Record(f.layer, phase, shape[0], shape[1], shape[2], bs if batched else 1, f.layer_type, None), *ops)

    def _conv_record(self, layer, x_shape, w_shape, stride, padding, dilation, groups):
        if len(x_shape) != 4 or any(int(d) != 1 for d in dilation):
            raise CaptureError("%s: only 2-D convolutions without dilation are captured (got input %s, dilation %s)"
                               % (layer, list(x_shape), list(dilation)))
        b, cin, h, w = (int(v) for v in x_shape)
        cout, cin_g, r, s = (int(v) for v in w_shape)
        sh, sw = (int(v) for v in stride)
        ph, pw = (int(v) for v in padding)
        p = (h + 2 * ph - r) // sh + 1
        q = (w + 2 * pw - s) // sw + 1
        m, n, k = b * p * q, cout // groups, r * s * cin_g
        geo = None
        if sh == sw and ph == pw and r == s:
            geo = {"batch": b, "in_h": h, "in_w": w, "in_c": cin_g, "kernel_h": r, "kernel_w": s, "stride": sh, "pad": ph}
        return m, n, k, geo

    @staticmethod
    def _im2col(x, w, stride, padding):
        """The convolution's A operand, (B P Q) x (C R S), matching w.reshape(Cout, C R S)."""
        cols = torch.nn.functional.unfold(x.detach(), tuple(w.shape[2:]), padding=tuple(padding), stride=tuple(stride))
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    def _on_op(self, func, args, kwargs):
        packet = func.overloadpacket
        if packet in (aten.mm,):
            self._matmul(args[0], args[1], False)
        elif packet in (aten.addmm,):
            self._matmul(args[1], args[2], False)
        elif packet in (aten.bmm,):
            self._matmul(args[0], args[1], True)
        elif packet in (aten.baddbmm,):
            self._matmul(args[1], args[2], True)
        elif packet in (aten.convolution,):
            x, w = args[0], args[1]
            stride, padding, dilation, transposed, _, groups = args[3], args[4], args[5], args[6], args[7], args[8]
            layer = self._param_layer(w) or self._layer()
            if transposed:
                raise CaptureError("%s: transposed convolutions are not captured" % layer)
            m, n, k, geo = self._conv_record(layer, x.shape, w.shape, stride, padding, dilation, groups)
            a_op = b_op = None
            if self.payload is not None and groups == 1 and not x.is_meta:
                a_op = self._im2col(x, w, stride, padding)
                b_op = w.detach().reshape(w.shape[0], -1).t()
            self._add(_Record(layer, "fwd", m, n, k, groups, "conv" if geo else "fc", geo), a_op, b_op)
        elif packet in (aten.convolution_backward,):
            g, x, w = args[0], args[1], args[2]
            stride, padding, dilation, transposed, _, groups, mask = args[4], args[5], args[6], args[7], args[8], args[9], args[10]
            layer = self._param_layer(w) or self._layer()
            m, n, k, geo = self._conv_record(layer, x.shape, w.shape, stride, padding, dilation, groups)
            lt = "conv" if geo else "fc"
            ops = self.payload is not None and groups == 1 and not x.is_meta
            gm = g.detach().permute(0, 2, 3, 1).reshape(m, n) if ops else None  # G as (B P Q) x Cout
            if mask[0]:
                self._add(_Record(layer, "bwd_data", m, k, n, groups, lt, geo),
                          gm if ops else None, w.detach().reshape(w.shape[0], -1) if ops else None)
            if mask[1]:
                self._add(_Record(layer, "bwd_weight", k, n, m, groups, lt, geo),
                          self._im2col(x, w, stride, padding).t() if ops else None, gm)
        else:
            name = str(packet).replace("aten.", "")
            if name not in ("detach", "view", "t", "transpose", "expand", "_unsafe_view", "clone", "copy_",
                            "empty_like", "zeros_like", "ones_like", "new_empty_strided", "as_strided", "permute",
                            "unsqueeze", "squeeze", "reshape", "select", "slice"):
                self.other_ops[name] += 1

    def __enter__(self):
        if self.path is not None:
            check_output(self.path, "path")
        self._install_hooks()
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._mode.__exit__(exc_type, exc, tb)
        for h in self._hooks:
            h.remove()
        if exc_type is None:
            if not self.records:
                raise CaptureError("the step ran no matrix product or convolution: nothing to capture")
            if self.write_on_exit and self.path is not None:
                self.write()
        return False

    def trace_json(self):
        other = ", ".join("%s %d" % kv for kv in sorted(self.other_ops.items()))
        desc = self.description + ("; " if self.description else "") + "other aten operators (not simulated): " + other
        return {"format": "mfsim-trace", "version": 1, "generator": self.generator, "description": desc,
                "records": [r.to_json() for r in self.records]}

    def payload_path(self):
        """The payload file beside the trace (NAME.bin), written when a GEMM has operands."""
        return os.path.splitext(self.path or "capture.json")[0] + ".bin"

    def outputs(self):
        """[(path, bytes)]: the trace and, with operands, its payload file."""
        doc = self.trace_json()
        out = []
        if self.payload is not None and any(r.operands is not None for r in self.records):
            bin_path = self.payload_path()
            doc["payload_file"] = {"path": os.path.basename(bin_path), "bytes": len(self.payload.data)}
            if self.payload.skipped:
                doc["description"] += "; %d GEMMs without operands (--max-payload-mb)" % self.payload.skipped
            out.append((bin_path, bytes(self.payload.data)))
        order = ["format", "version", "generator", "description", "payload_file"]
        text = "{\n" + "".join(" %s: %s,\n" % (json.dumps(k), json.dumps(doc[k])) for k in order if k in doc)
        text += ' "records": [\n' + ",\n".join("  " + json.dumps(r, separators=(",", ":")) for r in doc["records"])
        text += "\n ]\n}\n"
        out.append((self.path, text.encode()))
        return out

    def trace(self, name=None):
        """The captured step as an mfsim.Trace held in memory (the native module, build/python on
        PYTHONPATH): `mfsim.compare(cap.trace())` needs no file."""
        import mfsim
        files = dict(self.outputs())
        text = files.pop(self.path).decode()
        payload = next(iter(files.values()), b"")
        return mfsim.Trace.from_json(text, payload, name or "<capture of %s>" % type(self.model).__name__)

    def write(self):
        """Writes the trace and its payload file (mfsim_torch.files: each whole to a temporary
        file, then renamed; the payload's rename first)."""
        write_all(self.outputs())

    def macs(self):
        return sum(r.macs() for r in self.records)


def capture(path, model, **kw):
    """`with capture("step.json", model): loss.backward()` writes the step's GEMMs to path; with
    path None nothing is written and `cap.trace()` gives the step as an mfsim.Trace."""
    return Capture(path, model, **kw)
