#!/usr/bin/python3
"""Plots of an `mfsim sweep` directory (PNG and SVG, written into it):

  energy_per_mac.*      energy per MAC against array size, one line per arithmetic and dataflow
  cycles_utilization.*  cycles (top) and utilization (bottom) against array size, one line per
                        arithmetic and dataflow
  edp_heatmap.*         energy-delay product over rows x cols, one panel per arithmetic and
                        dataflow, all panels on one colour scale
  area_pareto.*         step energy (left) and time (right) against the array's area (mm^2), every
                        point a dot in its arithmetic's colour, the Pareto front (no point smaller
                        and cheaper) as a line; the area budget, if the sweep had one, as a line

Every swept `--set` parameter (for example dram.bandwidth) with several values gets its own
column of panels, up to 4 columns; beyond that the panels are per value of the first such
parameter and the others are reduced to their best value, which the figure title says.
The line plots use square arrays (R x R) only when the sweep holds at least two square sizes;
otherwise each array size (PEs) shows the best aspect ratio R x C with R * C = PEs, and the
axis label says so. Non-square shapes are all in the heat map.

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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

# One colour and title per arithmetic, as the PE types declare them (sim/pe/*.cpp): read from
# the sweep's results.json ("arrays"); these are the fallbacks for older results files.
ARRAY_COLORS = {"fp32": "#7f7f7f", "int8": "#1f77b4", "mfmac": "#d62728"}
ARRAY_NAMES = {"fp32": "FP32", "int8": "INT8", "mfmac": "MF-MAC"}
ARRAY_ORDER = ["fp32", "int8", "mfmac"]
# Lines of different arithmetic can coincide (INT8 and MF-MAC share the OS timing): MF-MAC is
# drawn first, thick with big filled dots; INT8 on top, thin with hollow triangles; FP32 with
# squares. Markers are also nudged sideways (x_shift, in octaves; lines stay at the true x).
ARRAY_STYLE = {
    "mfmac": dict(lw=3.2, marker="o", ms=8, mfc=None, zorder=2, x_shift=0.0),
    "fp32": dict(lw=1.6, marker="s", ms=5.5, mfc=None, zorder=3, x_shift=-0.07),
    "int8": dict(lw=1.3, marker="^", ms=7, mfc="white", zorder=4, x_shift=0.07),
}
DEFAULT_STYLE = dict(lw=1.5, marker="D", ms=5, mfc=None, zorder=3, x_shift=0.0)
# Further arrays (the other PE types): each its own marker and sideways nudge, in report order.
EXTRA_STYLES = [dict(lw=1.4, marker=m, ms=6, mfc="white", zorder=5 + i, x_shift=dx)
                for i, (m, dx) in enumerate((("D", -0.035), ("v", 0.035), ("P", -0.1), ("X", 0.1), ("h", 0.0)))]
DATAFLOW_STYLE = {"os": "-", "ws": "--", "is": ":"}
GRID_AXES = ("array.kind", "array.rows", "array.cols", "array.dataflow")
MAX_FACETS = 4


def sort_values(vals):
    def key(v):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return sorted(vals, key=key)


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
    # The PE types' own titles and colours, in report order (the FP32 baseline first).
    for name, meta in res.get("arrays", {}).items():
        ARRAY_COLORS[name] = meta.get("color", ARRAY_COLORS.get(name))
        ARRAY_NAMES[name] = meta.get("title", ARRAY_NAMES.get(name, name))
    if res.get("arrays"):
        ARRAY_ORDER[:] = list(res["arrays"].keys())
    unstyled = [name for name in ARRAY_ORDER if name not in ARRAY_STYLE]
    for i, name in enumerate(unstyled):
        ARRAY_STYLE[name] = EXTRA_STYLES[i % len(EXTRA_STYLES)]
    table = a.table or res["energy_tables"][0]
    if table not in res["energy_tables"]:
        sys.exit("plot_sweep: --table: %s is not in this sweep (%s)" % (table, ", ".join(res["energy_tables"])))
    ok = [p for p in res["points"] if p["status"] == "ok"]
    if not ok:
        sys.exit("plot_sweep: no successful points in %s" % path)

    # Swept parameters other than the array grid (--set NAME=...): facets, or reduced and said so.
    extra = [k for k in res.get("axes", {}) if k not in GRID_AXES]
    for p in ok:
        extra += [k for k in p["params"] if k not in GRID_AXES and k not in extra]
    values = {k: sort_values({p["params"].get(k, "") for p in ok}) for k in extra}
    varying = [k for k in extra if len(values[k]) > 1]
    constant = ["%s = %s" % (k, values[k][0]) for k in extra if len(values[k]) == 1]
    ncombo = len({tuple(p["params"].get(k, "") for k in varying) for p in ok})
    if ncombo <= MAX_FACETS:
        facet_axes, reduced = varying, []
    elif len(values[varying[0]]) <= MAX_FACETS:
        facet_axes, reduced = varying[:1], varying[1:]
    else:
        facet_axes, reduced = [], varying

    pts = []
    for p in ok:
        q = p["params"]
        t = p["report"]["total"]
        e = p["energy_pj"][table]
        pts.append({"array": q["array.kind"], "rows": int(q["array.rows"]), "cols": int(q["array.cols"]),
                    "df": q["array.dataflow"], "facet": tuple(q.get(k, "") for k in facet_axes),
                    "cycles": t["cycles"]["total"], "util": 100.0 * t["utilization"], "epm": e["per_mac"],
                    "edp": e["total"] * t["cycles"]["total"]})
    facets = sorted({p["facet"] for p in pts}, key=lambda f: [sort_values(values[k]).index(v)
                                                              for k, v in zip(facet_axes, f)])

    def facet_label(f):
        return ", ".join("%s = %s" % (k, v) for k, v in zip(facet_axes, f))

    known = ARRAY_ORDER
    arrays = [x for x in known if any(p["array"] == x for p in pts)]
    arrays += sorted({p["array"] for p in pts} - set(known))
    dfs = [x for x in ("os", "ws", "is") if any(p["df"] == x for p in pts)]
    dfs += sorted({p["df"] for p in pts} - set(dfs))
    # Draw MF-MAC first (thick, underneath), so that a coinciding line stays visible on top.
    draw_order = sorted(arrays, key=lambda x: ARRAY_STYLE.get(x, DEFAULT_STYLE)["zorder"])

    square_sizes = {p["rows"] * p["cols"] for p in pts if p["rows"] == p["cols"]}
    square_only = len(square_sizes) >= 2
    if square_only:
        shape_note = "square arrays R x R only (other shapes: edp_heatmap)"
    else:
        shape_note = "lowest value over aspect ratios R x C with R x C = PEs"

    def reduce_note(how):
        return ["%s over %s (%s)" % (how, k, ", ".join(values[k])) for k in reduced]

    mode = ok[0]["report"].get("mode", "")
    trace = os.path.basename(str(res.get("trace", "")))
    head = ", ".join(x for x in [trace, ("%s mode" % mode) if mode else "", "energy table %s" % table] + constant if x)

    def series(arr, df, facet, key, best):
        """x = PEs, y = the value at that size (square array, or best aspect ratio; best over
        reduced parameters)."""
        by = {}
        for p in pts:
            if p["array"] != arr or p["df"] != df or p["facet"] != facet:
                continue
            if square_only and p["rows"] != p["cols"]:
                continue
            n = p["rows"] * p["cols"]
            by[n] = p[key] if n not in by else best(by[n], p[key])
        xs = sorted(by)
        return xs, [by[x] for x in xs]

    plt.rcParams.update({"font.family": "sans-serif", "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})

    def style(arr):
        return ARRAY_STYLE.get(arr, DEFAULT_STYLE)

    def draw(ax, arr, df, xs, ys):
        s = style(arr)
        color = ARRAY_COLORS.get(arr)
        ax.plot(xs, ys, DATAFLOW_STYLE.get(df, "-."), color=color, lw=s["lw"], zorder=s["zorder"],
                alpha=0.75 if arr == "mfmac" else 1.0)
        ax.plot([x * 2 ** s["x_shift"] for x in xs], ys, linestyle="none", marker=s["marker"], ms=s["ms"],
                color=color, mfc=s["mfc"] or color, mec=color, mew=1.3, zorder=s["zorder"] + 0.5)

    def handle(arr, df, note=""):
        s = style(arr)
        color = ARRAY_COLORS.get(arr)
        return Line2D([], [], color=color, lw=s["lw"], linestyle=DATAFLOW_STYLE.get(df, "-."),
                      marker=s["marker"], ms=s["ms"], mfc=s["mfc"] or color, mec=color, mew=1.3,
                      label="%s %s%s" % (ARRAY_NAMES.get(arr, arr), df.upper(), note))

    def coincide(keys_best):
        """(arr, df) -> the label of an earlier-drawn line it coincides with (within 0.5%) in every panel."""
        notes = {}
        lines = [(arr, df) for arr in draw_order for df in dfs]
        for i, (a1, d1) in enumerate(lines):
            for a2, d2 in lines[:i]:
                if d1 != d2 or (a2, d2) in notes:
                    continue
                same, any_pts = True, False
                for key, best in keys_best:
                    for f in facets:
                        x1, y1 = series(a1, d1, f, key, best)
                        x2, y2 = series(a2, d2, f, key, best)
                        if x1 != x2:
                            same = False
                        elif x1:
                            any_pts = True
                            same = same and all(abs(u - v) <= 0.005 * max(abs(u), abs(v)) for u, v in zip(y1, y2))
                if same and any_pts:
                    notes[(a1, d1)] = " (overlaps %s %s)" % (ARRAY_NAMES.get(a2, a2), d2.upper())
                    break
        return notes

    def x_axis(ax, label=True):
        ax.set_xscale("log", base=2)
        xs = sorted({p["rows"] * p["cols"] for p in pts if not square_only or p["rows"] == p["cols"]})
        ax.set_xticks(xs)
        ax.xaxis.set_minor_locator(NullLocator())
        if square_only:
            r = {p["rows"] * p["cols"]: p["rows"] for p in pts if p["rows"] == p["cols"]}
            ax.set_xticklabels(["%dx%d\n%d" % (r[x], r[x], x) for x in xs])
        else:
            ax.set_xticklabels([str(x) for x in xs])
        lo, hi = min(xs), max(xs)
        ax.set_xlim(lo / 2 ** 0.35, hi * 2 ** 0.35)
        if label:
            ax.set_xlabel("array (rows x cols) and PEs" if square_only else "array size (PEs)")

    def legend_axis(fig, cell, notes):
        lax = fig.add_subplot(cell)
        lax.axis("off")
        handles = [handle(arr, df, notes.get((arr, df), "")) for arr in arrays for df in dfs]
        lax.legend(handles=handles, loc="center left", fontsize=8.5, handlelength=3.2, frameon=False,
                   title="arithmetic, dataflow", title_fontsize=9)

    # Energy per MAC. When it is the same in every facet (energy does not depend, e.g., on DRAM
    # bandwidth), one panel says so instead of repeating itself.
    epm_facets = facets
    epm_note = ""
    if len(facets) > 1:
        def close(s1, s2):
            return s1[0] == s2[0] and all(abs(u - v) <= 1e-9 * max(abs(u), abs(v)) for u, v in zip(s1[1], s2[1]))

        if all(close(series(arr, df, f, "epm", min), series(arr, df, facets[0], "epm", min))
               for arr in arrays for df in dfs for f in facets):
            epm_facets = facets[:1]
            epm_note = "the same for " + "; ".join("%s = %s" % (k, ", ".join(values[k])) for k in facet_axes)
    nf = len(epm_facets)
    fig = plt.figure(figsize=(4.6 * nf + 2.6, 4.6), layout="constrained")
    gs = fig.add_gridspec(1, nf + 1, width_ratios=[1] * nf + [0.55])
    axes = []
    for j, f in enumerate(epm_facets):
        ax = fig.add_subplot(gs[0, j], sharey=axes[0] if axes else None)
        axes.append(ax)
        for arr in draw_order:
            for df in dfs:
                xs, ys = series(arr, df, f, "epm", min)
                draw(ax, arr, df, xs, ys)
        ax.set_yscale("log")
        x_axis(ax)
        ax.set_title(epm_note or facet_label(f) or "energy per MAC", fontsize=10)
        if j == 0:
            ax.set_ylabel("energy per MAC (pJ)")
    legend_axis(fig, gs[0, nf], coincide([("epm", min)]))
    fig.suptitle("\n".join(["Energy per MAC", head, shape_note] + reduce_note("min")), fontsize=10)
    save(fig, a.dir, "energy_per_mac")

    # Cycles and utilization: one column per facet, shared y per row.
    nf = len(facets)
    fig = plt.figure(figsize=(4.6 * nf + 2.6, 7.6), layout="constrained")
    gs = fig.add_gridspec(2, nf + 1, width_ratios=[1] * nf + [0.55])
    top, bottom = [], []
    for j, f in enumerate(facets):
        c1 = fig.add_subplot(gs[0, j], sharey=top[0] if top else None)
        c2 = fig.add_subplot(gs[1, j], sharey=bottom[0] if bottom else None, sharex=c1)
        top.append(c1)
        bottom.append(c2)
        for arr in draw_order:
            for df in dfs:
                draw(c1, arr, df, *series(arr, df, f, "cycles", min))
                draw(c2, arr, df, *series(arr, df, f, "util", max))
        c1.set_yscale("log")
        x_axis(c1, label=False)
        x_axis(c2)
        plt.setp(c1.get_xticklabels(), visible=False)
        c2.set_ylim(0, 100)
        fl = facet_label(f)
        c1.set_title("cycles" + (", " + fl if fl else ""), fontsize=10)
        c2.set_title("utilization" + (", " + fl if fl else ""), fontsize=10)
        if j == 0:
            c1.set_ylabel("cycles (log)")
            c2.set_ylabel("utilization (%)")
    legend_axis(fig, gs[:, nf], coincide([("cycles", min), ("util", max)]))
    red = reduce_note("min cycles / max utilization") if reduced else []
    shape = shape_note if square_only else "min cycles / max utilization over aspect ratios R x C with R x C = PEs"
    fig.suptitle("\n".join(["Cycles and utilization", head, shape] + red), fontsize=10)
    save(fig, a.dir, "cycles_utilization")

    # EDP heat maps: rows = dataflow, columns = facet x arithmetic, one colour scale.
    rows = sorted({p["rows"] for p in pts})
    cols = sorted({p["cols"] for p in pts})
    grids = {}
    for p in pts:
        g = grids.setdefault((p["facet"], p["df"], p["array"]), [[float("nan")] * len(cols) for _ in rows])
        i, j = rows.index(p["rows"]), cols.index(p["cols"])
        v = math.log10(p["edp"])
        g[i][j] = v if math.isnan(g[i][j]) else min(g[i][j], v)
    allv = [v for g in grids.values() for r in g for v in r if not math.isnan(v)]
    vmin, vmax = min(allv), max(allv)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    panels = [(f, arr) for f in facets for arr in arrays]
    ncol, nrow = len(panels), len(dfs)
    cell = 0.42 * max(len(rows), len(cols)) + 0.9
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(cell * ncol + 1.4, 7.5), cell * nrow + 1.4), squeeze=False,
                             layout="constrained")
    im = None
    cmap = plt.get_cmap("viridis_r")
    for r, df in enumerate(dfs):
        for c, (f, arr) in enumerate(panels):
            ax = axes[r][c]
            g = grids.get((f, df, arr))
            ax.grid(False)
            ax.set_xticks(range(len(cols)), [str(x) for x in cols], fontsize=8)
            ax.set_yticks(range(len(rows)), [str(x) for x in rows], fontsize=8)
            fl = facet_label(f)
            ax.set_title("%s, %s%s" % (ARRAY_NAMES.get(arr, arr), df.upper(), "\n" + fl if fl else ""), fontsize=9)
            if r == nrow - 1:
                ax.set_xlabel("cols", fontsize=8)
            if c == 0:
                ax.set_ylabel("rows", fontsize=8)
            if g is None:
                ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes)
                continue
            im = ax.imshow(g, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
            best = None
            for i in range(len(rows)):
                for j in range(len(cols)):
                    v = g[i][j]
                    if math.isnan(v):
                        continue
                    if best is None or v < g[best[0]][best[1]]:
                        best = (i, j)
                    shade = (v - vmin) / (vmax - vmin)
                    ax.text(j, i, "%.2f" % v, ha="center", va="center", fontsize=6.5,
                            color="white" if shade > 0.55 else "black")
            if best is not None:
                ax.add_patch(Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec="#d62728", lw=2))
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="log10 EDP (pJ x cycles), lower is better")
    red = reduce_note("min") if reduced else []
    fig.suptitle("\n".join(["Energy-delay product (energy x cycles), all panels on one colour scale;"
                            " red box: lowest EDP of the panel", head] + red), fontsize=10)
    save(fig, a.dir, "edp_heatmap")

    # Area against energy and time, with the sweep's own Pareto flags (results.json).
    with_area = [p for p in ok if "area_mm2" in p]
    if with_area:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
        for ax, (ylabel, cost, flag) in zip(axes, (
                ("energy per step (uJ, %s table)" % table, lambda p: p["energy_pj"][table]["total"] * 1e-6,
                 lambda p: p["energy_pj"][table]["pareto_area_energy"]),
                ("time per step (us)", lambda p: p["time_seconds"] * 1e6, lambda p: p["pareto_area_time"]))):
            for name in ARRAY_ORDER:
                mine = [p for p in with_area if p["params"]["array.kind"] == name]
                if mine:
                    ax.scatter([p["area_mm2"] for p in mine], [cost(p) for p in mine], s=22,
                               color=ARRAY_COLORS.get(name), label=ARRAY_NAMES.get(name, name), zorder=3)
            front = sorted((p for p in with_area if flag(p)), key=lambda p: p["area_mm2"])
            ax.plot([p["area_mm2"] for p in front], [cost(p) for p in front], "-", color="black", lw=1.2,
                    drawstyle="steps-post", label="Pareto front", zorder=2)
            if "area_budget_mm2" in res:
                ax.axvline(res["area_budget_mm2"], color="#888888", ls="--", lw=1, label="area budget")
            ax.set_xlabel("array area (mm^2, %s table)" % res.get("area_table", "published45"))
            ax.set_ylabel(ylabel)
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle("Cost against area: each point of the sweep; the line joins the points no other beats "
                     "in both", fontsize=10)
        fig.tight_layout()
        save(fig, a.dir, "area_pareto")


def save(fig, d, name):
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(d, "%s.%s" % (name, ext)), dpi=110)
    plt.close(fig)
    print("plot_sweep: wrote %s.png and %s.svg" % (os.path.join(d, name), os.path.join(d, name)))


if __name__ == "__main__":
    main()
