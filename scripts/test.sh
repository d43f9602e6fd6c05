#!/usr/bin/env bash
# Set-up if needed, build (Release, Ninja) into build/, run the whole CTest suite.
# Non-zero exit on any failure. Extra arguments go to ctest (e.g. -L unit, -R inspect).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
jobs=$(nproc 2>/dev/null || echo 2)
cd build
ctest --output-on-failure -j "$jobs" "$@"
