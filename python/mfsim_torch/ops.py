"""Non-GEMM aten operators as the trace's `ops` (docs/non-gemm.md): which operators are recorded,
each one's kind and FP32 arithmetic, and the tensors it reads and writes. The capture
(mfsim_torch.capture) decides the phase, the layer and each tensor's role.

The arithmetic of the operators that the network generator models is its table
(traces/network_ops.cpp), per element of the output and per row:

- native_batch_norm (training): 4 add, 3 mul; per channel 3 add, 6 mul, 1 div, 1 sqrt (eval:
  1 add, 1 mul; per channel 2 add, 1 mul, 1 div, 1 sqrt); its backward 5 add, 5 mul; per
  channel 2 mul. native_layer_norm (and native_group_norm, a row a group): 5 add, 3 mul; per row
  1 add, 2 mul, 1 div, 1 sqrt; backward 6 add, 6 mul; per row 2 mul.
- relu, threshold, threshold_backward: 1 cmp; hardtanh (ReLU6) and its backward: 2 cmp.
- max_pool2d_with_indices: window - 1 cmp per output; its backward 1 add per gradient element.
  _adaptive_avg_pool2d, avg_pool2d and a mean over a 4-D tensor's last two dimensions (global
  average pooling): 1 add per input, 1 mul per output; backward 1 mul per gradient element.
- softmax cross-entropy, split between the operators PyTorch runs so that they add up to the
  generator's: _log_softmax 2 add, 1 mul, 1 exp, 1 cmp; per row 1 add, 1 div, 1 exp;
  nll_loss_forward 1 add per row; _log_softmax_backward_data 1 add, 1 mul; nll_loss_backward none
  (it writes -1/N at the targets).
- _softmax: 2 add, 2 mul, 1 exp, 1 cmp; per row 1 div (the generator's attention softmax, whose
  1/sqrt(d_head) PyTorch applies to q beforehand: that is its own `div`); _softmax_backward_data
  2 add, 3 mul.
- embedding: none (a gather; the generator's add is the position embedding's, its own `add`
  here); embedding_dense_backward 1 add per gradient element.
- native_dropout: 1 mul, 1 cmp; backward 1 mul. (On the CPU and meta devices torch 1.13's dropout
  is bernoulli_ (1 cmp), div_ and mul (1 mul each).)
- The optimizer: its own operators (add, mul_, addcmul_, addcdiv_, sqrt, _foreach_* ...), by
  the rules below. SGD with momentum and weight decay comes to the generator's 3 add, 3 mul per
  parameter; Adam to 4 add, 7 mul, 1 div, 1 sqrt (the generator counts 8 mul: PyTorch folds the
  first moment's bias correction into the step size).

Every other operator: add, sub (1 add, + 1 mul for an alpha other than 1), mul (1 mul), div
(1 div; by a number or a one-element tensor 1 mul, by the reciprocal), addcmul (1 add, 1 mul, +
1 mul for a value other than 1), addcdiv (1 add, 1 div, + 1 mul), sqrt (1 sqrt), rsqrt (1 sqrt,
1 div), pow (by 2: 1 mul; by 0.5: 1 sqrt; else 2 exp, 1 mul), lerp (2 add, 1 mul), clamp (1 cmp
per bound), bernoulli (1 cmp); reductions per input element: sum 1 add, mean 1 add and 1 mul per
output, amax/amin/max/min/argmax/argmin 1 cmp, prod 1 mul, var/std 2 add, 1 mul and per output
1 div (std: + 1 sqrt), norm 1 add, 1 mul and per output 1 sqrt, logsumexp 1 cmp, 2 add, 1 exp
and per output 1 exp; _foreach_X as X over its lists. Any other: one FP32 operation of the kind
a word of its name suggests (exp, log, sigmoid, tanh, gelu, silu, erf, elu, softplus,
trigonometric: exp; sqrt; div, reciprocal, remainder: div; mul, square: mul; max, min, where,
comparisons, abs, sign, clamp, relu, leaky, hard...: cmp; anything else: add) per element of its
largest floating-point tensor (gelu_backward: 1 exp; hardswish: 1 cmp; mse_loss: 1 add, kind loss).

Not recorded: views and aliases; copies (clone, copy_, _to_copy, contiguous, ...), fills and
factories (zero_, fill_, zeros_like, ..., the random initialisers normal_, uniform_, random_),
operators that only move data (cat, stack, index_select, gather, padding, repeat, flip, roll, the
backward of a view: select_backward, slice_backward, ...) and scalar reads (item); operators
without a floating-point tensor (integer counters such as batch norm's num_batches_tracked).
Integer and boolean tensors (indices, targets, masks) are not listed among an operator's reads
and writes. Tensor formats: float32 and float64 as fp32, bfloat16 and float16 as bf16 (the trace
formats have no fp16 or fp64; bf16 has fp16's width).
"""

import torch

FLOPS = ("add", "mul", "div", "sqrt", "exp", "cmp")

# A trace's bounds (traces/trace_reader.cpp): tensors per side, operations.
MAX_TENSORS = 16
MAX_OPS = 2**20

# Views and copies the capture has always left out of the trace's description (uncounted).
UNCOUNTED = {"detach", "view", "t", "transpose", "expand", "_unsafe_view", "clone", "copy_", "empty_like", "zeros_like",
             "ones_like", "new_empty_strided", "as_strided", "permute", "unsqueeze", "squeeze", "reshape", "select",
             "slice"}

# Views whose schema does not say so (every operator whose schema returns an alias is one too).
VIEWS = {"_unsafe_view", "reshape", "view", "_reshape_alias", "alias", "as_strided_", "squeeze_", "unsqueeze_",
         "transpose_", "t_", "detach_", "swapdims_", "swapaxes_"}

# Copies: a tensor's values, elsewhere. A copy's origin is the original's (capture: roles).
COPIES = {"clone", "copy_", "_to_copy", "contiguous", "lift_fresh_copy", "_copy_from", "_copy_from_and_resize", "to"}

# Fills and factories: new values from nothing (or from a distribution: initialisation).
FILLS = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
         "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill_", "fill", "zero_",
         "scalar_tensor", "arange", "linspace", "logspace", "eye", "normal_", "normal", "uniform_", "random_",
         "exponential_", "geometric_", "cauchy_", "log_normal_", "rand", "rand_like", "randn", "randn_like",
         "randint", "randint_like", "randperm", "tensor", "set_", "resize_", "resize_as_"}

# Operators that only move data, and scalar reads.
DATA_MOVEMENT = {"cat", "stack", "hstack", "vstack", "index_select", "gather", "scatter", "scatter_", "index",
                 "index_put", "index_put_", "masked_select", "take", "constant_pad_nd", "pad", "reflection_pad1d",
                 "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
                 "replication_pad3d", "repeat", "repeat_interleave", "roll", "flip", "tril", "triu", "unfold",
                 "im2col", "col2im", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "nonzero",
                 "select_backward", "slice_backward", "diagonal_backward", "as_strided_backward", "unfold_backward",
                 "select_scatter", "slice_scatter", "diagonal_scatter", "as_strided_scatter",
                 "_local_scalar_dense", "item", "is_nonzero", "equal", "_has_compatible_shallow_copy_type",
                 "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "_to_dense", "to_dense"}

# Backward operators whose forward operator is not their name without "_backward" (capture: the
# backward operator takes its forward operator's layer).
FORWARD_OF = {
    "threshold_backward": ("relu", "relu_", "threshold", "threshold_"),
    "nll_loss_backward": ("nll_loss_forward",),
    "nll_loss2d_backward": ("nll_loss2d_forward",),
    "embedding_dense_backward": ("embedding",),
    "hardtanh_backward": ("hardtanh", "hardtanh_"),
}

# The generic rule's kind of operation, by the words of an operator's name ("leaky_relu_backward":
# leaky, relu, backward); a word starting with "hard" (hardswish, hardsigmoid) is a comparison.
_WORDS = (
    ("exp", {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logit", "sigmoid", "logsigmoid", "tanh", "gelu",
             "silu", "erf", "erfc", "erfinv", "elu", "selu", "celu", "softplus", "mish", "sin", "cos", "tan", "sinh",
             "cosh", "asin", "acos", "atan", "atan2"}),
    ("sqrt", {"sqrt"}),
    ("div", {"div", "reciprocal", "remainder", "fmod"}),
    ("mul", {"mul", "square", "prod"}),
    ("cmp", {"max", "min", "maximum", "minimum", "amax", "amin", "where", "eq", "ne", "lt", "gt", "le", "ge", "abs",
             "sign", "sgn", "masked", "clamp", "relu", "relu6", "prelu", "rrelu", "leaky", "threshold", "floor", "ceil",
             "round", "trunc", "isnan", "isinf", "logical", "bernoulli"}),
)


def numel(x):
    """Elements of a tensor or a list of tensors (0 for anything else)."""
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(numel(t) for t in x)
    return 0


def first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (list, tuple)):
        for t in x:
            if isinstance(t, torch.Tensor):
                return t
    return None


def is_float(x):
    t = first_tensor(x)
    return t is not None and t.dtype.is_floating_point


def tensor_format(x):
    dtype = first_tensor(x).dtype
    return "bf16" if dtype in (torch.bfloat16, torch.float16) else "fp32"


class Schema:
    """What the capture needs of an operator's schema, computed once per overload."""

    __slots__ = ("args", "written", "returns", "view")

    def __init__(self, func):
        s = func._schema
        self.args = [a.name for a in s.arguments]
        self.written = [a.name for a in s.arguments if a.alias_info is not None and a.alias_info.is_write]
        self.returns = [r.name for r in s.returns]
        self.view = (not self.written and len(s.returns) > 0 and s.returns[0].alias_info is not None
                     and not s.returns[0].alias_info.is_write)


_SCHEMAS = {}


def schema(func):
    s = _SCHEMAS.get(func)
    if s is None:
        s = _SCHEMAS[func] = Schema(func)
    return s


class Call:
    """One call of an operator: its arguments by their schema names, its result."""

    def __init__(self, func, args, kwargs, out):
        self.func, self.out = func, out
        self.name = str(func.overloadpacket).replace("aten.", "")
        self.overload = func._overloadname
        base = self.name[len("_foreach_"):] if self.name.startswith("_foreach_") else self.name
        self.base = base[:-1] if base.endswith("_") and not base.endswith("__") else base
        self.schema = schema(func)
        self.bound = {}
        for i, name in enumerate(self.schema.args):
            if i < len(args):
                self.bound[name] = args[i]
            elif name in kwargs:
                self.bound[name] = kwargs[name]
        self.results = self._results()
        first = self.results[0][1] if self.results else None
        if first is None and self.schema.written:
            first = self.bound.get(self.schema.written[0])
        self.e = numel(first)

    def _results(self):
        """[(name, value)] of the returns that are new tensors (not an argument written in place)."""
        n = len(self.schema.returns)
        if n == 0 or self.schema.written:
            return []
        values = list(self.out) if n > 1 else [self.out]
        names = [r or ("result" if n == 1 else "result%d" % i) for i, r in enumerate(self.schema.returns)]
        return list(zip(names, values))

    def arg(self, name, default=None):
        v = self.bound.get(name, default)
        return default if v is None else v

    def numel(self, name):
        return numel(self.bound.get(name))

    def largest_input(self):
        return max([numel(v) for v in self.bound.values() if is_float(v)] + [0])

    def float_tensors(self):
        """Whether any argument or result is a floating-point tensor (else: integer work, not recorded)."""
        return any(is_float(v) for v in self.bound.values()) or any(is_float(v) for _, v in self.results)


class Rule:
    """An operator's kind and FP32 arithmetic (totals), and how its tensors differ from its
    arguments and results: `skip` arguments it does not read (used for their shape only),
    `read_elements` arguments it reads only part of, `extra_writes` [(argument, role)] written
    in place without the schema saying so, `write_roles` {result name: role}."""

    def __init__(self, kind, flops=None, skip=(), read_elements=None, extra_writes=(), write_roles=None):
        self.kind = kind
        self.flops = {k: int(v) for k, v in (flops or {}).items() if v}
        self.skip = set(skip)
        self.read_elements = read_elements or {}
        self.extra_writes = list(extra_writes)
        self.write_roles = write_roles or {}


def per(n, add=0, mul=0, div=0, sqrt=0, exp=0, cmp=0):
    """FP32 operations for n elements (or rows), each costing the given counts."""
    return {"add": add * n, "mul": mul * n, "div": div * n, "sqrt": sqrt * n, "exp": exp * n, "cmp": cmp * n}


def plus(*counts):
    out = dict.fromkeys(FLOPS, 0)
    for c in counts:
        for k, v in c.items():
            out[k] += v
    return out


def _is_number(x):
    return isinstance(x, (int, float, bool)) and not isinstance(x, torch.Tensor)


def _scalar(x):
    """A number, a list of numbers, or one-element tensors: what a kernel divides by once."""
    if _is_number(x):
        return True
    if isinstance(x, torch.Tensor):
        return x.numel() == 1
    if isinstance(x, (list, tuple)) and x:
        return all(_scalar(v) for v in x)
    return False


def _not_one(x):
    """1 when a scale factor (alpha, value) is present and other than 1: one more multiplication."""
    if x is None:
        return 0
    if _is_number(x):
        return 0 if x == 1 else 1
    if isinstance(x, (list, tuple)):
        return 0 if all(_is_number(v) and v == 1 for v in x) else 1
    return 1


def _rows(t, dim):
    d = t.dim()
    if d == 0:
        return 1
    return t.numel() // max(int(t.shape[dim % d]), 1)


def _window(kernel):
    k = [int(v) for v in kernel]
    return k[0] * k[0] if len(k) == 1 else k[0] * k[1]


# ---- the generator's operators ------------------------------------------------------------------

def _batch_norm(c):
    x = c.arg("input")
    ch = int(x.shape[1]) if x.dim() > 1 else 1
    training = bool(c.arg("training", False))
    if training:
        flops = plus(per(c.e, add=4, mul=3), per(ch, add=3, mul=6, div=1, sqrt=1))
        extra = [(n, "state") for n in ("running_mean", "running_var") if c.arg(n) is not None]
    else:
        flops = plus(per(c.e, add=1, mul=1), per(ch, add=2, mul=1, div=1, sqrt=1))
        extra = []
    return Rule("normalization", flops, extra_writes=extra)


def _batch_norm_backward(c):
    x = c.arg("input")
    ch = int(x.shape[1]) if x.dim() > 1 else 1
    unused = ("running_mean", "running_var") if c.arg("train", True) else ("save_mean", "save_invstd")
    return Rule("normalization", plus(per(c.e, add=5, mul=5), per(ch, mul=2)), skip=unused,
                write_roles={"result1": "state", "result2": "state"})


def _norm_rows(c):
    if c.name.startswith("native_group_norm"):
        return int(c.arg("N")) * int(c.arg("group"))
    x = c.arg("input")
    inner = 1
    for d in c.arg("normalized_shape", []):
        inner *= int(d)
    return x.numel() // max(inner, 1)


def _layer_norm(c):
    return Rule("normalization", plus(per(c.e, add=5, mul=3), per(_norm_rows(c), add=1, mul=2, div=1, sqrt=1)))


def _layer_norm_backward(c):
    return Rule("normalization", plus(per(c.e, add=6, mul=6), per(_norm_rows(c), mul=2)),
                write_roles={"result1": "state", "result2": "state"})


def _softmax(c):
    rows = _rows(c.arg("self"), int(c.arg("dim", -1)))
    return Rule("softmax", plus(per(c.e, add=2, mul=2, exp=1, cmp=1), per(rows, div=1)))


def _log_softmax(c):
    rows = _rows(c.arg("self"), int(c.arg("dim", -1)))
    return Rule("loss", plus(per(c.e, add=2, mul=1, exp=1, cmp=1), per(rows, add=1, div=1, exp=1)))


def _nll_loss(c):
    x = c.arg("self")
    rows = int(x.shape[0]) if x.dim() == 2 else 1
    if c.name.startswith("nll_loss2d"):
        rows = x.numel() // max(int(x.shape[1]), 1)
    return Rule("loss", per(rows, add=1), read_elements={"self": rows})


def _max_pool(c):
    return Rule("pooling", per(c.e, cmp=_window(c.arg("kernel_size")) - 1))


def _avg_pool(c):
    return Rule("pooling", plus(per(c.e, add=_window(c.arg("kernel_size")), mul=1)))


def _mean(c):
    x = c.arg("self")
    dims = sorted(int(d) % x.dim() for d in c.arg("dim", [])) if x.dim() else []
    kind = "pooling" if x.dim() == 4 and dims == [2, 3] else "reduction"
    return Rule(kind, {"add": x.numel(), "mul": c.e})


def _dropout(c):
    return Rule("elementwise", per(c.e, mul=1, cmp=1) if c.arg("train", True) else {})


# ---- arithmetic ---------------------------------------------------------------------------------

def _add(c):
    return Rule("elementwise", per(c.e, add=1, mul=_not_one(c.bound.get("alpha"))))


def _div(c):
    d = None
    for name in ("other", "scalar", "scalars"):
        if name in c.bound:
            d = c.bound[name]
            break
    return Rule("elementwise", per(c.e, mul=1) if _scalar(d) else per(c.e, div=1))


def _addcmul(c):
    scale = c.bound.get("value", c.bound.get("scalars"))
    return Rule("elementwise", per(c.e, add=1, mul=1 + _not_one(scale)))


def _addcdiv(c):
    scale = c.bound.get("value", c.bound.get("scalars"))
    return Rule("elementwise", per(c.e, add=1, div=1, mul=_not_one(scale)))


def _pow(c):
    p = c.bound.get("exponent", c.bound.get("scalar"))
    if _is_number(p) and p == 2:
        return Rule("elementwise", per(c.e, mul=1))
    if _is_number(p) and p == 0.5:
        return Rule("elementwise", per(c.e, sqrt=1))
    return Rule("elementwise", per(c.e, exp=2, mul=1))


def _clamp(c):
    bounds = sum(1 for n in ("min", "max") if c.bound.get(n) is not None)
    return Rule("elementwise", per(c.e, cmp=max(bounds, 1)))


def _each(kind="elementwise", **cost):
    return lambda c: Rule(kind, per(c.e, **cost))


def _reduce(**cost):
    """A reduction: `cost` per input element; `out_*` per output element."""
    def rule(c):
        n = c.numel("self")
        flops = dict.fromkeys(FLOPS, 0)
        for k, v in cost.items():
            if k.startswith("out_"):
                flops[k[4:]] += v * c.e
            else:
                flops[k] += v * n
        return Rule("reduction", flops)
    return rule


def _gradient_of(kind, **cost):
    """A pooling backward: `cost` per element of the incoming gradient; the input is its shape."""
    return lambda c: Rule(kind, per(c.numel("grad_output"), **cost), skip=("self",))


RULES = {
    "native_batch_norm": _batch_norm,
    "_native_batch_norm_legit": _batch_norm,
    "native_batch_norm_backward": _batch_norm_backward,
    "native_layer_norm": _layer_norm,
    "native_layer_norm_backward": _layer_norm_backward,
    "native_group_norm": _layer_norm,
    "native_group_norm_backward": _layer_norm_backward,
    "relu": _each(cmp=1),
    "threshold": _each(cmp=1),
    "threshold_backward": _each(cmp=1),
    "hardtanh": _each(cmp=2),
    "hardtanh_backward": _each(cmp=2),
    "max_pool2d_with_indices": _max_pool,
    "max_pool2d": _max_pool,
    "max_pool2d_with_indices_backward": _gradient_of("pooling", add=1),
    "avg_pool2d": _avg_pool,
    "avg_pool2d_backward": _gradient_of("pooling", mul=1),
    "_adaptive_avg_pool2d": lambda c: Rule("pooling", {"add": c.numel("self"), "mul": c.e}),
    "_adaptive_avg_pool2d_backward": _gradient_of("pooling", mul=1),
    "adaptive_max_pool2d": lambda c: Rule("pooling", {"cmp": c.numel("self")}),
    "adaptive_max_pool2d_backward": _gradient_of("pooling", add=1),
    "mean": _mean,
    "_softmax": _softmax,
    "_softmax_backward_data": _each("softmax", add=2, mul=3),
    "_log_softmax": _log_softmax,
    "_log_softmax_backward_data": _each("loss", add=1, mul=1),
    "nll_loss_forward": _nll_loss,
    "nll_loss2d_forward": _nll_loss,
    "nll_loss_backward": lambda c: Rule("loss", {}, skip=("self",)),
    "nll_loss2d_backward": lambda c: Rule("loss", {}, skip=("self",)),
    "embedding": lambda c: Rule("elementwise", {}, read_elements={"weight": c.e}),
    "embedding_dense_backward": lambda c: Rule("elementwise", {"add": c.numel("grad_output")},
                                               write_roles={"result": "state"}),
    "native_dropout": _dropout,
    "native_dropout_backward": _each(mul=1),
    "bernoulli": _each(cmp=1),
    "add": _add,
    "sub": _add,
    "rsub": _add,
    "mul": _each(mul=1),
    "div": _div,
    "addcmul": _addcmul,
    "addcdiv": _addcdiv,
    "sqrt": _each(sqrt=1),
    "rsqrt": _each(sqrt=1, div=1),
    "reciprocal": _each(div=1),
    "neg": _each(add=1),
    "pow": _pow,
    "lerp": _each(add=2, mul=1),
    "clamp": _clamp,
    "clamp_min": _each(cmp=1),
    "clamp_max": _each(cmp=1),
    "sum": _reduce(add=1),
    "amax": _reduce(cmp=1),
    "amin": _reduce(cmp=1),
    "argmax": _reduce(cmp=1),
    "argmin": _reduce(cmp=1),
    "prod": _reduce(mul=1),
    "cumsum": _reduce(add=1),
    "var": _reduce(add=2, mul=1, out_div=1),
    "var_mean": _reduce(add=2, mul=1, out_div=1),
    "std": _reduce(add=2, mul=1, out_div=1, out_sqrt=1),
    "std_mean": _reduce(add=2, mul=1, out_div=1, out_sqrt=1),
    "norm": _reduce(add=1, mul=1, out_sqrt=1),
    "linalg_vector_norm": _reduce(add=1, mul=1, out_sqrt=1),
    "logsumexp": _reduce(cmp=1, add=2, exp=1, out_exp=1),
}


def _natural(c):
    """An operator without a rule: one FP32 operation of the kind its name suggests per element of
    its largest floating-point tensor."""
    words = set(w for w in c.base.split("_") if w)
    if any(w.startswith("hard") for w in words):
        kind = "cmp"
    else:
        kind = next((k for k, names in _WORDS if words & names), "add")
    op_kind = "loss" if words & {"loss", "entropy"} else "elementwise"
    return Rule(op_kind, {kind: max(c.e, c.largest_input())})


def rule(c):
    """The Rule of a call. `max` and `min` with a second tensor are elementwise (a comparison)."""
    if c.base in ("max", "min"):
        if c.overload in ("default", "dim"):
            return _reduce(cmp=1)(c)
        return Rule("elementwise", per(c.e, cmp=1))
    f = RULES.get(c.name) or RULES.get(c.base)
    return f(c) if f is not None else _natural(c)


def forward_names(name):
    """The forward operators a backward operator differentiates (for its layer)."""
    if name in FORWARD_OF:
        return FORWARD_OF[name]
    for suffix in ("_backward_data", "_backward"):
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            return (base, base + "_")
    return ()
