"""mfsim capture --model torchvision:resnet18 --batch 32 --input 3x224x224 -o r18.json
(or: /usr/bin/python3 -m mfsim_torch capture ..., with python/ on PYTHONPATH)

Builds the model, runs one training step on a random batch (cross-entropy against fixed labels
for every N x C logits output, else the sum of the output; with --optimizer, the update too) and
writes the step as an mfsim trace: its GEMMs and its other operators. Bad input is one line on
stderr and exit status 2; no file is written then.
"""

import argparse
import math
import os
import sys
import time

# Set by `mfsim capture` (apps/mfsim/cmd_capture.cpp), which runs this module with the Python it
# was built with: the program name in usage lines.
LAUNCHER = os.environ.get("MFSIM_TORCH_PROG")

try:
    import torch
    import torchvision  # noqa: F401
except ImportError as e:
    print("mfsim_torch: error: %s%s cannot import %s: install Debian's python3-torch and python3-torchvision "
          "(scripts/setup.sh does)%s" % (
              sys.executable, " (the Python mfsim was built with)" if LAUNCHER else "", e.name or "torch",
              "" if LAUNCHER else ", or run 'mfsim capture', which uses the Python mfsim was built with"),
          file=sys.stderr)
    sys.exit(2)

from mfsim_torch.capture import Capture
from mfsim_torch.errors import CaptureError
from mfsim_torch.files import check_distinct, check_output, loaded_module_files, write_all
from mfsim_torch.step import first_line, load_model, make_optimizer, parse_input, run_step


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit 2, like every other error."""

    def error(self, message):
        raise CaptureError("%s; see '%s --help'" % (message, self.prog))


def scalesim_csv(records):
    lines = ["Layer name, M, N, K,"]
    for r in records:
        if r.phase == "fwd":
            for _ in range(r.repeat):
                lines.append("%s, %d, %d, %d," % (r.layer.replace(",", "_") or "model", r.m, r.n, r.k))
    return ("\n".join(lines) + "\n").encode()


def parse_args(argv):
    prog = LAUNCHER or "python3 -m mfsim_torch"
    ap = _Parser(prog=prog, description=__doc__.split("\n\n")[1])
    sub = ap.add_subparsers(dest="command", parser_class=_Parser)
    c = sub.add_parser("capture", help="capture one training step of a model as an mfsim trace")
    c.add_argument("--model", required=True,
                   help="torchvision:NAME, builtin:cnn|transformer|transformer-encoder, or module.path:factory")
    c.add_argument("--batch", type=int, required=True, help="examples per step")
    c.add_argument("--input", required=True, help="one example's shape, e.g. 3x224x224 (tokens: SEQxDIM)")
    c.add_argument("-o", "--output", required=True, help="trace file to write (.json)")
    c.add_argument("--optimizer", choices=["sgd", "adam"],
                   help="also capture the update: SGD with momentum 0.9 and weight decay 1e-4 (a later step's), or "
                   "Adam (default: no update)")
    c.add_argument("--scalesim-csv", help="also write the forward GEMMs as a SCALE-Sim topology file (GEMM form)")
    c.add_argument("--device", default=None, choices=["meta", "cpu"],
                   help="meta (default for shapes only): no arithmetic, fast; cpu: run the step for real")
    c.add_argument("--operands", choices=["potq"], help="also record PoT4 operands (ALS-POTQ) and exact "
                   "expected outputs, so that 'mfsim simulate --mode value' replays the step bit for bit (runs on cpu)")
    c.add_argument("--max-payload-mb", type=float, default=256.0,
                   help="operands: stop recording payloads past this size (later GEMMs stay shape-only)")
    args = ap.parse_args(argv)
    if args.command != "capture":
        raise CaptureError("expected the command capture; see '%s --help'" % prog)
    return args


def capture(args, argv):
    if args.batch < 1:
        raise CaptureError("--batch: expected a positive integer, got %d" % args.batch)
    if not (math.isfinite(args.max_payload_mb) and args.max_payload_mb >= 0):
        raise CaptureError("--max-payload-mb: expected a size >= 0, got %s" % args.max_payload_mb)
    dims = parse_input(args.input)
    if args.operands and args.device == "meta":
        raise CaptureError("--operands needs the step's values: use --device cpu (the default with --operands)")
    device = torch.device(args.device or ("cpu" if args.operands else "meta"))
    # Every output is checked before any work, and again against the model's source once imported.
    outputs = [(args.output, "-o")]
    if args.scalesim_csv is not None:
        outputs.append((args.scalesim_csv, "--scalesim-csv"))
    if args.operands:
        outputs.append((os.path.splitext(args.output)[0] + ".bin", "the payload file of -o"))
    for path, option in outputs:
        check_output(path, option)
    check_distinct(outputs)
    start = time.time()
    model = load_model(args.model, meta=device.type == "meta")
    check_distinct(outputs, loaded_module_files())
    model.train()
    shape = "x".join(map(str, [args.batch] + dims))
    try:
        model = model.to(device)
        x = torch.randn([args.batch] + dims, device=device)
        optimizer = make_optimizer(model, args.optimizer) if args.optimizer else None
        cap = Capture(args.output, model, generator="python3 -m mfsim_torch " + " ".join(argv),
                      description="one training step of %s, batch %d, input %s%s" % (
                          args.model, args.batch, args.input, ", update %s" % args.optimizer if optimizer else ""),
                      operands=args.operands, max_payload_mb=args.max_payload_mb)
        cap.write_on_exit = False
        with cap:
            run_step(model, x, device, optimizer)
    except CaptureError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the model's step raises is a bad model or input
        raise CaptureError("%s on input %s: the step failed: %s" % (args.model, shape, first_line(e)))
    files = cap.outputs()
    if args.scalesim_csv is not None:
        files.append((args.scalesim_csv, scalesim_csv(cap.records)))
    write_all(files)
    print("mfsim_torch: wrote %s (%d GEMM records, %d other operations, %.4g GMAC, %.1f s)" % (
        args.output, len(cap.records), len(cap.ops), cap.macs() / 1e9, time.time() - start), file=sys.stderr)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        return capture(parse_args(argv), argv)
    except CaptureError as e:
        print("mfsim_torch: error: %s" % e, file=sys.stderr)
        return 2
    except MemoryError:
        print("mfsim_torch: error: out of memory (try a smaller --batch, or the default --device meta)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
