"""mfsim from Python: the simulator's C++ core as a native module (docs/python.md).

    import mfsim
    trace = mfsim.network_trace("resnet18", batch=32)
    report = mfsim.simulate(trace, array="mfmac", rows=32, cols=32, dataflow="os")
    savings = mfsim.compare(trace, rows=32, cols=32, tables=["paper", "horowitz45"])
    mfsim.layers_table(report)            # a pandas DataFrame, one row per layer
    mfsim.compare_table(savings)          # one row per array

Every call runs in this process over the library the `mfsim` command line is made of (sweep runs
its points as `mfsim simulate` processes, as the command line does); reports are the command
line's JSON reports as dicts, key by key. Simulations release the GIL; Ctrl-C stops them and
raises KeyboardInterrupt. Errors raise mfsim.InputError (the command line's exit code 2) and
mfsim.VerificationError (exit code 3) with the command line's one-line message.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from mfsim.errors import Error, InputError, VerificationError
from mfsim import _core

__version__: str = _core.version
__all__ = [
    "Trace", "load_trace", "network_trace", "topology_trace", "example_trace", "simulate", "compare", "sweep",
    "params", "pe_types", "energy_table", "gemms_table", "layers_table", "phases_table", "compare_table",
    "compare_layers_table", "table_csv", "table_text", "Error", "InputError", "VerificationError",
]

if os.environ.get("MFSIM_EXECUTABLE"):
    _core.set_executable(os.environ["MFSIM_EXECUTABLE"])

Report = Dict[str, Any]


class Trace:
    """A training step's GEMMs (docs/trace-format.md): read from a file, generated, captured from a
    PyTorch model (mfsim_torch.capture(None, model).trace()) or built from its JSON document.

    The trace is parsed and validated once, when the object is made (an InputError names the
    field); operands (the payload) are read record by record as a simulation needs them."""

    def __init__(self, native: Any, document: Optional[str] = None, payload: bytes = b"",
                 path: Optional[str] = None):
        self._native = native
        self._document = document  # JSON text of an in-memory trace
        self._payload = payload
        self.path: Optional[str] = path  # the file it was read from (None: in memory)

    @classmethod
    def from_json(cls, document: Union[str, Mapping[str, Any]], payload: bytes = b"",
                  name: str = "<memory>") -> "Trace":
        """A trace from its JSON document (a dict or its text) and, for a trace with operands, the
        payload file's bytes. `name` stands for the file in error messages."""
        text = document if isinstance(document, str) else json.dumps(document)
        return cls(_core.trace_from_memory(name, text, bytes(payload)), text, bytes(payload))

    @property
    def name(self) -> str:
        """The file name, or the name an in-memory trace was given."""
        return self._native.name

    def document(self) -> Dict[str, Any]:
        """The trace's JSON document as a dict."""
        if self._document is None:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        return json.loads(self._document)

    @property
    def records(self) -> List[Dict[str, Any]]:
        """The GEMM records (layer, phase, M, N, K, repeat, formats, ...) as dicts."""
        return self.document()["records"]

    def __len__(self) -> int:
        return int(self._native.gemm_count())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the step: the sum of M*N*K*repeat."""
        return sum(r["M"] * r["N"] * r["K"] * r.get("repeat", 1) for r in self.records)

    def save(self, path: str) -> None:
        """Writes the trace to `path` (and its payload to NAME.bin beside it), each file whole
        (a temporary file renamed over the target)."""
        doc = self.document()
        if self._document is None and "payload_file" in doc:
            src = os.path.join(os.path.dirname(os.path.abspath(self.path)), doc["payload_file"]["path"])
            with open(src, "rb") as f:
                payload = f.read()
        else:
            payload = self._payload
        if payload:
            bin_path = os.path.splitext(path)[0] + ".bin"
            doc["payload_file"] = dict(doc.get("payload_file", {}), path=os.path.basename(bin_path),
                                       bytes=len(payload))
            _write_atomic(bin_path, payload)
        _write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())

    def __repr__(self) -> str:
        return "<mfsim.Trace %s: %d GEMM records>" % (self.name, len(self))


def _write_atomic(path: str, data: bytes) -> None:
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load_trace(path: str) -> Trace:
    """Reads and validates a trace file (.json; its payload file is checked, read on demand)."""
    return Trace(_core.load_trace(os.fspath(path)), path=os.fspath(path))


def _run(command: str, args: Sequence[str]) -> None:
    _core.run_command(command, [str(a) for a in args])


def _trace_via(command: str, args: Sequence[str], name: str) -> Trace:
    """A trace written by one of the command line's generators, held in memory."""
    with tempfile.TemporaryDirectory(prefix="mfsim-") as d:
        out = os.path.join(d, "trace.json")
        _run(command, list(args) + ["-q", "-o", out])
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        payload = b""
        if "payload_file" in doc:
            with open(os.path.join(d, doc["payload_file"]["path"]), "rb") as f:
                payload = f.read()
            doc["payload_file"]["path"] = name + ".bin"
        return Trace.from_json(doc, payload, name)


def network_trace(network: str, batch: int, image: Optional[str] = None, seq: Optional[int] = None,
                  tokens: Optional[int] = None, vocab: Optional[int] = None,
                  phases: Sequence[str] = ("fwd", "bwd_data", "bwd_weight"), format: str = "pot4") -> Trace:
    """The shape-only training trace of a known network (`mfsim trace --list-networks`; a
    Transformer spec such as "transformer:layers=2,d=64"), as `mfsim trace --network` writes it.
    `image` is "HxW" for CNNs; `seq`, `tokens` and `vocab` are the Transformer's."""
    args = ["--network", network, "--batch", batch, "--phases", ",".join(phases), "--format", format]
    for flag, v in (("--image", image), ("--seq", seq), ("--tokens", tokens), ("--vocab", vocab)):
        if v is not None:
            args += [flag, v]
    return _trace_via("trace", args, "<%s trace>" % network)


def topology_trace(path: str, batch: int, gemm: bool = False, training: bool = False) -> Trace:
    """A trace from a SCALE-Sim topology file (`mfsim trace --scalesim-topology`)."""
    args = ["--scalesim-topology", os.fspath(path), "--batch", batch]
    if gemm:
        args.append("--gemm")
    if training:
        args.append("--training")
    return _trace_via("trace", args, "<%s>" % os.path.basename(path))


def example_trace(seed: int = 1) -> Trace:
    """The small example trace with operands (`mfsim example-trace`)."""
    return _trace_via("example-trace", ["--seed", seed], "<example trace>")


def _as_trace(trace: Union[Trace, str, os.PathLike]) -> Trace:
    if isinstance(trace, Trace):
        return trace
    if isinstance(trace, (str, os.PathLike)):
        return load_trace(trace)
    raise TypeError("trace: expected an mfsim.Trace or a path, got %s" % type(trace).__name__)


def _params_text(params: Optional[Mapping[str, Any]]) -> str:
    if params is None:
        return ""
    if not isinstance(params, Mapping):
        raise TypeError("params: expected a dict of parameter names to values")
    return json.dumps(params)


def _shorthands(**kw: Any) -> List[tuple]:
    names = {"array": "array.kind", "rows": "array.rows", "cols": "array.cols", "dataflow": "array.dataflow"}
    return [(names[k], str(v)) for k, v in kw.items() if v is not None]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def simulate(trace: Union[Trace, str, os.PathLike], array: Optional[str] = None, rows: Optional[int] = None,
             cols: Optional[int] = None, dataflow: Optional[str] = None, mode: str = "auto",
             params: Optional[Mapping[str, Any]] = None, energy_table: str = "paper",
             area_table: str = "published45", vcd: Optional[str] = None) -> Report:
    """Replays `trace` (an mfsim.Trace or a path) on one array and returns the report
    `mfsim simulate` writes, as a dict.

    array, rows, cols, dataflow: the array (None: the parameter's default, mfmac 32x32 os);
    params: any parameter (`mfsim.params()`), e.g. {"dram.bandwidth": 16}, nested or dotted
    keys, overriding the shorthands as --set does; mode: auto|value|timing;
    energy_table, area_table: built-in names or JSON files; vcd: a waveform file (value mode).

    Raises InputError for bad input and VerificationError (with `.report`) when a GEMM's result is
    not bit-exact."""
    t = _as_trace(trace)
    text = _core.simulate(t._native, _params_text(params),
                          _shorthands(array=array, rows=rows, cols=cols, dataflow=dataflow), mode, energy_table,
                          area_table, "" if vcd is None else os.fspath(vcd), _main_thread())
    return json.loads(text)


def compare(trace: Union[Trace, str, os.PathLike], rows: Optional[int] = None, cols: Optional[int] = None,
            dataflow: Optional[str] = None, tables: Sequence[str] = ("paper",),
            arrays: Optional[Sequence[str]] = None, mode: str = "auto",
            params: Optional[Mapping[str, Any]] = None, iso_area: bool = False,
            area_budget_mm2: Optional[float] = None) -> Report:
    """The trace on every array type (or those `arrays` names; FP32, the baseline, always) and the
    savings report `mfsim compare` writes, as a dict. The arrays run one after another in this
    process. `tables`: energy tables (the first is the headline); iso_area: size every array to
    the MF-MAC array's area; area_budget_mm2: size every array to this area."""
    t = _as_trace(trace)
    if isinstance(tables, str):
        tables = [tables]
    if isinstance(arrays, str):
        arrays = [arrays]
    if area_budget_mm2 is not None and not area_budget_mm2 > 0:
        raise InputError("compare: area_budget_mm2: expected a positive area in mm2, got %r" % (area_budget_mm2,))
    text = _core.compare(t._native, _params_text(params), _shorthands(rows=rows, cols=cols, dataflow=dataflow),
                         mode, ",".join(tables), ",".join(arrays or []), bool(iso_area), float(area_budget_mm2 or 0),
                         _main_thread())
    return json.loads(text)


def sweep(trace: Union[Trace, str, os.PathLike], out: str, arrays: Union[str, Sequence[str]] = "all",
          rows: Sequence[int] = (32,), cols: Sequence[int] = (32,), dataflow: Sequence[str] = ("os",),
          grid: Optional[Mapping[str, Sequence[Any]]] = None, params: Optional[Mapping[str, Any]] = None,
          tables: Sequence[str] = ("paper",), mode: str = "auto", jobs: Optional[int] = None,
          resume: bool = False, point_timeout: float = 0, area_budget_mm2: Optional[float] = None,
          quiet: bool = True) -> Report:
    """`mfsim sweep`: every point of the grid (arrays x rows x cols x dataflow x each `grid`
    parameter's values) as its own `mfsim simulate` process, `jobs` at a time, into the directory
    `out` (sweep.json, results.json, results.csv, points/). Returns results.json as a dict.
    `params`: parameters every point gets (as --config). An in-memory trace is first written to
    out/trace.json."""
    t = _as_trace(trace)
    os.makedirs(out, exist_ok=True)
    if t.path is None:
        trace_path = os.path.join(out, "trace.json")
        t.save(trace_path)
    else:
        trace_path = t.path
    lst = lambda v: v if isinstance(v, str) else ",".join(str(x) for x in v)  # noqa: E731
    args = ["--trace", trace_path, "--out", out, "--arrays", lst(arrays), "--rows", lst(rows), "--cols", lst(cols),
            "--dataflow", lst(dataflow), "--energy-table", lst(tables), "--mode", mode,
            "--point-timeout", point_timeout]
    for name, values in (grid or {}).items():
        args += ["--set", "%s=%s" % (name, lst(values))]
    if params:
        cfg = os.path.join(out, "params.json")
        _write_atomic(cfg, (json.dumps(params, indent=1) + "\n").encode())
        args += ["--config", cfg]
    if jobs is not None:
        args += ["--jobs", jobs]
    if resume:
        args.append("--resume")
    if area_budget_mm2 is not None:
        args += ["--area-budget", area_budget_mm2]
    if quiet:
        args.append("--quiet")
    _run("sweep", args)
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return json.load(f)


def params() -> List[Dict[str, Any]]:
    """Every simulation parameter: name, type, default, unit, range or choices, description
    (docs/params.md)."""
    return json.loads(_core.params())


def pe_types() -> List[str]:
    """The array kinds (PE types) of the registry."""
    return list(_core.pe_types())


def energy_table(name: str = "paper") -> Dict[str, Any]:
    """An energy table (built-in name or JSON file): its rows with their sources, and the
    per-operation energies in pJ (op_pj)."""
    return json.loads(_core.energy_table(os.fspath(name)))


# ---- tables -------------------------------------------------------------------------------------

def _table(report: Report, which: str, form: str) -> str:
    """A simulate report's gemm, layer or phase table as JSON rows, CSV or text (report_tables.h)."""
    if not isinstance(report, Mapping) or report.get("report") != "simulate":
        raise InputError("%s table: expected a simulate report (mfsim.simulate's result)" % which)
    return _core.report_table(json.dumps(report), which, form)


def _rows(report: Report, which: str) -> List[Dict[str, Any]]:
    return json.loads(_table(report, which, "json"))


def _frame(rows: List[Dict[str, Any]], index: Optional[str]):
    import pandas as pd
    df = pd.DataFrame(rows)
    return df.set_index(index) if index and not df.empty else df


def gemms_table(report: Report):
    """One row per GEMM record of a simulate report: shape, mode, cycles, utilization, DRAM bytes,
    energy in pJ (total and by component), mapping and verification. A pandas DataFrame."""
    return _frame(_rows(report, "gemm"), "index")


def layers_table(report: Report):
    """One row per layer (in trace order): its GEMMs summed (the same table as
    `mfsim simulate --layers-csv`). A pandas DataFrame indexed by layer."""
    return _frame(_rows(report, "layer"), "layer")


def phases_table(report: Report):
    """One row per phase (fwd, bwd_data, bwd_weight): its GEMMs summed. A pandas DataFrame."""
    return _frame(_rows(report, "phase"), "phase")


def table_csv(report: Report, which: str = "layer") -> str:
    """A simulate report's gemm, layer or phase table as CSV text (the command line's)."""
    return _table(report, which, "csv")


def table_text(report: Report, which: str = "layer") -> str:
    """The same table as aligned text."""
    return _table(report, which, "text")


def compare_table(report: Report, table: Optional[str] = None):
    """One row per array of a compare report: cycles, time, energy in pJ (total, per MAC and by
    component) and the savings against FP32, under `table` (default: the headline table); with
    non-GEMM work in the trace, also the whole step (step cycles and energy, the linear share of
    both, the whole-step saving), as `mfsim compare --csv`."""
    import pandas as pd
    if not isinstance(report, Mapping) or report.get("report") != "compare":
        raise InputError("compare table: expected a compare report (mfsim.compare's result)")
    tab = report["by_table"][table or report["energy_table"]]
    rows = []
    for kind, a in report["arrays"].items():
        e = tab["energy_pj"][kind]
        row = {"array": kind, "cycles": a["cycles"]["total"], "time_seconds": a["time_seconds"],
               "utilization": a["utilization"], "macs": a["macs"], "energy_pj": e["total"],
               "energy_per_mac_pj": e["per_mac"]}
        for comp, pj in e["by_component"].items():
            row["energy_%s_pj" % comp] = pj
        s = tab["savings_vs_fp32"].get(kind)
        row["saving_total"] = s["total"] if s else 0.0
        row["saving_arithmetic"] = s["arithmetic"] if s else 0.0
        if "step" in a:  # the trace has non-GEMM work: the whole step (docs/non-gemm.md)
            row["step_cycles"] = a["step"]["cycles"]
            row["linear_share_cycles"] = a["linear_share"]["cycles"]
            row["energy_non_gemm_pj"] = e["non_gemm"]
            row["energy_step_pj"] = e["step_total"]
            row["linear_share_energy"] = e["linear_share"]
            row["saving_step"] = s["step_total"] if s else 0.0
        rows.append(row)
    return pd.DataFrame(rows).set_index("array")


def compare_layers_table(report: Report, table: Optional[str] = None):
    """Energy in pJ per layer (rows, trace order) and array (columns) of a compare report, under
    `table` (default: the headline table)."""
    import pandas as pd
    if not isinstance(report, Mapping) or report.get("report") != "compare":
        raise InputError("compare layers table: expected a compare report (mfsim.compare's result)")
    tab = report["by_table"][table or report["energy_table"]]
    cols = {kind: e["by_layer"] for kind, e in tab["energy_pj"].items()}
    df = pd.DataFrame(cols)
    df.index.name = "layer"
    return df
