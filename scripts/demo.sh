#!/usr/bin/env bash
# Set-up if needed, Release build into build/, then the main job on the built-in default:
# validate the shipped example trace (recomputing every GEMM), then replay it cycle by cycle
# on MF-MAC, INT8 and FP32 systolic arrays (8x8) with bit-exact checks, and end with the
# savings report (energy per component, savings against FP32).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
trace=traces/examples/mlp-tiny.json
out=build/demo
mkdir -p "$out"
echo
echo "== mfsim inspect --recompute $trace"
./build/mfsim inspect --recompute "$trace"
echo
for array in mfmac int8 fp32; do
  for df in os ws; do
    echo "== mfsim simulate --array $array --dataflow $df --rows 8 --cols 8"
    ./build/mfsim simulate --trace "$trace" --array "$array" --dataflow "$df" --rows 8 --cols 8 \
      --report "$out/simulate-$array-$df.json" | grep -E '^(phase|total|verification)'
  done
done
echo
echo "== mfsim compare: the savings report (FP32 vs INT8 vs MF-MAC, same GEMMs)"
./build/mfsim compare --trace "$trace" --rows 8 --cols 8 --dataflow os --energy-table paper,horowitz45 \
  --report "$out/compare.json" --html "$out/compare.html"
echo
echo "Reports: $out/simulate-*.json, $out/compare.json, $out/compare.html. GEMMs an array cannot"
echo "hold exactly (e.g. FP32 operands on the MF-MAC array) run in timing mode; see the notes."
echo "Real networks: build/mfsim trace --network resnet50 --batch 32 -o r50.json, then"
echo "build/mfsim compare --trace r50.json --mode timing --report r50-savings.json"
