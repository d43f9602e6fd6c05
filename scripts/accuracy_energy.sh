#!/usr/bin/env bash
# The accuracy-energy trade-off (docs/results-accuracy-energy.md, docs/img/accuracy-energy.png):
# for each network and arithmetic, the test accuracy of scripts/results_accuracy.sh (mean over
# seeds) beside the energy of one training step of that arithmetic on its own 32x32 array.
# The step is traced from the functional core in that arithmetic (with operands, so zero
# products are measured) and priced by `mfsim compare` (paper table, OS) on the matching array:
# fp32 -> fp32, bf16 -> bf16, fp8 -> fp8, int8 -> int8, int4 -> int4, als-potq -> mfmac. A step
# with the first and last layers in INT8 (--first-last int8) runs on the MF-MAC array with an
# INT8 second array (array.second = int8) that runs and prices those layers' GEMMs; a step
# trained without PRC is charged no PRC operations (quant.prc_candidates = 0), one with PRC on
# activations and weights only none on the errors (quant.prc_operands = a,w).
# Needs the run reports of scripts/results_accuracy.sh (docs/data/results-accuracy). About 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh > /dev/null
acc=${RESULTS:-docs/data/results-accuracy}
out=build/accuracy-energy
mkdir -p "$out" docs/img
# variant -> the training options of its step, and the compare options that price it.
train_args() {
  case "$1" in
    als-potq-noprc) echo "--quant als-potq --no-prc" ;;
    als-potq-prcaw) echo "--quant als-potq --prc-operands a,w" ;;
    als-potq-fl-int8-noprc) echo "--quant als-potq --first-last int8 --no-prc" ;;
    *) echo "--quant $1" ;;
  esac
}
compare_args() {
  case "$1" in
    als-potq) echo "--arrays mfmac" ;;
    als-potq-noprc) echo "--arrays mfmac --set quant.prc_candidates=0" ;;
    als-potq-prcaw) echo "--arrays mfmac --set quant.prc_operands=a,w" ;;
    als-potq-fl-int8-noprc) echo "--arrays mfmac --set array.second=int8 --set quant.prc_candidates=0" ;;
    *) echo "--arrays $1" ;;
  esac
}
for net in mlp cnn cnn-bn resnet8 transformer; do
  case "$net" in
    mlp|cnn) variants="fp32 bf16 fp8 int8 int4 als-potq" ;;
    cnn-bn|resnet8) variants="fp32 als-potq als-potq-noprc als-potq-prcaw als-potq-fl-int8-noprc" ;;
    transformer) variants="fp32 int8 als-potq" ;;
  esac
  for variant in $variants; do
    if [ "$net" = transformer ]; then
      model="--model transformer:vocab=65 --batch 32 --train-examples 320 --test-examples 32"
    else
      model="--model $net --batch 64 --train-limit 640 --test-limit 64"
    fi
    trace="$out/$net-$variant-step.json"
    # shellcheck disable=SC2046
    [ -f "$trace" ] || ./build/mfsim train -q --threads 1 $model $(train_args "$variant") --epochs 1 --seed 1 \
      --trace-out "$trace" --trace-step 5 --report "$out/$net-$variant-train.json"
    # shellcheck disable=SC2046
    [ -f "$out/$net-$variant-compare.json" ] || ./build/mfsim compare -q --trace "$trace" --rows 32 --cols 32 \
      --dataflow os --energy-table paper $(compare_args "$variant") --report "$out/$net-$variant-compare.json"
  done
done
# The multiplication-free policies (scripts/results_policies.sh: their run reports in
# docs/data/results-policies, each policy's step traced and priced on the MF-MAC array, with a
# shift second array for shift-add GEMMs and the finer scales' alignment, traffic and copies).
RESULTS_ONLY=1 ./scripts/results_policies.sh > /dev/null
/usr/bin/python3 - "$acc" "$out" docs/data/results-policies build/results-policies-energy <<'PY'
import json, os, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
acc, out = sys.argv[1], sys.argv[2]
arrays = {"fp32": ("FP32", "#7f7f7f", "s"), "bf16": ("BF16", "#8c564b", "D"), "fp8": ("FP8", "#9467bd", "v"),
          "int8": ("INT8", "#1f77b4", "^"), "int4": ("INT4", "#17becf", "P"), "als-potq": ("ALS-POTQ / MF-MAC", "#d62728", "o"),
          "als-potq-noprc": ("ALS-POTQ without PRC / MF-MAC", "#ff9896", "X"),
          "als-potq-prcaw": ("ALS-POTQ, PRC on activations and weights only / MF-MAC", "#e377c2", "d"),
          "als-potq-fl-int8-noprc": ("ALS-POTQ, first and last layer INT8, without PRC / MF-MAC + INT8 second array",
                                     "#2ca02c", "*")}
# (accuracy results' prefix, the step's network, title)
nets = [("mlp", "mlp", "MLP, 5 epochs"), ("cnn", "cnn", "CNN, 5 epochs"), ("cnn-bn", "cnn-bn", "CNN with BatchNorm, 15 epochs"),
        ("resnet8", "resnet8", "resnet8, 10 epochs"), ("resnet8-e15", "resnet8", "resnet8, 15 epochs"),
        ("transformer", "transformer", "Transformer, 8 epochs (token accuracy)")]
def accuracy(net, quant):
    v = []
    for s in (1, 2, 3):
        p = "%s/%s-%s-s%d.json" % (acc, net, quant, s)
        if os.path.exists(p):
            r = json.load(open(p))
            v.append(100 * r.get("test_token_accuracy", r["test_accuracy"]))
    return (statistics.mean(v), len(v)) if v else (None, 0)
rows = []
fig, axes = plt.subplots(2, 3, figsize=(17, 9))
for ax, (net, step, title) in zip(axes.flat, nets):
    for quant, (label, color, marker) in arrays.items():
        p = "%s/%s-%s-compare.json" % (out, step, quant)
        if not os.path.exists(p):
            continue
        c = json.load(open(p))
        a = "mfmac" if quant.startswith("als-potq") else quant  # (the compare report's key; a second array is inside)
        e = c["energy_pj"][a]
        m, n = accuracy(net, quant)
        if m is None:
            continue
        rows.append((title, label, m, n, e["total"] * 1e-6, e["per_mac"], e["by_component"]["pe_arithmetic"] * 1e-6))
        ax.scatter([e["total"] * 1e-6], [m], s=110 if marker == "*" else 70, color=color, marker=marker, label=label, zorder=3)
    ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step energy (uJ; 32x32, paper table)")
    ax.grid(True, alpha=0.3)
for ax in axes[:, 0]:
    ax.set_ylabel("test accuracy (%), mean over seeds")
handles, labels = [], []
for ax in axes.flat:
    for h, l in zip(*ax.get_legend_handles_labels()):
        if l not in labels:
            handles.append(h); labels.append(l)
fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
fig.suptitle("Accuracy against the energy of a training step: each arithmetic on its own array")
fig.tight_layout(rect=(0, 0.07, 1, 0.96))
fig.savefig("docs/img/accuracy-energy.png", dpi=110)
with open("docs/results-accuracy-energy.md", "w") as f:
    f.write("# Accuracy against energy\n\n")
    f.write("Generated by `scripts/accuracy_energy.sh`. Test accuracy: docs/results-accuracy.md (mean over the seeds\n")
    f.write("present). Energy: one training step of the same network and arithmetic, traced from the functional\n")
    f.write("core with its operands (seed 1, a step of the first epoch) and simulated on that arithmetic's own\n")
    f.write("32x32 array (OS, `paper` table, default memories): FP32, BF16, FP8, INT8 and INT4 arrays, and the\n")
    f.write("MF-MAC array for ALS-POTQ. Zero products are gated on every array (measured from the step).\n")
    f.write("ALS-POTQ is the strict policy (every linear layer in PoT4), with and without PRC. ALS-POTQ with the\n")
    f.write("first and last layers in INT8 (`--first-last int8`) mixes PoT4 and INT8 GEMMs in one step: it runs\n")
    f.write("on the MF-MAC array with an INT8 second array of the same size and memories (`--set array.second=int8`),\n")
    f.write("which runs and prices the INT8 GEMMs (docs/cycle-semantics.md). Steps trained without PRC are\n")
    f.write("charged no PRC operations (`--set quant.prc_candidates=0`), steps with PRC on activations and weights\n")
    f.write("only none on the errors (`--set quant.prc_operands=a,w`). The resnet8 15-epoch panel prices the\n")
    f.write("same resnet8 steps as the 10-epoch one (a step's energy does not depend on the schedule's length).\n\n")
    f.write("![accuracy against energy](img/accuracy-energy.png)\n\n")
    f.write("| network | arithmetic | accuracy (%) | seeds | step energy (uJ) | pJ per MAC | MAC arithmetic (uJ) |\n")
    f.write("|---|---|---:|---:|---:|---:|---:|\n")
    for r in rows:
        f.write("| %s | %s | %.2f | %d | %.4g | %.4g | %.4g |\n" % r)
    # The policies: each one's accuracy beside its step's energy, and the frontier.
    pacc, pen = sys.argv[3], sys.argv[4]
    variants = ["fp32", "int8", "strict", "strict-prc-all", "int8-input", "int8-errors", "int8-activations", "int8-weights",
                "outer-scales", "block32-scales", "act8-wgouter", "act8-wgblock16", "act8-gattn", "act8-wlast",
                "act8-glast", "act8-apotw", "act8-apotwg", "edges-int8"]
    pnets = [("cnn-bn", "cnn-bn, 15 epochs", "test accuracy"), ("resnet8", "resnet8, 15 epochs", "test accuracy"),
             ("transformer", "Transformer, 8 epochs", "token accuracy"),
             ("text", "character-level LM on fortunes, 6 epochs", "next-character accuracy")]
    prow = []
    pfig, paxes = plt.subplots(1, 4, figsize=(20, 5.5))
    for ax, (net, title, metric) in zip(paxes, pnets):
        pts = []
        for v in variants:
            rs = [json.load(open(q)) for q in ("%s/%s-%s-s%d.json" % (pacc, net, v, sd) for sd in (1, 2, 3))
                  if os.path.exists(q)]
            c = "%s/%s-%s-compare.json" % (pen, net, v)
            if not rs or not os.path.exists(c):
                continue
            a = [100 * r.get("test_token_accuracy", r["test_accuracy"]) for r in rs]
            key = v if v in ("fp32", "int8") else "shift2" if v.startswith("act8-apotw") else "mfmac"
            e = json.load(open(c))["energy_pj"][key]
            pts.append((v, statistics.mean(a), len(a), e["total"] * 1e-6, e["per_mac"], rs[0].get("multiplication_free", False)))
        if not pts:
            continue
        # Pareto frontier: no other point at most as costly and at least as accurate (one strictly).
        front = {p[0] for p in pts if not any((q[3] <= p[3] and q[1] >= p[1]) and (q[3] < p[3] or q[1] > p[1]) for q in pts)}
        for v, m, n, uj, pj, mf in sorted(pts, key=lambda p: p[3]):
            prow.append((title, v, "yes" if mf else "no", m, n, uj, pj, "yes" if v in front else ""))
            color = "#7f7f7f" if v == "fp32" else "#1f77b4" if v == "int8" else "#d62728" if mf else "#2ca02c"
            ax.scatter([uj], [m], color=color, marker="o" if mf else "s", s=45, zorder=3)
            ax.annotate(v, (uj, m), fontsize=7, xytext=(3, 3), textcoords="offset points")
        fp = sorted((p for p in pts if p[0] in front), key=lambda p: p[3])
        ax.plot([p[3] for p in fp], [p[1] for p in fp], color="#d62728", alpha=0.4, drawstyle="steps-post", zorder=2)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step energy (uJ; 32x32, paper table)")
        ax.set_ylabel("%s (%%), mean over seeds" % metric)
        ax.grid(True, alpha=0.3)
    pfig.suptitle("Each policy's accuracy against its step's energy (red: multiplication-free; line: the frontier)")
    pfig.tight_layout(rect=(0, 0, 1, 0.94))
    pfig.savefig("docs/img/accuracy-energy-policies.png", dpi=110)
    f.write("\n## The multiplication-free policies\n\n")
    f.write("Each policy of [results-policies.md](results-policies.md) (`mfsim train --quant als-potq --policy NAME`, and\n")
    f.write("FP32 and INT8 for reference): its accuracy (mean over the seeds there) beside the energy of one training\n")
    f.write("step traced from the functional core in that policy (seed 1, step 5 of the first epoch) on a 32x32 OS\n")
    f.write("array, paper table: the PoT4 GEMMs on the MF-MAC array and shift-add GEMMs on a shift second array of\n")
    f.write("the same size, with the finer scales' alignment shifts, exponent adds, scale traffic and per-GEMM\n")
    f.write("quantized copies included ([energy-accounting.md](energy-accounting.md#finer-scales)). `frontier`: no\n")
    f.write("other row of the network is at most as costly and at least as accurate. Regenerated with\n")
    f.write("`scripts/results_policies.sh`'s reports. The two-term policies (`act8-apotw`, `act8-apotwg`) run every GEMM\n")
    f.write("on the two-term shift-add array (`shift2`) of the same size.\n\n")
    f.write("![policies: accuracy against energy](img/accuracy-energy-policies.png)\n\n")
    f.write("| network | policy | multiplication-free | accuracy (%) | seeds | step energy (uJ) | pJ per MAC | frontier |\n")
    f.write("|---|---|---|---:|---:|---:|---:|---|\n")
    for r in prow:
        f.write("| %s | %s | %s | %.2f | %d | %.4g | %.4g | %s |\n" % r)
print("wrote docs/img/accuracy-energy.png, docs/img/accuracy-energy-policies.png and docs/results-accuracy-energy.md")
PY
