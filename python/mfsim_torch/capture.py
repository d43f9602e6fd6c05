"""The capture: aten operators to mfsim trace records and operations (`ops`)."""

import json
import os
import weakref
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mfsim_torch import ops as opsrules
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


class _Op:
    """One non-GEMM operator of the step: the trace's `ops` entry (docs/non-gemm.md). `reads` and
    `writes` are [tensor, elements, format, role] lists, so that the capture can change a role or
    add a `save` write after the fact."""

    __slots__ = ("kind", "name", "layer", "phase", "elements", "flops", "reads", "writes", "in_elements")

    def __init__(self, kind, name, layer, phase, elements, flops, reads, writes, in_elements):
        self.kind, self.name, self.layer, self.phase = kind, name, layer, phase
        self.elements, self.flops = int(elements), flops
        self.reads, self.writes = reads, writes
        self.in_elements = in_elements  # its first input's elements: a backward operator finds it by them

    @staticmethod
    def _tensors(ts):
        if len(ts) > opsrules.MAX_TENSORS:  # the trace's bound: one tensor per format and role
            groups = {}
            for name, n, fmt, role in ts:
                g = groups.setdefault((fmt, role), [[], 0])
                g[0].append(name)
                g[1] += n
            ts = [["+".join(names), n, fmt, role] for (fmt, role), (names, n) in groups.items()]
        out = []
        for name, n, fmt, role in ts:
            t = {"tensor": name, "elements": int(n)}
            if fmt != "fp32":
                t["format"] = fmt
            if role != "stream":
                t["role"] = role
            out.append(t)
        return out

    def to_json(self):
        j = {"kind": self.kind, "name": self.name}
        if self.layer != self.name:
            j["layer"] = self.layer
        j["phase"] = self.phase
        j["elements"] = self.elements
        j["flops"] = {k: self.flops[k] for k in opsrules.FLOPS if self.flops.get(k)}
        j["reads"] = self._tensors(self.reads)
        j["writes"] = self._tensors(self.writes)
        return j


class _Origin:
    """Where a tensor's values come from: the phase that made them (fwd, bwd, update; fresh: a fill;
    state: a parameter's gradient from before; external: made outside the capture), the operation
    and its write that made them (None for a GEMM's result), and a key shared by its views."""

    __slots__ = ("phase", "op", "slot", "key")

    def __init__(self, phase, op, slot, key):
        self.phase, self.op, self.slot, self.key = phase, op, slot, key


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


_NO_RESULT = object()


def _on_cpu(func, args, kwargs):
    """Any other operator without a Meta kernel: run it on zero tensors of the same shapes on the
    CPU and return its results on meta (shapes only). An operator that writes an argument in place
    changes no shape: nothing to run (its result is that argument, or nothing: the optimizers'
    _foreach_ operators). _NO_RESULT for any other operator that writes an argument."""
    s = opsrules.schema(func)
    if s.written:
        returns = func._schema.returns
        if not returns:
            return None
        if len(returns) == 1 and returns[0].alias_info is not None and returns[0].alias_info.is_write:
            return args[0]
        return _NO_RESULT
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
        out = self._run(func, args, kwargs)
        self.cap._on_result(func, args, kwargs, out)
        return out

    def _run(self, func, args, kwargs):
        meta = any(_is_meta(a) or (isinstance(a, (list, tuple)) and any(_is_meta(t) for t in a)) for a in args)
        if meta and func.overloadpacket in META_RULES:
            return META_RULES[func.overloadpacket](*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except NotImplementedError as e:
            if not meta or "'Meta' backend" not in str(e):
                raise
            out = _on_cpu(func, args, kwargs)
            if out is _NO_RESULT:
                raise
            self.cap.cpu_fallbacks[str(func.overloadpacket).replace("aten.", "")] += 1
            return out


class Capture:
    """Records the GEMMs and the other operators of everything run inside `with`; writes the trace
    on a clean exit."""

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
        self.ops = []                  # non-GEMM operators recorded as the trace's `ops` (_Op)
        self.op_counts = Counter()     # ... by aten name, for the description
        self.other_ops = Counter()     # operators neither GEMMs nor recorded (data movement, integers)
        self._backward = False
        self._stack = []          # module paths of the forward pass
        self._fwd = []            # forward records, for attributing backward GEMMs
        self._params = {}         # id of a parameter -> its module path
        self._buffers = {}        # id of a buffer (batch norm's running statistics) -> its module path
        self._update = False      # in an optimizer's step (its profiler label, until the next forward)
        self._origins = {}        # id of a tensor -> (weak reference, _Origin)
        self._keys = 0
        self._first_reader = {}   # origin key -> (forward operation that first read it, its tensor name)
        self._saved = set()       # origin keys read again by the backward pass (written once as `save`)
        self._fwd_ops = {}        # aten name -> forward operations not yet matched by their backward
        self._bwd_layer = "model"  # the layer the backward pass was last in
        self._update_layer = "optimizer"
        self._pending_update = []  # update operations on the optimizer's state, waiting for a parameter
        self._grad_layers = {}    # id of a parameter's gradient -> its module path
        self._hooks = []
        self._mode = None
        self.cpu_fallbacks = Counter()  # operators without a Meta kernel, run on the CPU for shapes
        self.write_on_exit = True       # False: the caller writes outputs() itself (the command line)

    # Module paths during the forward pass; the backward pass starts at the model's output.
    def _install_hooks(self):
        names = {m: n for n, m in self.model.named_modules()}
        for name, p in self.model.named_parameters():
            self._params[id(p)] = name.rsplit(".", 1)[0] if "." in name else ""
            if p.grad is not None:  # accumulated into by this step's backward pass: state
                self._set_origin(p.grad, "state", None, None)
        for name, b in self.model.named_buffers():
            self._buffers[id(b)] = name.rsplit(".", 1)[0] if "." in name else ""

        def pre(module, inputs):
            if module is self.model:
                self._update = False
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
        self._update = False
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
        if rec.phase != "fwd":
            self._bwd_layer = rec.layer
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

    # ---- the operators outside the GEMMs: the trace's `ops` --------------------------------------

    def _set_origin(self, t, phase, op, slot, key=None):
        if key is None:
            self._keys += 1
            key = self._keys
        o = _Origin(phase, op, slot, key)
        self._origins[id(t)] = (weakref.ref(t), o)
        return o

    def _origin(self, t):
        """The tensor's _Origin, or its base's (a view shares its values), or None."""
        while isinstance(t, torch.Tensor):
            entry = self._origins.get(id(t))
            if entry is not None and entry[0]() is t:
                return entry[1]
            t = t._base
        return None

    def _state_layer(self, t):
        """The module of a parameter or a buffer (or a view of one), else None."""
        while isinstance(t, torch.Tensor):
            layer = self._params.get(id(t), self._buffers.get(id(t)))
            if layer is not None:
                return layer
            t = t._base
        return None

    def _tensors_of(self, value):
        return [value] if isinstance(value, torch.Tensor) else [t for t in value if isinstance(t, torch.Tensor)]

    def _phase(self, call):
        """fwd inside the model's forward pass; update in an optimizer's step or where a parameter is
        written in place; after the forward pass, bwd where gradients are off (autograd's engine
        turns them off for the backward pass), fwd where they are on (the loss)."""
        if self._update:
            return "update"
        if self._stack:
            return "fwd"
        if any(self._state_layer(t) is not None and id(t) not in self._buffers
               for n in call.schema.written for t in self._tensors_of(call.bound.get(n, []))):
            return "update"
        if self._backward or not torch.is_grad_enabled():
            return "bwd"
        return "fwd"

    def _link_gradients(self):
        """Every operation that made a parameter's gradient writes it as state."""
        for p in self.model.parameters():
            o = self._origin(p.grad) if p.grad is not None else None
            if o is not None and o.op is not None and o.slot is not None and o.phase == "bwd":
                o.op.writes[o.slot][3] = "state"
            if p.grad is not None:
                self._grad_layers[id(p.grad)] = self._params[id(p)] or "model"

    def _register_results(self, call, phase, op=None, slots=None, inherit=None):
        """Origins for what the call wrote: its results and the arguments it wrote in place."""
        values = [v for _, v in call.results] + [call.bound.get(n) for n in call.schema.written]
        for i, v in enumerate(values):
            if v is None:
                continue
            for t in self._tensors_of(v) if isinstance(v, (list, tuple)) else [v]:
                if not isinstance(t, torch.Tensor):
                    continue
                if inherit is not None:
                    self._set_origin(t, inherit.phase, inherit.op, inherit.slot, inherit.key)
                else:
                    self._set_origin(t, phase, op, slots[i] if slots is not None and i < len(slots) else None)

    def _on_result(self, func, args, kwargs, out):
        packet = func.overloadpacket
        name = str(packet).replace("aten.", "")
        if name == "profiler._record_function_enter":  # torch.optim labels its step and zero_grad
            label = args[0] if args and isinstance(args[0], str) else ""
            if label.startswith("Optimizer.step#"):
                self._link_gradients()
                self._update = True
            elif label.startswith("Optimizer."):
                self._update = False
            return
        call = opsrules.Call(func, args, kwargs, out)
        phase = self._phase(call)
        if packet in (aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.convolution, aten.convolution_backward):
            self._register_results(call, phase)
            return
        recorded = self._record_op(call, phase)
        if name not in opsrules.UNCOUNTED:
            (self.op_counts if recorded else self.other_ops)[name] += 1

    def _inherit(self, call):
        """A view's or a copy's origin is its source's."""
        src = call.bound.get("src") if call.name == "copy_" else next(
            (t for v in call.bound.values() for t in (self._tensors_of(v) if isinstance(v, (list, tuple)) else [v])
             if isinstance(t, torch.Tensor)), None)
        o = self._origin(src) if src is not None else None
        if o is not None:
            self._register_results(call, o.phase, inherit=o)

    def _record_op(self, call, phase):
        """Records the call as an operation; False (and origins only) for what is not arithmetic:
        views, copies, fills, data movement, integer work."""
        name = call.name
        if call.schema.view or name in opsrules.VIEWS or name in opsrules.COPIES:
            self._inherit(call)
            return False
        if name in opsrules.FILLS or name in opsrules.DATA_MOVEMENT or not call.float_tensors():
            if not call.schema.written:  # an in-place fill keeps the origin (a zeroed gradient is still one)
                self._register_results(call, "fresh" if name in opsrules.FILLS else phase)
            return False
        r = opsrules.rule(call)
        # Layer: a parameter's module; in the backward pass, the forward operation's it differentiates,
        # or that of a forward tensor it reads, else the layer the backward pass was last in.
        tensors = [t for v in call.bound.values() if isinstance(v, (torch.Tensor, list, tuple))
                   for t in self._tensors_of(v)]
        layers = [x or "model" for x in map(self._state_layer, tensors) if x is not None]
        layer = layers[0] if layers else None
        in_elements = next((opsrules.numel(v) for v in call.bound.values() if opsrules.is_float(v)), 0)
        pending = False
        if phase == "update":  # a parameter's (or its gradient's) module; _foreach_ over several: optimizer
            layers += [self._grad_layers[id(t)] for t in tensors if id(t) in self._grad_layers]
            if len(set(layers)) > 1:
                layer = "optimizer"
            elif layers:
                layer = self._update_layer = layers[0]
            else:  # the optimizer's state (momentum, moments, step): the next parameter's module
                layer, pending = self._update_layer, True
        elif phase == "fwd":
            layer = layer or self._layer()
        else:
            if layer is None:
                for fname in opsrules.forward_names(call.name):
                    cands = self._fwd_ops.get(fname, [])
                    match = next((i for i in range(len(cands) - 1, -1, -1) if cands[i].in_elements == call.e), None)
                    if match is not None:
                        layer = cands.pop(match).layer
                        break
            if layer is None:
                for t in tensors:
                    o = self._origin(t)
                    if o is not None and o.op is not None and o.phase == "fwd":
                        layer = o.op.layer
                        break
            layer = self._bwd_layer = layer or self._bwd_layer
        op = _Op("optimizer" if phase == "update" else r.kind, call.name, layer or "model", phase, call.e, r.flops,
                 [], [], in_elements)
        # Reads: every floating-point tensor argument (a list as one tensor), with its role.
        for name in call.schema.args:
            v = call.bound.get(name)
            if name in r.skip or not isinstance(v, (torch.Tensor, list, tuple)) or not opsrules.is_float(v):
                continue
            n = r.read_elements.get(name, opsrules.numel(v))
            t = opsrules.first_tensor(v)
            role = self._read_role(t, phase)
            op.reads.append([name, n, opsrules.tensor_format(v), role])
            if isinstance(v, torch.Tensor):
                self._note_read(op, name, v, role)
        # Writes: the results that are new tensors, the arguments written in place, what the rule adds.
        slots = []
        for name, v in call.results:
            slots.append(self._write(op, name, v, phase, r.write_roles.get(name)))
        for name in call.schema.written:
            slots.append(self._write(op, name, call.bound.get(name), phase, None))
        for name, role in r.extra_writes:
            self._write(op, name, call.bound.get(name), phase, role)
        self._register_results(call, phase, op, slots)
        if phase == "fwd":
            self._fwd_ops.setdefault(call.name, []).append(op)
        elif phase == "update":
            if pending:
                self._pending_update.append(op)
            else:
                for p in self._pending_update:
                    p.layer = layer
                self._pending_update = []
        if op.elements or op.reads:
            self.ops.append(op)
        return True

    def _write(self, op, name, v, phase, role):
        if not isinstance(v, (torch.Tensor, list, tuple)) or not opsrules.is_float(v):
            return None
        if role is None:
            t = opsrules.first_tensor(v)
            role = "state" if phase == "update" or self._state_layer(t) is not None else "stream"
        op.writes.append([name, opsrules.numel(v), opsrules.tensor_format(v), role])
        return len(op.writes) - 1

    def _read_role(self, t, phase):
        """state: parameters, buffers and the optimizer's tensors; saved: a tensor the backward pass
        reads that it did not make (the forward pass's, or the model's input); else stream."""
        if phase == "update" or self._state_layer(t) is not None:
            return "state"
        if phase != "bwd":
            return "stream"
        o = self._origin(t)
        if o is None or o.phase in ("fwd", "external"):
            return "saved"
        return "state" if o.phase == "state" else "stream"

    def _note_read(self, op, name, t, role):
        """Forward: the first operation to read each tensor. Backward: a saved tensor is written
        once, as `save`, by the forward operation that made it, or else by the first that read it."""
        o = self._origin(t)
        if op.phase == "fwd":
            if o is None and self._state_layer(t) is None:
                o = self._set_origin(t, "external", None, None)
            if o is not None:
                self._first_reader.setdefault(o.key, (op, name))
            return
        if role != "saved" or o is None or o.key in self._saved:
            return
        self._saved.add(o.key)
        if o.op is not None and o.phase == "fwd" and o.slot is not None:
            target, tname = o.op, o.op.writes[o.slot][0]
        elif o.key in self._first_reader:
            target, tname = self._first_reader[o.key]
        else:
            return
        target.writes.append([tname, t.numel(), opsrules.tensor_format(t), "save"])

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
            self._link_gradients()
        self._origins, self._first_reader, self._fwd_ops, self._grad_layers = {}, {}, {}, {}
        if exc_type is None:
            if not self.records:
                raise CaptureError("the step ran no matrix product or convolution: nothing to capture")
            if len(self.ops) > opsrules.MAX_OPS:
                raise CaptureError("the step ran %d operators outside its GEMMs; a trace holds at most 2^20"
                                   % len(self.ops))
            if self.write_on_exit and self.path is not None:
                self.write()
        return False

    def trace_json(self):
        counts = lambda c: ", ".join("%s %d" % kv for kv in sorted(c.items()))  # noqa: E731
        parts = [self.description] if self.description else []
        if self.op_counts:
            parts.append("other aten operators (recorded as ops): " + counts(self.op_counts))
        if self.other_ops or not self.op_counts:
            parts.append("other aten operators (not simulated): " + counts(self.other_ops))
        doc = {"format": "mfsim-trace", "version": 1, "generator": self.generator, "description": "; ".join(parts),
               "records": [r.to_json() for r in self.records]}
        if self.ops:
            doc["ops"] = [op.to_json() for op in self.ops]
        return doc

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
        if "ops" in doc:  # one operation per line, as the records
            text += '\n ],\n "ops": [\n' + ",\n".join("  " + json.dumps(o, separators=(",", ":")) for o in doc["ops"])
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
