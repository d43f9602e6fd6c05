#!/usr/bin/python3
"""mfsim_torch end to end: a captured torchvision ResNet-18 step equals `mfsim trace --network
resnet18` record by record, and its operations outside the GEMMs (`ops`) equal those of `mfsim
trace --ops` operator by operator where PyTorch runs the same work (the differences are pinned);
the captured operations are simulated from the file and from memory; a small MLP's operations are
exactly the expected list; every torchvision classification model captures on the meta device
with its MACs checked against an independent count (torchvision_models.py); a
Transformer encoder layer's MACs equal the closed form; bad input is one line and exit 2 with no
file written; `mfsim capture` runs it all with the Python mfsim was built with. Exit 77 (CTest:
skipped) where python3-torch is missing. CTest runs each test case as its own test."""

import contextlib
import copy
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

try:
    import torch
    import torchvision  # noqa: F401
except ImportError:
    print("skipped: python3-torch or python3-torchvision is not installed (scripts/setup.sh installs them)")
    sys.exit(77)

import mfsim_torch
import mfsim_torch.__main__ as cli

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_models  # noqa: E402

MFSIM = os.environ.get("MFSIM_BINARY", "build/mfsim")
PYTHON_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python")


def records(path):
    with open(path) as f:
        return json.load(f)["records"]


def operations(path):
    with open(path) as f:
        return json.load(f)["ops"]


def total(ops, names, phase, what="elements"):
    """Sum over the operations named `names` in `phase` of their elements or of one kind of flops."""
    return sum(o["elements"] if what == "elements" else o["flops"].get(what, 0)
               for o in ops if o["name"] in names and o["phase"] == phase)


def native_mfsim():
    """The native module beside the mfsim binary (build/python), or None where it is not built."""
    d = os.path.join(os.path.dirname(os.path.abspath(MFSIM)), "python")
    if d not in sys.path:
        sys.path.insert(0, d)
    try:
        import mfsim
    except ImportError:
        return None
    return mfsim


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def key(r):
    layer = r["layer"].replace("downsample.0", "downsample")  # torchvision's Sequential index
    return (layer, r["phase"], r["M"], r["N"], r["K"], r.get("repeat", 1), json.dumps(r.get("conv"), sort_keys=True))


def capture_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "mfsim_torch", "capture"] + list(args), capture_output=True,
                          text=True, cwd=cwd, env=env)


BAD_MODEL = """import torch

def boom():
    raise ValueError("no weights here")

def three():
    return 3

def tiny():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
"""


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
        self.assertEqual(operations(a), operations(b))
        # 2 ReLUs and 2 max pools, forward and backward, the loss's 4 operators, fc's bias gradient
        # (the convolutions' biases are added inside aten.convolution and its backward).
        self.assertEqual(len(operations(a)), 2 * 4 + 4 + 1)

    def test_resnet18_operations_equal_the_generator(self):
        # The step with the update (--optimizer sgd: momentum and weight decay, as the generator's).
        out, gen = os.path.join(self.d, "cap.json"), os.path.join(self.d, "gen.json")
        b, image = 2, "64x64"
        r = capture_cli("--model", "torchvision:resnet18", "--batch", str(b), "--input", "3x" + image,
                        "--optimizer", "sgd", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        subprocess.run([MFSIM, "trace", "--network", "resnet18", "--batch", str(b), "--image", image, "--ops", "-o", gen],
                       check=True, capture_output=True)
        cap, ref = operations(out), operations(gen)
        self.assertEqual({o["phase"] for o in cap}, {"fwd", "bwd", "update"})

        def same(cap_names, ref_names, phase, *what):
            for w in ("elements",) + what:
                self.assertEqual(total(cap, cap_names, phase, w), total(ref, ref_names, phase, w), (cap_names, phase, w))
                self.assertGreater(total(cap, cap_names, phase, w), 0, (cap_names, phase, w))

        # The same work, the same arithmetic: batch norm (20 of them), ReLU (17), max pool, global
        # average pooling's forward, the residual additions' forward, softmax cross-entropy.
        self.assertEqual(sum(o["name"] == "native_batch_norm" for o in cap), 20)
        same(("native_batch_norm",), ("batchnorm",), "fwd", "add", "mul", "div", "sqrt")
        same(("native_batch_norm_backward",), ("batchnorm",), "bwd", "add", "mul")
        same(("relu_",), ("relu",), "fwd", "cmp")
        same(("threshold_backward",), ("relu",), "bwd", "cmp")
        same(("max_pool2d_with_indices",), ("maxpool",), "fwd", "cmp")
        same(("max_pool2d_with_indices_backward",), ("maxpool",), "bwd", "add")
        same(("mean",), ("avgpool",), "fwd", "add", "mul")
        same(("add_",), ("residual_add",), "fwd", "add")
        for phase in ("fwd", "bwd"):
            for w in ("add", "mul", "div", "exp", "cmp"):
                self.assertEqual(total(cap, ("_log_softmax", "nll_loss_forward", "_log_softmax_backward_data",
                                             "nll_loss_backward"), phase, w),
                                 total(ref, ("softmax_cross_entropy",), phase, w), (phase, w))
        # The update: one weight-decay add, one momentum multiply, the momentum's add and the
        # parameter's per parameter, as the generator's 3 add and 3 mul over its 11,689,512 parameters.
        params = total(ref, ("sgd_momentum",), "update")
        self.assertEqual(params, 11689512)
        for name, n in (("add", 1), ("mul_", 1), ("add_", 2)):
            self.assertEqual(total(cap, (name,), "update"), n * params, name)
        for w in ("add", "mul"):
            self.assertEqual(sum(o["flops"].get(w, 0) for o in cap if o["phase"] == "update"),
                             total(ref, ("sgd_momentum",), "update", w), w)
        self.assertTrue(all(t.get("role") == "state" for o in cap if o["phase"] == "update"
                            for t in o["reads"] + o["writes"]))
        # The residual gradients merge at each block's input (the skip path's and the branch's),
        # which a downsampling block has twice its output's elements: the generator counts the same.
        same(("add",), ("residual_add",), "bwd", "add")
        self.assertEqual(total(cap, ("add",), "bwd", "add"), total(cap, ("add",), "bwd"))
        # Where PyTorch runs other work. The average pool's gradient: PyTorch divides the broadcast
        # gradient (every input element), the generator the gradient before broadcasting it (2 x 2 =
        # 4 positions at 64 x 64).
        same(("div",), ("avgpool",), "bwd")
        self.assertEqual(total(cap, ("div",), "bwd", "mul"), 4 * total(ref, ("avgpool",), "bwd", "mul"))
        # The classifier's bias: added inside aten.addmm (a GEMM record), so only its gradient, a sum.
        self.assertEqual(total(cap, ("sum",), "bwd", "add"), total(ref, ("bias_grad",), "bwd", "add"))
        self.assertEqual(total(cap, ("sum",), "bwd"), 1000)
        # Roles: the backward pass reads what the forward pass saved, written once as `save`.
        saved = sum(t["elements"] for o in cap for t in o["reads"] if t.get("role") == "saved")
        save = sum(t["elements"] for o in cap for t in o["writes"] if t.get("role") == "save")
        self.assertEqual(saved, save)
        self.assertEqual(total(cap, ("threshold_backward",), "bwd"),
                         sum(t["elements"] for o in cap if o["name"] == "threshold_backward"
                             for t in o["reads"] if t.get("role") == "saved"))

    def test_captured_operations_are_simulated_from_the_file_and_from_memory(self):
        model = torchvision.models.resnet18(num_classes=10).to("meta")
        x = torch.randn(2, 3, 32, 32, device="meta")
        path, rep = os.path.join(self.d, "r18.json"), os.path.join(self.d, "rep.json")
        with mfsim_torch.capture(path, model) as cap:
            torch.nn.functional.cross_entropy(model(x), torch.zeros(2, dtype=torch.long, device="meta")).backward()
        self.assertEqual(len(operations(path)), len(cap.ops))
        # 20 batch norms, 17 ReLUs, 8 residual additions, max pool: each forward and backward; the
        # average pool's mean and its gradient's division; the loss's 4 operators; the bias gradient.
        self.assertEqual(len(cap.ops), 2 * (20 + 17 + 8 + 1) + 2 + 4 + 1)
        self.assertNotIn("update", {o.phase for o in cap.ops})  # no optimizer in the step
        for fusion in ("unfused", "fused"):
            subprocess.run([MFSIM, "simulate", "-q", "--trace", path, "--mode", "timing", "--set",
                            "vector.fusion=" + fusion, "--report", rep], check=True, capture_output=True)
            with open(rep) as f:
                ng = json.load(f)["total"]["non_gemm"]
            self.assertEqual(ng["ops"], len(cap.ops))
            # (fused, the vector unit's operand writes add elements of their own, kind quantizer)
            operand_writes = ng["by_kind"].get("quantizer", {"elements": 0})["elements"]
            self.assertEqual(ng["elements"] - operand_writes, sum(o.elements for o in cap.ops))
            self.assertEqual(operand_writes > 0, fusion == "fused")
        mfsim = native_mfsim()
        if mfsim is None:
            self.skipTest("the native module mfsim is not built (build/python)")
        mem = mfsim.simulate(cap.trace(), mode="timing", params={"vector.fusion": "fused"})
        self.assertEqual(mem["total"]["non_gemm"], ng)

    def test_a_small_mlp_gives_exactly_its_operations(self):
        # Linear(4, 8) -> ReLU -> Linear(8, 3), batch 5, cross-entropy, plain SGD.
        got = {}
        for device in ("meta", "cpu"):
            m = MLP().to(device)
            opt = torch.optim.SGD(m.parameters(), lr=0.1, foreach=False)
            x = torch.randn(5, 4, device=device)
            with mfsim_torch.capture(None, m) as cap:
                torch.nn.functional.cross_entropy(m(x), torch.zeros(5, dtype=torch.long, device=device)).backward()
                opt.step()
            got[device] = cap.trace_json()
        self.assertEqual(got["meta"], got["cpu"])
        doc = got["meta"]
        self.assertEqual(len(doc["records"]), 5)  # fc1 fwd, bwd_weight; fc2 fwd, bwd_data, bwd_weight
        want = [
            # kind, name, layer, phase, elements, flops
            ("elementwise", "relu", "act", "fwd", 40, {"cmp": 40}),
            # 15 logits in 5 rows: per element 2 add, 1 mul, 1 exp, 1 cmp; per row 1 add, 1 div, 1 exp
            ("loss", "_log_softmax", "model", "fwd", 15, {"add": 35, "mul": 15, "div": 5, "exp": 20, "cmp": 15}),
            ("loss", "nll_loss_forward", "model", "fwd", 1, {"add": 5}),
            ("loss", "nll_loss_backward", "model", "bwd", 15, {}),
            ("loss", "_log_softmax_backward_data", "model", "bwd", 15, {"add": 15, "mul": 15}),
            ("reduction", "sum", "fc2", "bwd", 3, {"add": 15}),      # fc2's bias gradient
            ("elementwise", "threshold_backward", "act", "bwd", 40, {"cmp": 40}),
            ("reduction", "sum", "fc1", "bwd", 8, {"add": 40}),      # fc1's bias gradient
            ("optimizer", "add_", "fc1", "update", 32, {"add": 32, "mul": 32}),  # w += -lr * grad
            ("optimizer", "add_", "fc1", "update", 8, {"add": 8, "mul": 8}),
            ("optimizer", "add_", "fc2", "update", 24, {"add": 24, "mul": 24}),
            ("optimizer", "add_", "fc2", "update", 3, {"add": 3, "mul": 3}),
        ]
        self.assertEqual([(o["kind"], o["name"], o.get("layer", o["name"]), o["phase"], o["elements"], o["flops"])
                          for o in doc["ops"]], want)
        by_name = {(o["name"], o["phase"], o["elements"]): o for o in doc["ops"]}

        def tensors(o, side):
            return [(t["tensor"], t["elements"], t.get("role", "stream")) for t in o[side]]
        # ReLU's output is read again by its backward: saved there, written once more (`save`) here.
        self.assertEqual(tensors(by_name["relu", "fwd", 40], "writes"), [("result", 40, "stream"), ("result", 40, "save")])
        self.assertEqual(tensors(by_name["threshold_backward", "bwd", 40], "reads"),
                         [("grad_output", 40, "stream"), ("self", 40, "saved")])
        self.assertEqual(tensors(by_name["_log_softmax_backward_data", "bwd", 15], "reads"),
                         [("grad_output", 15, "stream"), ("output", 15, "saved")])
        self.assertEqual(tensors(by_name["sum", "bwd", 3], "writes"), [("result", 3, "state")])  # a gradient
        self.assertEqual(tensors(by_name["add_", "update", 24], "reads"), [("self", 24, "state"), ("other", 24, "state")])
        self.assertEqual(doc["description"], "other aten operators (recorded as ops): _log_softmax 1, "
                         "_log_softmax_backward_data 1, add_ 4, nll_loss_backward 1, nll_loss_forward 1, relu 1, sum 2, "
                         "threshold_backward 1; other aten operators (not simulated): zeros 2")  # labels, profiler
        path, m = os.path.join(self.d, "mlp.json"), MLP()
        with mfsim_torch.capture(path, m):
            m(torch.randn(5, 4)).sum().backward()
        # relu, the loss's sum, fc2's bias gradient, relu's backward, fc1's bias gradient
        self.assertEqual([o["name"] for o in operations(path)], ["relu", "sum", "sum", "threshold_backward", "sum"])
        subprocess.run([MFSIM, "inspect", path], check=True, capture_output=True)

    def test_the_adam_update_follows_its_closed_form(self):
        out = os.path.join(self.d, "adam.json")
        r = capture_cli("--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "--optimizer", "adam", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        update = [o for o in operations(out) if o["phase"] == "update"]
        p, tensors = (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 7 * 7 * 10 + 10), 6
        # Per parameter: m = b1 m + (1 - b1) g: 1 add, 2 mul; v = b2 v + (1 - b2) g g: 1 add, 3 mul;
        # sqrt(v) / sqrt(1 - b2^t) + eps: 1 sqrt, 1 mul, 1 add; w += -lr / (1 - b1^t) m / that: 1 add,
        # 1 mul, 1 div. Per parameter tensor: its step count + 1. (The generator's Adam: 8 mul.)
        flops = {w: sum(o["flops"].get(w, 0) for o in update) for w in ("add", "mul", "div", "sqrt", "exp", "cmp")}
        self.assertEqual(flops, {"add": 4 * p + tensors, "mul": 7 * p, "div": p, "sqrt": p, "exp": 0, "cmp": 0})
        self.assertEqual(total(update, ("addcdiv_",), "update"), p)  # the parameters' writes
        self.assertEqual({o["layer"] for o in update}, {"0", "3", "7"})
        with open(out) as f:
            self.assertIn(", update adam;", json.load(f)["description"])

    def test_more_than_16_tensors_of_an_operation_fold_by_format_and_role(self):
        from mfsim_torch.capture import _Op
        op = _Op("elementwise", "x", "x", "fwd", 1, {}, [], [], 0)
        ts = [["t%d" % i, i, "fp32" if i % 3 else "bf16", "state" if i % 2 else "stream"] for i in range(20)]
        folded = op._tensors(ts)
        self.assertEqual(len(folded), 4)
        self.assertEqual(sum(t["elements"] for t in folded), sum(range(20)))
        self.assertEqual(len(op._tensors(ts[:16])), 16)

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
        for args, message in cases:  # in this process: one torch import for all
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = cli.main(["capture"] + args + ["-o", out])
            self.assertEqual((code, err.getvalue()), (2, message), args)
            self.assertFalse(os.path.exists(out))
        r = capture_cli("--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", self.d)
        self.assertEqual(r.stderr, "mfsim_torch: error: %s: is a directory, expected a file\n" % self.d)
        self.assertEqual(os.listdir(self.d), [])

    def test_vgg16_captures_on_the_meta_device_as_on_the_cpu(self):
        # aten::_adaptive_avg_pool2d_backward has no Meta kernel in torch 1.13: the capture's rule.
        a, b = os.path.join(self.d, "meta.json"), os.path.join(self.d, "cpu.json")
        for path, device in ((a, "meta"), (b, "cpu")):
            r = capture_cli("--model", "torchvision:vgg16", "--batch", "1", "--input", "3x224x224", "-o", path,
                            "--device", device)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(records(a)), 47)
        self.assertEqual(records(a), records(b))

    def test_every_torchvision_classification_model_matches_the_independent_count(self):
        # All 80 of torchvision 0.14 in about 30 s (scripts/capture_torchvision.sh prints the table).
        names = torchvision_models.classification_models()
        self.assertGreaterEqual(len(names), 80)
        failures = []
        for name in names:
            try:
                torchvision_models.check(name, self.d, MFSIM)
            except AssertionError as e:
                failures.append(str(e))
        self.assertEqual(failures, [])
        self.assertEqual(os.listdir(self.d), [])

    def test_the_independent_count_sees_what_it_checks(self):
        # The checker itself: a model whose loss skips a head fails the weight-gradient check.
        class TwoHeads(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = torch.nn.Linear(8, 4), torch.nn.Linear(8, 3)

            def forward(self, x):
                return self.a(x), self.b(x)

        m, x = TwoHeads(), torch.randn(5, 8)
        count = torchvision_models.IndependentCount()
        with mfsim_torch.capture(os.path.join(self.d, "t.json"), m) as cap:
            with count:
                out = m(x)
            out[0].sum().backward()
        self.assertEqual(count.total, 5 * 8 * 4 + 5 * 8 * 3)
        self.assertEqual(sum(r.macs() for r in cap.records if r.phase == "fwd"), count.total)
        self.assertEqual(sum(r.macs() for r in cap.records if r.phase == "bwd_weight"), 5 * 8 * 4)

    def test_operators_without_a_meta_kernel_run_on_the_cpu_for_their_shapes(self):
        model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(3, 4, 3))
        recs = {}
        for device in ("meta", "cpu"):
            m = copy.deepcopy(model).to(device)
            with mfsim_torch.capture(os.path.join(self.d, device + ".json"), m) as cap:
                m(torch.randn(2, 2, 9, 9, device=device)).sum().backward()
            recs[device] = records(os.path.join(self.d, device + ".json"))
            self.assertEqual(dict(cap.cpu_fallbacks), {"reflection_pad2d_backward": 1} if device == "meta" else {})
        self.assertEqual(recs["meta"], recs["cpu"])
        self.assertEqual(len(recs["meta"]), 5)

    def test_every_output_of_a_model_is_trained(self):
        # GoogLeNet returns its auxiliary classifiers' logits too: their layers get a backward.
        r = capture_cli("--model", "torchvision:googlenet", "--batch", "2", "--input", "3x224x224",
                        "-o", os.path.join(self.d, "g.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        phases = {(x["layer"], x["phase"]) for x in records(os.path.join(self.d, "g.json"))}
        for layer in ("aux1.fc2", "aux2.conv.conv", "fc"):
            self.assertIn((layer, "bwd_weight"), phases)

    def test_every_bad_input_is_one_line_exit_2_and_leaves_nothing(self):
        with open(os.path.join(self.d, "badmodel.py"), "w") as f:
            f.write(BAD_MODEL)
        os.mkdir(os.path.join(self.d, "sub"))
        before = sorted(os.listdir(self.d))
        step = ["--batch", "2", "--input", "3x224x224"]
        cases = [
            (["--model", "torchvision:resnet18"] + step + ["-o", "x.json", "--scalesim-csv", "sub"],
             "sub: is a directory, expected a file"),
            (["--model", "badmodel:boom", "--batch", "2", "--input", "4", "-o", "x.json"],
             "--model: badmodel:boom failed: no weights here"),
            (["--model", "badmodel:three", "--batch", "2", "--input", "4", "-o", "x.json"],
             "--model: badmodel:three returned int, not a torch.nn.Module"),
            (["--model", "torchvision:get_weight"] + step + ["-o", "x.json"],
             "--model: torchvision:get_weight failed: get_weight() missing 1 required positional argument: 'name'"),
            (["--model", "torchvision:list_models"] + step + ["-o", "x.json"],
             "--model: torchvision:list_models returned list, not a torch.nn.Module"),
            (["--model", "torchvision:detection"] + step + ["-o", "x.json"],
             '--model: torchvision has no model "detection"'),
            (["--model", "torchvision:resnet18", "--batch", "2", "--input", "3x224", "-o", "x.json"],
             "torchvision:resnet18 on input 2x3x224: the step failed: Invalid channel dimensions"),
            (["--model", "torchvision:vit_b_32", "--batch", "2", "--input", "3x32x32", "-o", "x.json"],
             "torchvision:vit_b_32 on input 2x3x32x32: the step failed: Wrong image height! Expected 224 but got 32!"),
            (["--model", "torchvision:resnet18", "--batch", "100000", "--input", "3x2240x2240", "-o", "x.json"],
             "conv1 fwd: a GEMM dimension of 125440000000 passes mfsim's limit 2^31 - 1"),
            (["--model", "torchvision:resnet18"] + step + ["-o", "/nonexistent/x.json"],
             "/nonexistent/x.json: cannot create file: no directory /nonexistent"),
            (["--model", "torchvision:resnet18"] + step + ["-o", "/proc/x.json"],
             "/proc/x.json: cannot create file: No such file or directory"),
            (["--model", "badmodel:tiny", "--batch", "2", "--input", "4", "-o", "badmodel.py"],
             "badmodel.py: is the same file as the input %s; refusing to overwrite an input"
             % os.path.join(self.d, "badmodel.py")),
            (["--model", "badmodel:tiny", "--batch", "2", "--input", "4", "-o", "x.json", "--scalesim-csv", "./x.json"],
             "./x.json (--scalesim-csv): is the same file as the output x.json (-o); name each output once"),
            (["--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", "x.bin", "--operands", "potq"],
             "x.bin (the payload file of -o): is the same file as the output x.bin (-o); name each output once"),
            (["--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", "x.json", "--max-payload-mb", "nan"],
             "--max-payload-mb: expected a size >= 0, got nan"),
            (["--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", ""],
             "-o: expected a file name, got an empty one"),
            (["--model", "builtin:cnn", "--batch", "x", "--input", "1x28x28", "-o", "x.json"],
             "argument --batch: invalid int value: 'x'; see 'python3 -m mfsim_torch capture --help'"),
            (["--model", "builtin:cnn", "--input", "1x28x28", "-o", "x.json"],
             "the following arguments are required: --batch; see 'python3 -m mfsim_torch capture --help'"),
        ]
        # In this process (one torch import for all): the command line's main() as `python3 -m` runs it.
        cwd = os.getcwd()
        os.chdir(self.d)
        sys.path.insert(0, self.d)
        try:
            for args, message in cases:
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    code = cli.main(["capture"] + args)
                self.assertEqual((code, err.getvalue()), (2, "mfsim_torch: error: %s\n" % message), args)
                self.assertEqual(sorted(os.listdir(self.d)), before, args)
        finally:
            sys.path.remove(self.d)
            os.chdir(cwd)
        # The same through the command line: the exit status, one line, nothing written.
        r = capture_cli("--model", "torchvision:resnet18", "--batch", "2", "--input", "3x224x224", "-o", "x.json",
                        "--scalesim-csv", "sub", cwd=self.d)
        self.assertEqual((r.returncode, r.stderr), (2, "mfsim_torch: error: sub: is a directory, expected a file\n"))
        self.assertEqual(sorted(os.listdir(self.d)), before)
        with open(os.path.join(self.d, "badmodel.py")) as f:
            self.assertEqual(f.read(), BAD_MODEL)
        # A Python without torch (-S: no site-packages) says which interpreter and what to install.
        r = subprocess.run(["/usr/bin/python3", "-S", "-m", "mfsim_torch", "capture", "--model", "builtin:cnn"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=PYTHON_DIR))
        self.assertEqual((r.returncode, r.stderr), (2, "mfsim_torch: error: /usr/bin/python3 cannot import torch: "
                         "install Debian's python3-torch and python3-torchvision (scripts/setup.sh does), or run "
                         "'mfsim capture', which uses the Python mfsim was built with\n"))

    def test_outputs_follow_symlinks_write_through_fifos_and_respect_the_umask(self):
        target, link = os.path.join(self.d, "target.json"), os.path.join(self.d, "link.json")
        with open(target, "w") as f:
            f.write("old")
        os.symlink("target.json", link)
        fifo = os.path.join(self.d, "pipe.csv")
        os.mkfifo(fifo)
        got = []

        def read():
            with open(fifo) as f:
                got.append(f.read())

        reader = threading.Thread(target=read)
        reader.start()
        old = os.umask(0o027)
        try:
            r = capture_cli("--model", "builtin:cnn", "--batch", "2", "--input", "1x28x28", "-o", link,
                            "--scalesim-csv", fifo)
        finally:
            os.umask(old)
        reader.join(30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(len(records(target)), 8)
        self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o640)
        self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode))
        self.assertEqual(got[0].splitlines()[:2], ["Layer name, M, N, K,", "0, 1568, 16, 9,"])
        self.assertEqual(sorted(os.listdir(self.d)), ["link.json", "pipe.csv", "target.json"])

    def test_mfsim_capture_uses_the_python_mfsim_was_built_with(self):
        # A python3 first on PATH that is not the one mfsim was built with is never run.
        fake = os.path.join(self.d, "bin")
        os.mkdir(fake)
        with open(os.path.join(fake, "python3"), "w") as f:
            f.write("#!/bin/sh\necho wrong python >&2\nexit 99\n")
        os.chmod(os.path.join(fake, "python3"), 0o755)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PATH"] = fake + ":" + env.get("PATH", "")
        a, b = os.path.join(self.d, "a.json"), os.path.join(self.d, "b.json")
        r = subprocess.run([MFSIM, "capture", "--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "-o", a],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"^mfsim_torch: wrote .*a.json \(8 GEMM records, ")
        self.assertEqual(capture_cli("--model", "builtin:cnn", "--batch", "3", "--input", "1x28x28", "-o", b).returncode, 0)
        self.assertEqual(records(a), records(b))
        subprocess.run([MFSIM, "simulate", "-q", "--trace", a, "--mode", "timing", "--report",
                        os.path.join(self.d, "r.json")], check=True, capture_output=True, env=env)
        # Its errors and exit status are the capture's.
        r = subprocess.run([MFSIM, "capture", "--model", "builtin:cnn", "--batch", "0", "--input", "1x28x28", "-o", a],
                           capture_output=True, text=True, env=env)
        self.assertEqual((r.returncode, r.stderr), (2, "mfsim_torch: error: --batch: expected a positive integer, got 0\n"))
        r = subprocess.run([MFSIM, "capture", "--model", "builtin:cnn"], capture_output=True, text=True, env=env)
        self.assertEqual((r.returncode, r.stderr), (2, "mfsim_torch: error: the following arguments are required: "
                         "--batch, --input, -o/--output; see 'mfsim capture --help'\n"))
        r = subprocess.run([MFSIM, "capture", "--help"], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: mfsim capture [-h] --model MODEL"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
