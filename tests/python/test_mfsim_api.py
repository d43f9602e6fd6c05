#!/usr/bin/python3
"""The Python module mfsim (python/mfsim) against the command line: simulate and compare give the
CLI's reports key by key on the example trace, a traced CNN training step and ResNet-18; the
tables add up to the report's totals and equal `simulate --layers-csv`; errors carry the CLI's
one-line message and exit kind; the GIL is released during a simulation; Ctrl-C stops a run with
KeyboardInterrupt and the interpreter goes on; a trace captured from PyTorch is simulated from
memory; sweep runs the CLI's process pool. CTest runs each test case as its own test
(PYTHONPATH=build/python)."""

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

import mfsim

MFSIM = os.environ.get("MFSIM_BINARY", "build/mfsim")
# Keys that differ between runs by nature: the command line echoed, wall-clock times, the report path.
VOLATILE = {"command", "performance", "report_file"}


def cli(*args, check=True):
    r = subprocess.run([MFSIM] + [str(a) for a in args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("mfsim %s: exit %d: %s" % (" ".join(map(str, args)), r.returncode, r.stderr))
    return r


def strip(report):
    return {k: v for k, v in report.items() if k not in VOLATILE}


class MfsimApi(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mfsim-api-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def cli_simulate(self, trace, *args):
        out = self.path("cli-simulate.json")
        cli("simulate", "-q", "--trace", trace, "--report", out, *args)
        with open(out) as f:
            return json.load(f)

    def cli_compare(self, trace, *args):
        out = self.path("cli-compare.json")
        cli("compare", "-q", "--trace", trace, "--report", out, *args)
        with open(out) as f:
            return json.load(f)

    def assert_same_report(self, cli_report, py_report):
        a, b = strip(cli_report), strip(py_report)
        self.assertEqual(list(a.keys()), list(b.keys()))
        for k in a:
            self.assertEqual(a[k], b[k], "key %s differs" % k)

    def example(self):
        p = self.path("example.json")
        cli("example-trace", "-o", p)
        return p

    def cnn_step(self, quant=("--quant", "als-potq", "--policy", "int8-activations")):
        p = self.path("cnn-step.json")
        cli("train", "-q", "--spec", "conv:4:3:2:1,relu,conv:6:3:2:1,relu,flatten,fc:10", "--epochs", "1",
            "--train-limit", "16", "--test-limit", "8", "--batch", "4", "--seed", "3", *quant, "--trace-out", p,
            "--report", self.path("cnn-train.json"))
        return p

    def resnet18(self):
        p = self.path("resnet18.json")
        cli("trace", "--network", "resnet18", "--batch", "8", "-o", p)
        return p

    # ---- equality with the command line ---------------------------------------------------------

    def test_simulate_equals_cli_example(self):
        p = self.example()
        for array, dataflow in (("mfmac", "os"), ("fp32", "ws"), ("int8", "is")):
            want = self.cli_simulate(p, "--array", array, "--dataflow", dataflow, "--rows", "8", "--cols", "4")
            got = mfsim.simulate(p, array=array, rows=8, cols=4, dataflow=dataflow)
            self.assert_same_report(want, got)
            self.assertGreater(got["verification"]["gemms_checked"], 0)

    def test_simulate_equals_cli_traced_cnn_step(self):
        p = self.cnn_step()
        want = self.cli_simulate(p, "--set", "dram.bandwidth=4", "--set", "array.second=shift")
        got = mfsim.simulate(mfsim.load_trace(p), params={"dram.bandwidth": 4, "array": {"second": "shift"}})
        self.assert_same_report(want, got)
        self.assertEqual(got["verification"]["mismatches"], 0)
        self.assertEqual(got["verification"]["gemms_checked"], got["verification"]["gemms"])

    def test_simulate_equals_cli_resnet18(self):
        p = self.resnet18()
        want = self.cli_simulate(p, "--array", "int8", "--energy-table", "horowitz45")
        got = mfsim.simulate(p, array="int8", energy_table="horowitz45")
        self.assert_same_report(want, got)
        # Several configurations in one process, each equal to its own CLI process: nothing
        # (the mapper's memo of searched tilings) carries over from one simulation to the next.
        t = mfsim.load_trace(p)
        for sets in ({"sram.a_kib": 8, "sram.b_kib": 8}, {"map.objective": "energy"}, {"dram.bandwidth": 2}, {"conv.im2col": "dram"}, {}):
            want = self.cli_simulate(p, *[a for k, v in sets.items() for a in ("--set", "%s=%s" % (k, v))])
            self.assert_same_report(want, mfsim.simulate(t, params=sets))

    def test_compare_equals_cli(self):
        for p in (self.example(), self.cnn_step(), self.resnet18()):
            want = self.cli_compare(p, "--energy-table", "paper,aladdin45", "--rows", "16", "--cols", "16")
            got = mfsim.compare(p, rows=16, cols=16, tables=["paper", "aladdin45"])
            self.assert_same_report(want, got)

    def test_compare_iso_area_equals_cli(self):
        p = self.resnet18()
        want = self.cli_compare(p, "--iso", "area", "--arrays", "mfmac,int8")
        got = mfsim.compare(p, iso_area=True, arrays=["mfmac", "int8"])
        self.assert_same_report(want, got)

    def test_in_memory_trace_equals_file(self):
        p = self.example()
        mem = mfsim.example_trace()
        self.assertIsNone(mem.path)
        self.assertEqual(len(mem), len(mfsim.load_trace(p)))
        a, b = mfsim.simulate(p), mfsim.simulate(mem)
        self.assertEqual(b["trace"], "<example trace>")
        a.pop("trace"), b.pop("trace")
        self.assert_same_report(a, b)
        # a generated network trace equals `mfsim trace` record by record
        net = mfsim.network_trace("resnet18", batch=8)
        with open(self.resnet18()) as f:
            self.assertEqual(net.records, json.load(f)["records"])
        self.assertEqual(net.macs, sum(r["M"] * r["N"] * r["K"] * r.get("repeat", 1) for r in net.records))
        # save() writes a trace the command line reads, payload included
        mem.save(self.path("saved.json"))
        self.assertTrue(os.path.exists(self.path("saved.bin")))
        c = self.cli_simulate(self.path("saved.json"))
        self.assertEqual(c["verification"], mfsim.simulate(mem)["verification"])

    # ---- tables ---------------------------------------------------------------------------------

    def test_tables_sum_to_totals_and_equal_cli_csv(self):
        p = self.cnn_step()
        csv_path = self.path("layers.csv")
        cli("simulate", "-q", "--trace", p, "--report", self.path("r.json"), "--layers-csv", csv_path)
        rep = mfsim.simulate(p)
        with open(csv_path) as f:
            self.assertEqual(f.read(), mfsim.table_csv(rep, "layer"))
        tot = rep["total"]
        for table in (mfsim.gemms_table(rep), mfsim.layers_table(rep), mfsim.phases_table(rep)):
            self.assertEqual(int(table["cycles"].sum()), tot["cycles"]["total"])
            self.assertEqual(int(table["stall_cycles"].sum()), tot["cycles"]["stall"])
            self.assertEqual(int(table["macs"].sum()), tot["macs"])
            self.assertEqual(int(table["dram_bytes"].sum()), tot["dram"]["bytes"])
            self.assertTrue(math.isclose(table["energy_pj"].sum(), rep["energy_pj"]["total"], rel_tol=1e-12))
            self.assertTrue(math.isclose(table["energy_share"].sum(), 1.0, rel_tol=1e-9))
            for comp, pj in rep["energy_pj"]["by_component"].items():
                self.assertTrue(math.isclose(table["energy_%s_pj" % comp].sum(), pj, rel_tol=1e-9, abs_tol=1e-9))
        layers = mfsim.layers_table(rep)
        self.assertEqual(list(layers.index), list(rep["energy_pj"]["by_layer"].keys()))
        for layer, pj in rep["energy_pj"]["by_layer"].items():
            self.assertTrue(math.isclose(layers.loc[layer, "energy_pj"], pj, rel_tol=1e-12))
        phases = mfsim.phases_table(rep)
        self.assertEqual(list(phases.index), ["fwd", "bwd_data", "bwd_weight"])
        for ph, t in rep["by_phase"].items():
            self.assertEqual(int(phases.loc[ph, "cycles"]), t["cycles"]["total"])
        cmp = mfsim.compare(p, arrays=["mfmac"])
        ct = mfsim.compare_table(cmp)
        self.assertEqual(sorted(ct.index), ["fp32", "mfmac"])
        self.assertEqual(ct.loc["mfmac", "energy_pj"], cmp["energy_pj"]["mfmac"]["total"])
        cl = mfsim.compare_layers_table(cmp)
        for kind in ("fp32", "mfmac"):
            self.assertTrue(math.isclose(cl[kind].sum(), cmp["energy_pj"][kind]["total"], rel_tol=1e-12))

    def test_params_tables_and_types(self):
        names = [p["name"] for p in mfsim.params()]
        self.assertIn("dram.bandwidth", names)
        out = cli("simulate", "--list-params").stdout
        for n in names:
            self.assertIn(n, out)
        registry = cli("--help").stdout.split("from the PE registry): ")[1].splitlines()[0]
        self.assertEqual("|".join(mfsim.pe_types()), registry)
        t = mfsim.energy_table("paper")
        self.assertEqual(t["name"], "paper")
        self.assertGreater(t["op_pj"]["fp32_mul"], t["op_pj"]["fp32_add"])
        self.assertTrue(all(e["source"] for e in t["entries"]))

    # ---- errors ---------------------------------------------------------------------------------

    def test_errors_carry_cli_message_and_kind(self):
        p = self.example()
        r = cli("simulate", "--trace", p, "--report", self.path("x.json"), "--set", "array.rows=0", check=False)
        self.assertEqual(r.returncode, 2)
        with self.assertRaises(mfsim.InputError) as e:
            mfsim.simulate(p, params={"array.rows": 0})
        self.assertEqual(e.exception.exit_code, 2)
        self.assertEqual(e.exception.kind, "input")
        # the same field named, the source being the params dict instead of --set
        self.assertIn("array.rows", str(e.exception))
        self.assertIn("params", str(e.exception))
        missing = self.path("none.json")
        r = cli("simulate", "--trace", missing, "--report", self.path("x.json"), check=False)
        with self.assertRaises(mfsim.InputError) as e:
            mfsim.load_trace(missing)
        self.assertEqual("mfsim: error: " + str(e.exception), r.stderr.strip())
        with self.assertRaises(mfsim.InputError) as e:
            mfsim.simulate(p, mode="fast")
        self.assertIn("mode", str(e.exception))
        with self.assertRaises(mfsim.InputError) as e:
            mfsim.compare(p, arrays=["nosuch"])
        r = cli("compare", "--trace", p, "--report", self.path("x.json"), "--arrays", "nosuch", check=False)
        self.assertEqual("mfsim: error: " + str(e.exception), r.stderr.strip())
        with self.assertRaises(mfsim.InputError):
            mfsim.Trace.from_json({"format": "mfsim-trace", "version": 1, "records": [{"M": -1}]})
        self.assertTrue(issubclass(mfsim.VerificationError, mfsim.Error))
        self.assertEqual(mfsim.VerificationError.exit_code, 3)
        with self.assertRaises(TypeError):
            mfsim.simulate(42)

    def test_verification_error_carries_report(self):
        # A record whose recorded accumulators are wrong (checksums recomputed): the array's bit-exact
        # result disagrees, so simulate raises VerificationError with the report, as the CLI exits 3.
        mem = mfsim.example_trace()
        doc = mem.document()
        payload = bytearray(mem._payload)
        rec = next(r for r in doc["records"] if r["a"]["format"] == "pot4" and "expected" in r.get("payload", {}))
        ref = rec["payload"]["expected"]
        payload[ref["offset"]] ^= 1  # flip one bit of the first accumulator
        import zlib
        ref["crc32"] = "%08x" % zlib.crc32(bytes(payload[ref["offset"]:ref["offset"] + ref["bytes"]]))
        bad = mfsim.Trace.from_json(doc, bytes(payload), "<bad>")
        with self.assertRaises(mfsim.VerificationError) as e:
            mfsim.simulate(bad)
        self.assertEqual(e.exception.exit_code, 3)
        self.assertIn("<bad>", str(e.exception))
        self.assertGreater(e.exception.report["verification"]["mismatches"], 0)
        bad.save(self.path("bad.json"))
        r = cli("simulate", "--trace", self.path("bad.json"), "--report", self.path("x.json"), check=False)
        self.assertEqual(r.returncode, 3)

    # ---- GIL and Ctrl-C -------------------------------------------------------------------------

    def test_gil_released_during_simulation(self):
        trace = mfsim.network_trace("resnet50", batch=32)
        done = threading.Event()
        elapsed = []

        def run():
            t0 = time.monotonic()
            mfsim.compare(trace, arrays=["mfmac", "int8"], mode="timing")
            elapsed.append(time.monotonic() - t0)
            done.set()

        th = threading.Thread(target=run)
        stamps = []
        th.start()
        while not done.is_set():
            stamps.append(time.monotonic())
            time.sleep(0.001)
        th.join()
        self.assertGreater(elapsed[0], 0.3, "the simulation is too short to tell")
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        # With the GIL held for the whole call, this thread would stall for all of it.
        self.assertLess(max(gaps), 0.25 * elapsed[0])

    def test_ctrl_c_stops_a_simulation(self):
        script = textwrap.dedent("""
            import os, signal, sys, threading, time
            import mfsim
            trace = mfsim.network_trace("resnet50", batch=32)
            small = mfsim.example_trace()
            threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            t0 = time.monotonic()
            try:
                mfsim.compare(trace, mode="timing")  # every array: several seconds
                print("not interrupted")
            except KeyboardInterrupt:
                print("interrupted after %.2f s" % (time.monotonic() - t0))
            r = mfsim.simulate(small)  # the interpreter and the simulator go on
            print("after: %d GEMMs checked" % r["verification"]["gemms_checked"])
        """)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("interrupted after"), r.stdout)
        self.assertLess(float(lines[0].split()[2]), 5.0)
        self.assertRegex(lines[1], r"^after: [1-9][0-9]* GEMMs checked$")

    # ---- sweep ----------------------------------------------------------------------------------

    def test_sweep_runs_the_cli_pool(self):
        out = self.path("sweep")
        res = mfsim.sweep(mfsim.example_trace(), out, arrays=["mfmac", "fp32"], rows=[4, 8], cols=[4], jobs=2)
        self.assertEqual(len(res["points"]), 4)
        self.assertTrue(os.path.exists(os.path.join(out, "trace.json")))
        for pt in res["points"]:
            self.assertEqual(pt["status"], "ok")
        cli_out = self.path("sweep-cli")
        cli("sweep", "-q", "--trace", os.path.join(out, "trace.json"), "--out", cli_out, "--arrays", "mfmac,fp32",
            "--rows", "4,8", "--cols", "4", "-j", "2")
        with open(os.path.join(cli_out, "results.json")) as f:
            want = json.load(f)

        def points(r):
            return [{k: v for k, v in p.items() if k not in ("wall_seconds", "report", "log")} for p in r["points"]]
        self.assertEqual(points(want), points(res))


if __name__ == "__main__":
    unittest.main()
