#!/usr/bin/env bash
# Set-up if needed, Release build into build/, then the main job on the built-in default:
# validate the shipped example trace, recompute every GEMM with the reference arithmetic and
# print its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
echo
echo "== mfsim inspect --recompute traces/examples/mlp-tiny.json"
./build/mfsim inspect --recompute traces/examples/mlp-tiny.json
