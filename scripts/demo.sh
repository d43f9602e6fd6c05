#!/usr/bin/env bash
# Set-up if needed, Release build into build/, then the main job on a built-in default:
#  1. train the LeNet-style CNN briefly on Fashion-MNIST with ALS-POTQ (100 steps) and record
#     one training step (every forward and backward GEMM, with operands) as a trace;
#  2. check the trace (recomputing every GEMM with the MF-MAC reference arithmetic);
#  3. replay it cycle by cycle on MF-MAC, INT8 and FP32 systolic arrays with bit-exact checks;
#  4. end with the savings report on every array type (energy per component, savings against FP32).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
out=build/demo
mkdir -p "$out"
trace="$out/cnn-step.json"
echo
echo "== mfsim train --model cnn --quant als-potq (6,400 images, 1 epoch) --trace-out $trace"
./build/mfsim train --model cnn --quant als-potq --epochs 1 --train-limit 6400 --test-limit 2000 \
  --trace-out "$trace" --trace-step 50 --report "$out/train.json"
echo
echo "== mfsim inspect --recompute $trace"
./build/mfsim inspect --recompute "$trace"
for array in mfmac int8 fp32; do
  echo
  echo "== mfsim simulate --array $array --dataflow ws --rows 16 --cols 16"
  ./build/mfsim simulate --trace "$trace" --array "$array" --dataflow ws --rows 16 --cols 16 \
    --report "$out/simulate-$array.json" | grep -E '^(phase|fwd|bwd|total|verification|energy)'
done
echo
echo "== mfsim compare: the savings report (every array type: FP32, BF16, FP8, INT8, INT4, MF-MAC; the same GEMMs)"
./build/mfsim compare --trace "$trace" --rows 16 --cols 16 --dataflow ws --energy-table paper,horowitz45 \
  --report "$out/compare.json" --html "$out/compare.html"
echo
echo "The 'saving arith' column is the paper's scope: the MAC arithmetic of the linear layers, with"
echo "zero gating (pe.zero_gating) the same on every array, so it compares the MACs, not the data's"
echo "zeros; the line under each table gives it with gating on none and, for comparison, with gating"
echo "credited to MF-MAC alone. 'total' adds registers, SRAM, DRAM and the quantizers."
echo "Reports: $out/train.json, $out/simulate-*.json, $out/compare.json, $out/compare.html."
echo "Real networks: build/mfsim trace --network resnet50 --batch 32 -o r50.json, then"
echo "build/mfsim compare --trace r50.json --mode timing --report r50-savings.json"
