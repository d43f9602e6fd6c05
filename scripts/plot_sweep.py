#!/usr/bin/python3
"""Plots of an `mfsim sweep` directory (PNG and SVG, written into it):

  energy_per_mac.*      energy per MAC against array size (PEs), one line per arithmetic
  cycles_utilization.*  cycles and utilization against array size, one line per dataflow
  edp_heatmap.*         energy-delay product over rows x cols, one panel per arithmetic

Usage: scripts/plot_sweep.py DIR [--table NAME]
Energy uses the sweep's first energy table unless --table names another one it holds.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The same family as the HTML savings report: one colour per arithmetic, per dataflow.
ARRAY_COLORS = {"fp32": "#7f7f7f", "int8": "#1f77b4", "mfmac": "#d62728"}
DATAFLOW_STYLE = {"os": "-", "ws": "--", "is": ":"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--table")
    a = ap.parse_args()
    path = os.path.join(a.dir, "results.json")
    try:
        res = json.load(open(path))
    except (OSError, ValueError) as e:
        sys.exit("plot_sweep: %s: %s" % (path, e))
    table = a.table or res["energy_tables"][0]
    if table not in res["energy_tables"]:
        sys.exit("plot_sweep: --table: %s is not in this sweep (%s)" % (table, ", ".join(res["energy_tables"])))
    pts = []
    for p in res["points"]:
        if p["status"] != "ok":
            continue
        q = p["params"]
        t = p["report"]["total"]
        pts.append({"array": q["array.kind"], "rows": int(q["array.rows"]), "cols": int(q["array.cols"]),
                    "df": q["array.dataflow"], "cycles": t["cycles"]["total"], "util": t["utilization"],
                    "epm": p["energy_pj"][table]["per_mac"], "energy": p["energy_pj"][table]["total"]})
    if not pts:
        sys.exit("plot_sweep: no successful points in %s" % path)
    plt.rcParams.update({"font.family": "sans-serif", "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    arrays = [x for x in ("fp32", "int8", "mfmac") if any(p["array"] == x for p in pts)]
    dfs = [x for x in ("os", "ws", "is") if any(p["df"] == x for p in pts)]

    def series(filt, key):
        sel = sorted((p for p in pts if filt(p)), key=lambda p: (p["rows"] * p["cols"], p["rows"]))
        best = {}
        for p in sel:  # one value per array size: the best configuration of that size
            n = p["rows"] * p["cols"]
            if n not in best or p[key] < best[n]:
                best[n] = p[key]
        xs = sorted(best)
        return xs, [best[x] for x in xs]

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arr in arrays:
        xs, ys = series(lambda p: p["array"] == arr, "epm")
        ax.plot(xs, ys, "o-", color=ARRAY_COLORS.get(arr), label=arr)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("array size (PEs, rows x cols)")
    ax.set_ylabel("energy per MAC (pJ, %s table)" % table)
    ax.set_title("Energy per MAC (best dataflow per size)")
    ax.legend()
    save(fig, a.dir, "energy_per_mac")

    fig, (c1, c2) = plt.subplots(1, 2, figsize=(11, 4))
    for arr in arrays:
        for df in dfs:
            xs, ys = series(lambda p: p["array"] == arr and p["df"] == df, "cycles")
            c1.plot(xs, ys, DATAFLOW_STYLE[df], marker="o", color=ARRAY_COLORS.get(arr), label="%s %s" % (arr, df))
            sel = [p for p in pts if p["array"] == arr and p["df"] == df]
            by = {}
            for p in sel:
                n = p["rows"] * p["cols"]
                by[n] = max(by.get(n, 0), p["util"])
            c2.plot(sorted(by), [100 * by[n] for n in sorted(by)], DATAFLOW_STYLE[df], marker="o",
                    color=ARRAY_COLORS.get(arr), label="%s %s" % (arr, df))
    for ax in (c1, c2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("array size (PEs)")
    c1.set_yscale("log")
    c1.set_ylabel("cycles")
    c1.set_title("Cycles")
    c2.set_ylabel("utilization (%)")
    c2.set_title("Utilization")
    c2.legend(fontsize=8, ncol=2)
    save(fig, a.dir, "cycles_utilization")

    rows = sorted({p["rows"] for p in pts})
    cols = sorted({p["cols"] for p in pts})
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.2 * len(arrays), 3.8), squeeze=False)
    for ax, arr in zip(axes[0], arrays):
        grid = [[float("nan")] * len(cols) for _ in rows]
        for p in pts:
            if p["array"] != arr:
                continue
            i, j = rows.index(p["rows"]), cols.index(p["cols"])
            edp = math.log10(p["energy"] * p["cycles"])
            grid[i][j] = edp if math.isnan(grid[i][j]) else min(grid[i][j], edp)
        im = ax.imshow(grid, origin="lower", cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(cols)), [str(c) for c in cols])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows])
        ax.set_xlabel("cols")
        ax.set_ylabel("rows")
        ax.set_title("%s: log10 EDP (pJ x cycles)" % arr)
        ax.grid(False)
        fig.colorbar(im, ax=ax)
    save(fig, a.dir, "edp_heatmap")


def save(fig, d, name):
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(d, "%s.%s" % (name, ext)), dpi=110)
    plt.close(fig)
    print("plot_sweep: wrote %s.png and %s.svg" % (os.path.join(d, name), os.path.join(d, name)))


if __name__ == "__main__":
    main()
