#!/usr/bin/env bash
# mfsim's training core against PyTorch, side by side in one run (docs/performance.md): one FP32
# epoch of the CNN, cnn-bn and resnet8 over the first 6,400 Fashion-MNIST training images, batch
# 64, SGD with momentum 0.9, one thread each (mfsim --threads 1; torch.set_num_threads(1)).
# Prints the epoch times (mfsim, PyTorch, mfsim with --conv-path blas) and mfsim's ratio to
# PyTorch. Run it with nothing else running on the machine, and without OPENBLAS_CORETYPE in the
# environment unless that core is what you mean to measure.
#   usage: scripts/bench_train_torch.sh [IMAGES] [MODELS...]   (default: 6400 cnn cnn-bn resnet8)
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-6400}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(cnn cnn-bn resnet8)
data=/usr/share/datasets/fashion-mnist
python=/usr/bin/python3  # Debian's python3-torch
[ -x build/mfsim ] || ./scripts/build.sh > /dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
# OpenBLAS's kernels follow OPENBLAS_CORETYPE when it is set (docs/training-core.md, "The BLAS core").
echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-unset (OpenBLAS or mfsim picks the core)}"
# The PyTorch replica of mfsim's networks (training/nn.cpp network_spec; docs/training-core.md):
# convolutions and linear layers with bias, batch norm momentum 0.1, eps 1e-5.
cat > "$tmp/torch_epoch.py" << 'EOF'
import gzip, sys, time
import numpy as np
import torch
import torch.nn as nn

model_name, images, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
torch.manual_seed(1)

def idx(path, header):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)

x = idx(f"{data}/train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:images]
y = idx(f"{data}/train-labels-idx1-ubyte.gz", 8)[:images]
x = torch.from_numpy((x.astype(np.float32) / 255.0 - 0.2860) / 0.3530)
y = torch.from_numpy(y.astype(np.int64))

class Block(nn.Module):  # 3x3 conv (stride s) - bn - relu - 3x3 conv - bn, + shortcut, relu
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout))
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())
    def forward(self, t):
        return torch.relu(self.main(t) + self.short(t))

if model_name == "resnet8":
    net = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(), Block(16, 16, 1), Block(16, 32, 2),
                        Block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
elif model_name in ("cnn", "cnn-bn"):
    bn = model_name == "cnn-bn"
    opt = lambda layer: [layer] if bn else []
    net = nn.Sequential(nn.Conv2d(1, 8, 5, 1, 2), *opt(nn.BatchNorm2d(8)), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 5, 1, 2), *opt(nn.BatchNorm2d(16)), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(784, 128), *opt(nn.BatchNorm1d(128)), nn.ReLU(), nn.Linear(128, 10))
else:
    sys.exit(f"no PyTorch replica of {model_name}")
sgd = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
net.train()
t0 = time.perf_counter()
order = torch.randperm(images)
for s in range(0, images, 64):
    b = order[s:s + 64]
    sgd.zero_grad(set_to_none=True)
    loss = loss_fn(net(x[b]), y[b])
    loss.backward()
    sgd.step()
print(f"{time.perf_counter() - t0:.3f}")
EOF
# mfsim with its default --conv-path auto (the direct convolution kernels where they give the BLAS's
# bits: docs/training-core.md), and again with --conv-path blas (im2col + sgemm + col2im).
printf '%-8s %12s %12s %12s %8s %s\n' model "mfsim (s)" "PyTorch (s)" "mfsim blas" ratio "conv path (auto)"
epoch() {  # the first epoch's seconds of a report
  "$python" -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['epoch_seconds'][0])" "$1"
}
for model in "${models[@]}"; do
  for path in auto blas; do
    ./build/mfsim train -q --threads 1 --model "$model" --quant fp32 --epochs 1 --batch 64 --lr-schedule constant \
      --train-limit "$images" --test-limit 256 --conv-path "$path" --report "$tmp/r-$path.json"
  done
  ours=$(epoch "$tmp/r-auto.json")
  blas=$(epoch "$tmp/r-blas.json")
  theirs=$("$python" "$tmp/torch_epoch.py" "$model" "$images" "$data")
  chosen=$("$python" -c "import json,sys; c=json.load(open(sys.argv[1]))['conv_path']; print('%d direct, %d blas shapes' % (c['direct_shapes'], c['blas_shapes']))" "$tmp/r-auto.json")
  printf '%-8s %12s %12s %12s %8s %s\n' "$model" "$ours" "$theirs" "$blas" "$("$python" -c "print('%.2f' % ($ours / $theirs))")" "$chosen"
done
echo "blas: $("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['blas'])" "$tmp/r-auto.json")"
echo "torch: $("$python" -c "import torch; print(torch.__version__)")"
