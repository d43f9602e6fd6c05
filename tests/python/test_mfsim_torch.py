#!/usr/bin/python3
"""mfsim_torch end to end: a captured torchvision ResNet-18 step equals `mfsim trace --network
resnet18` record by record; a Transformer encoder layer's MACs equal the closed form; bad input is
one line and exit 2 with no file written. Exit 77 (CTest: skipped) where python3-torch is missing."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
    import torchvision  # noqa: F401
except ImportError:
    print("skipped: python3-torch or python3-torchvision is not installed (scripts/setup.sh installs them)")
    sys.exit(77)

import mfsim_torch

MFSIM = os.environ.get("MFSIM_BINARY", "build/mfsim")


def records(path):
    with open(path) as f:
        return json.load(f)["records"]


def key(r):
    layer = r["layer"].replace("downsample.0", "downsample")  # torchvision's Sequential index
    return (layer, r["phase"], r["M"], r["N"], r["K"], r.get("repeat", 1), json.dumps(r.get("conv"), sort_keys=True))


def capture_cli(*args):
    return subprocess.run([sys.executable, "-m", "mfsim_torch", "capture"] + list(args), capture_output=True, text=True)


class MfsimTorch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def test_resnet18_equals_the_generator(self):
        out, gen, csv = (os.path.join(self.d, n) for n in ("cap.json", "gen.json", "fwd.csv"))
        r = capture_cli("--model", "torchvision:resnet18", "--batch", "2", "--input", "3x224x224", "-o", out,
                        "--scalesim-csv", csv)
        self.assertEqual(r.returncode, 0, r.stderr)
        subprocess.run([MFSIM, "trace", "--network", "resnet18", "--batch", "2", "-o", gen], check=True,
                       capture_output=True)
        cap, ref = sorted(map(key, records(out))), sorted(map(key, records(gen)))
        self.assertEqual(len(cap), 62)
        self.assertEqual(cap, ref)  # shapes, phases, repeats and convolution geometry
        # The trace is valid for mfsim, and so is the SCALE-Sim topology of its forward GEMMs.
        subprocess.run([MFSIM, "inspect", out], check=True, capture_output=True)
        t = os.path.join(self.d, "t.json")
        subprocess.run([MFSIM, "trace", "--scalesim-topology", csv, "--gemm", "--batch", "1", "-o", t], check=True,
                       capture_output=True)
        self.assertEqual(len(records(t)), 21)

    def test_real_and_meta_steps_agree(self):
        a, b = os.path.join(self.d, "meta.json"), os.path.join(self.d, "cpu.json")
        for path, device in ((a, "meta"), (b, "cpu")):
            r = capture_cli("--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "-o", path,
                            "--device", device)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(records(a), records(b))

    def test_potq_operands_replay_bit_for_bit_on_the_three_arrays(self):
        out = os.path.join(self.d, "q.json")
        r = capture_cli("--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "--operands", "potq", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = records(out)
        self.assertEqual(len(recs), 8)
        self.assertTrue(all("payload" in x for x in recs))
        subprocess.run([MFSIM, "inspect", "--recompute", out], check=True, capture_output=True)
        rep = os.path.join(self.d, "r.json")
        for array in ("mfmac", "int8", "fp32"):
            for df in ("os", "ws", "is"):
                p = subprocess.run([MFSIM, "simulate", "-q", "--trace", out, "--array", array, "--dataflow", df,
                                    "--rows", "5", "--cols", "7", "--mode", "value", "--report", rep],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                with open(rep) as f:
                    v = json.load(f)["verification"]
                self.assertEqual((v["gemms_checked"], v["mismatches"]), (8, 0), (array, df))
        # The payload limit keeps later GEMMs shape-only and says so.
        r = capture_cli("--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "--operands", "potq",
                        "--max-payload-mb", "0.01", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            doc = json.load(f)
        self.assertIn("GEMMs without operands (--max-payload-mb)", doc["description"])
        self.assertLess(sum("payload" in x for x in doc["records"]), 8)
        r = capture_cli("--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "--operands", "potq",
                        "--device", "meta", "-o", os.path.join(self.d, "m.json"))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "mfsim_torch: error: --operands needs the step's values: use --device cpu "
                                   "(the default with --operands)\n")

    def test_transformer_layer_macs_follow_the_closed_form(self):
        d, h, ff, s, b = 64, 4, 256, 16, 3
        layer = torch.nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, batch_first=True)
        x = torch.randn(b, s, d)
        path = os.path.join(self.d, "tf.json")
        with mfsim_torch.capture(path, layer) as cap:
            layer(x).sum().backward()
        fwd = b * s * (4 * d * d + 2 * d * ff) + 2 * b * s * s * d  # projections, FFN, scores, context
        self.assertEqual(sum(r.macs() for r in cap.records if r.phase == "fwd"), fwd)
        # Backward: every GEMM twice, except the input projection's data gradient (x needs none).
        self.assertEqual(cap.macs(), 3 * fwd - b * s * 3 * d * d)
        phases = {(r.layer, r.phase) for r in cap.records}
        for layer_name in ("linear1", "linear2", "self_attn.out_proj"):
            for phase in ("fwd", "bwd_data", "bwd_weight"):
                self.assertIn((layer_name, phase), phases)

    def test_bad_input_is_one_line_and_no_file(self):
        out = os.path.join(self.d, "x.json")
        cases = [
            (["--model", "torchvision:nope", "--batch", "2", "--input", "3x32x32"],
             'mfsim_torch: error: --model: torchvision has no model "nope"\n'),
            (["--model", "resnet18", "--batch", "2", "--input", "3x32x32"],
             'mfsim_torch: error: --model: expected torchvision:NAME, builtin:NAME or module.path:factory, got "resnet18"\n'),
            (["--model", "builtin:cnn", "--batch", "2", "--input", "1x28xq"],
             'mfsim_torch: error: --input: expected positive sizes like 3x224x224, got "1x28xq"\n'),
            (["--model", "builtin:cnn", "--batch", "0", "--input", "1x28x28"],
             "mfsim_torch: error: --batch: expected a positive integer, got 0\n"),
            (["--model", "builtin:cnn", "--batch", "2", "--input", "3x28x28"],
             "mfsim_torch: error: builtin:cnn on input 2x3x28x28: the step failed: Invalid channel dimensions\n"),
            (["--model", "no_such_module:f", "--batch", "2", "--input", "1x28x28"],
             "mfsim_torch: error: --model: cannot import no_such_module: No module named 'no_such_module'\n"),
        ]
        for args, message in cases:
            r = capture_cli(*args, "-o", out)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stderr, message)
            self.assertFalse(os.path.exists(out))
        r = capture_cli("--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", self.d)
        self.assertEqual(r.stderr, "mfsim_torch: error: %s: is a directory, expected a file\n" % self.d)
        self.assertEqual(os.listdir(self.d), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
