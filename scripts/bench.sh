#!/usr/bin/env bash
# Benchmarks recorded in docs/performance.md (not part of the test suite).
#  1. value mode: PE-updates per second of the SystemC array, 32x32, each arithmetic and
#     dataflow, a 256x256x8192 GEMM (compute-bound), best and median of 5 runs;
#  2. timing mode: a ResNet-18 ImageNet training step at batch 32 on a 32x32 MF-MAC array,
#     end to end through `mfsim simulate --mode timing` (trace parsing and report included);
#  3. `mfsim compare` of a ResNet-50 training step (batch 32) on every array type.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh > /dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo
echo "== value mode, 32x32, GEMM 256x256x8192 (PE-updates/s; 5 runs)"
for array in mfmac int8 int4 fp8 bf16 fp32; do
  for df in os ws is; do
    runs=$(for i in 1 2 3 4 5; do ./build/bench/bench_array "$array" "$df" 32 32 256 256 8192 | sed 's/.*pe_updates_per_second=//'; done | sort -g)
    best=$(echo "$runs" | tail -1); median=$(echo "$runs" | sed -n 3p)
    printf "%-6s %-3s median %s  best %s\n" "$array" "$df" "$median" "$best"
  done
done
echo
echo "== timing mode, ResNet-18 224x224 training step, batch 32, 32x32 MF-MAC"
tmp=$(mktemp -d)
./build/mfsim trace --network resnet18 --batch 32 -o "$tmp/resnet18-b32.json" 2> /dev/null
for df in os ws is; do
  start=$(date +%s.%N)
  ./build/mfsim simulate -q --mode timing --trace "$tmp/resnet18-b32.json" --dataflow "$df" --report "$tmp/r-$df.json"
  end=$(date +%s.%N)
  cycles=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total']['cycles']['total'])" "$tmp/r-$df.json")
  printf "%-3s %.3f s wall, %s cycles simulated\n" "$df" "$(echo "$end - $start" | bc)" "$cycles"
done
echo
echo "== mfsim compare, ResNet-50 224x224 training step, batch 32, 32x32, every array type (timing mode)"
./build/mfsim trace --network resnet50 --batch 32 -o "$tmp/resnet50-b32.json" 2> /dev/null
for df in os ws is; do
  start=$(date +%s.%N)
  ./build/mfsim compare -q --mode timing --trace "$tmp/resnet50-b32.json" --dataflow "$df" \
    --energy-table paper,horowitz45,aladdin45 --report "$tmp/c-$df.json"
  end=$(date +%s.%N)
  printf "%-3s %.3f s wall (6 simulate processes + energy under 3 tables)\n" "$df" "$(echo "$end - $start" | bc)"
done
rm -rf "$tmp"
