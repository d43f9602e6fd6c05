#!/usr/bin/python3
"""From a PyTorch model to a savings plot (docs/python.md), notebook style: capture one training
step of a torchvision ResNet-18, compare it on every array, tabulate and plot the energy per layer
for every array. CTest runs it (python.example.torch_savings).

    PYTHONPATH=build/python /usr/bin/python3 docs/examples/torch_savings.py --out savings/
"""
import argparse
import os
import sys

try:
    import torch
    import torchvision
except ImportError:
    print("skipped: python3-torch or python3-torchvision is not installed (scripts/setup.sh installs them)")
    sys.exit(77)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mfsim  # noqa: E402
import mfsim_torch  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="torch-savings", help="directory for the plot and the tables")
parser.add_argument("--batch", type=int, default=8)
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

# 1. One training step of the model, captured on PyTorch's meta device (shapes only, fast).
model = torchvision.models.resnet18(num_classes=10).to("meta")
x = torch.randn(args.batch, 3, 224, 224, device="meta")
y = torch.zeros(args.batch, dtype=torch.long, device="meta")
with mfsim_torch.capture(None, model) as cap:
    torch.nn.functional.cross_entropy(model(x), y).backward()
trace = cap.trace()
print(trace, "%.3g GMACs" % (trace.macs / 1e9))

# 2. Every array on the same step (32x32, output stationary), energy under two tables.
report = mfsim.compare(trace, rows=32, cols=32, dataflow="os", tables=["paper", "horowitz45"])

# 3. Tables: one row per array, and the energy of every layer on every array.
arrays = mfsim.compare_table(report)
layers = mfsim.compare_layers_table(report) / 1e6  # pJ -> uJ
print(arrays[["cycles", "energy_pj", "saving_total"]].to_string())
arrays.to_csv(os.path.join(args.out, "arrays.csv"))
layers.to_csv(os.path.join(args.out, "layers_uj.csv"))
# The per-layer energies add up to each array's total.
for kind in layers.columns:
    assert abs(layers[kind].sum() * 1e6 - report["energy_pj"][kind]["total"]) <= 1e-9 * report["energy_pj"][kind]["total"]

# 4. The plot: energy per layer for every array (log scale: the arrays differ by 10x and more).
fig, ax = plt.subplots(figsize=(14, 5))
layers.plot.bar(ax=ax, width=0.85, logy=True)
ax.set_ylabel("energy per training step (uJ, %s table)" % report["energy_table"])
ax.set_title("ResNet-18 training step, batch %d, 32x32 arrays: energy per layer" % args.batch)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
png = os.path.join(args.out, "energy_per_layer.png")
fig.savefig(png, dpi=80)
print("wrote", png)
