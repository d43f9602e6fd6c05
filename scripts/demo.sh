#!/usr/bin/env bash
# Set-up if needed, Release build into build/, then the main job on the built-in default:
# validate the shipped example trace (recomputing every GEMM), then replay it cycle by cycle
# on MF-MAC, INT8 and FP32 systolic arrays (8x8, output-stationary) with bit-exact checks.
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
echo "Reports: $out/simulate-*.json. GEMMs an array cannot hold exactly (e.g. FP32 operands on"
echo "the MF-MAC array) run in timing mode; see each report's notes."
