"""The models the command line captures and the training step it runs on them."""

import importlib
import warnings

import torch
from torch.overrides import TorchFunctionMode

from mfsim_torch.errors import CaptureError


class _Seq2Seq(torch.nn.Module):
    """torch.nn.Transformer on one input used as source and target (d 512, 8 heads, 6 + 6 layers)."""

    def __init__(self):
        super().__init__()
        self.transformer = torch.nn.Transformer(512, 8, 6, 6, 2048, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.transformer(x, x)


def builtin_models():
    return {
        "transformer": (_Seq2Seq, "tokens x 512"),
        "transformer-encoder": (lambda: torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(512, 8, 2048, dropout=0.0, batch_first=True), 6), "tokens x 512"),
        "cnn": (lambda: torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 10)), "1x28x28"),
    }


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# Parameters and buffers are made by these factories; on meta they get shapes without memory or
# random initialisation (ConvNeXt-Large builds in 0.3 s instead of 27 s). Factories of data a
# constructor may read (arange, linspace, tensor) stay on the CPU; reading a meta tensor's values
# raises, and the model is then built on the CPU (RegNet reads its widths).
_UNINITIALISED = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                  torch.empty_strided}


class _BuildOnMeta(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _UNINITIALISED:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def _build(spec, factory, meta):
    if meta:
        try:
            with warnings.catch_warnings(), _BuildOnMeta():
                warnings.simplefilter("ignore")  # torchvision's notes on weight initialisation
                model = factory()
            if isinstance(model, torch.nn.Module):
                return model
        except Exception:  # noqa: BLE001 - the constructor reads values: build it for real
            pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return factory()
    except Exception as e:  # noqa: BLE001 - any failure of the factory is the user's
        raise CaptureError("--model: %s failed: %s" % (spec, first_line(e)))


def load_model(spec, meta=False):
    """The model named by --model: torchvision:NAME, builtin:NAME or module.path:factory. With
    `meta`, torchvision and built-in models are built on the meta device where they allow it."""
    kind, _, name = spec.partition(":")
    if not name or not kind:
        raise CaptureError("--model: expected torchvision:NAME, builtin:NAME or module.path:factory, got \"%s\"" % spec)
    if kind == "torchvision":
        import torchvision
        factory = getattr(torchvision.models, name, None) if not name.startswith("_") else None
        if factory is None or not callable(factory) or isinstance(factory, type(torchvision)):
            raise CaptureError("--model: torchvision has no model \"%s\"" % name)
        model = _build(spec, factory, meta)
    elif kind == "builtin":
        models = builtin_models()
        if name not in models:
            raise CaptureError("--model: unknown built-in \"%s\"; expected %s" % (name, "|".join(sorted(models))))
        model = _build(spec, models[name][0], meta)
    else:
        try:
            module = importlib.import_module(kind)
        except Exception as e:  # noqa: BLE001 - any import failure is the user's module
            raise CaptureError("--model: cannot import %s: %s" % (kind, first_line(e)))
        factory = getattr(module, name, None)
        if factory is None or not callable(factory):
            raise CaptureError("--model: %s has no callable %s" % (kind, name))
        model = _build(spec, factory, False)
    if not isinstance(model, torch.nn.Module):
        raise CaptureError("--model: %s returned %s, not a torch.nn.Module" % (spec, type(model).__name__))
    return model


def parse_input(text):
    try:
        dims = [int(x) for x in text.split("x")]
    except ValueError:
        dims = []
    if not dims or any(d < 1 for d in dims):
        raise CaptureError("--input: expected positive sizes like 3x224x224, got \"%s\"" % text)
    return dims


def output_tensors(out):
    """Every tensor a model returns: a tensor, the tensors of a tuple or list (GoogLeNet's and
    Inception's auxiliary classifiers among them), an output object's `logits`, a dict's values."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):  # GoogLeNetOutputs(logits, aux_logits2, aux_logits1) among them
        return [t for o in out for t in output_tensors(o)]
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return [out.logits]
    if isinstance(out, dict):
        return [t for o in out.values() for t in output_tensors(o)]
    return []


def loss_of(out, device):
    """The step's loss: per output tensor, cross-entropy against fixed labels for N x C logits,
    otherwise its sum; summed over the outputs, so every output's layers get their backward."""
    loss = None
    for t in output_tensors(out):
        if not t.requires_grad:
            continue
        if t.dim() == 2 and t.dtype.is_floating_point:
            term = torch.nn.functional.cross_entropy(t, torch.zeros(t.shape[0], dtype=torch.long, device=device))
        else:
            term = t.float().sum()
        loss = term if loss is None else loss + term
    if loss is None:
        raise CaptureError("the model returned no tensor that depends on its parameters: nothing to train")
    return loss


def make_optimizer(model, name):
    """The update --optimizer adds to the step: SGD with momentum 0.9 and weight decay 1e-4, or Adam,
    both in PyTorch's per-parameter form (foreach=False, which runs on the meta device). SGD's
    momentum buffers are made beforehand, as a first step would, so that the captured update is a
    later step's (a first step only copies the gradient into them)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=False)
        for p in params:
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
        return opt
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, foreach=False)
    raise CaptureError("--optimizer: expected sgd or adam, got \"%s\"" % name)


def run_step(model, x, device, optimizer=None):
    """Forward, loss, backward and, with an optimizer, its step."""
    loss_of(model(x), device).backward()
    if optimizer is not None:
        optimizer.step()
