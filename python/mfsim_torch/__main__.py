"""python3 -m mfsim_torch capture --model torchvision:resnet18 --batch 32 --input 3x224x224 -o r18.json

Builds the model, runs one training step on a random batch (cross-entropy against random labels
when the model returns N x C logits, else the sum of its output) and writes the step's GEMMs as an
mfsim trace. Bad input is one line on stderr and exit status 2; no trace is written then.
"""

import argparse
import importlib
import os
import sys
import time

import torch

from mfsim_torch.capture import Capture, CaptureError


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


def load_model(spec):
    kind, _, name = spec.partition(":")
    if not name:
        raise CaptureError("--model: expected torchvision:NAME, builtin:NAME or module.path:factory, got \"%s\"" % spec)
    if kind == "torchvision":
        import torchvision
        factory = getattr(torchvision.models, name, None)
        if factory is None or not callable(factory):
            raise CaptureError("--model: torchvision has no model \"%s\"" % name)
        return factory()
    if kind == "builtin":
        models = builtin_models()
        if name not in models:
            raise CaptureError("--model: unknown built-in \"%s\"; expected %s" % (name, "|".join(sorted(models))))
        return models[name][0]()
    try:
        module = importlib.import_module(kind)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module
        raise CaptureError("--model: cannot import %s: %s" % (kind, str(e).splitlines()[0] if str(e) else type(e).__name__))
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        raise CaptureError("--model: %s has no callable %s" % (kind, name))
    return factory()


def parse_input(text):
    try:
        dims = [int(x) for x in text.split("x")]
    except ValueError:
        dims = []
    if not dims or any(d < 1 for d in dims):
        raise CaptureError("--input: expected positive sizes like 3x224x224, got \"%s\"" % text)
    return dims


def run_step(model, x, device):
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "logits"):
        out = out.logits
    if out.dim() == 2 and not out.dtype.is_complex:
        target = torch.zeros(out.shape[0], dtype=torch.long, device=device)
        loss = torch.nn.functional.cross_entropy(out, target)
    else:
        loss = out.float().sum()
    loss.backward()


def write_scalesim_csv(path, records):
    lines = ["Layer name, M, N, K,"]
    for r in records:
        if r.phase == "fwd":
            for _ in range(r.repeat):
                lines.append("%s, %d, %d, %d," % (r.layer.replace(",", "_") or "model", r.m, r.n, r.k))
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m mfsim_torch", description=__doc__.split("\n\n")[1])
    sub = ap.add_subparsers(dest="command")
    c = sub.add_parser("capture", help="capture one training step of a model as an mfsim trace")
    c.add_argument("--model", required=True,
                   help="torchvision:NAME, builtin:cnn|transformer|transformer-encoder, or module.path:factory")
    c.add_argument("--batch", type=int, required=True, help="examples per step")
    c.add_argument("--input", required=True, help="one example's shape, e.g. 3x224x224 (tokens: SEQxDIM)")
    c.add_argument("-o", "--output", required=True, help="trace file to write (.json)")
    c.add_argument("--scalesim-csv", help="also write the forward GEMMs as a SCALE-Sim topology file (GEMM form)")
    c.add_argument("--device", default=None, choices=["meta", "cpu"],
                   help="meta (default for shapes only): no arithmetic, fast; cpu: run the step for real")
    c.add_argument("--operands", choices=["potq"], help="also record PoT4 operands (ALS-POTQ) and exact "
                   "expected outputs, so that 'mfsim simulate --mode value' replays the step bit for bit (runs on cpu)")
    c.add_argument("--max-payload-mb", type=float, default=256.0,
                   help="operands: stop recording payloads past this size (later GEMMs stay shape-only)")
    args = ap.parse_args(argv)
    if args.command != "capture":
        ap.print_usage(sys.stderr)
        return 2
    try:
        if args.batch < 1:
            raise CaptureError("--batch: expected a positive integer, got %d" % args.batch)
        dims = parse_input(args.input)
        start = time.time()
        model = load_model(args.model)
        model.train()
        if args.operands and args.device == "meta":
            raise CaptureError("--operands needs the step's values: use --device cpu (the default with --operands)")
        device = torch.device(args.device or ("cpu" if args.operands else "meta"))
        try:
            model = model.to(device)
            x = torch.randn([args.batch] + dims, device=device)
            cap = Capture(args.output, model, generator="python3 -m mfsim_torch " + " ".join(sys.argv[1:] if argv is None else argv),
                          description="one training step of %s, batch %d, input %s" % (args.model, args.batch, args.input),
                          operands=args.operands, max_payload_mb=args.max_payload_mb)
            with cap:
                run_step(model, x, device)
        except CaptureError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CaptureError("%s on input %s: the step failed: %s" % (args.model, "x".join(map(str, [args.batch] + dims)), first))
        if args.scalesim_csv:
            write_scalesim_csv(args.scalesim_csv, cap.records)
        print("mfsim_torch: wrote %s (%d GEMM records, %.4g GMAC, %.1f s)" % (
            args.output, len(cap.records), cap.macs() / 1e9, time.time() - start), file=sys.stderr)
        return 0
    except CaptureError as e:
        print("mfsim_torch: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
