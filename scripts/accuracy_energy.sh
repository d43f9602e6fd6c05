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
/usr/bin/python3 - "$acc" "$out" <<'PY'
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
print("wrote docs/img/accuracy-energy.png and docs/results-accuracy-energy.md")
PY
