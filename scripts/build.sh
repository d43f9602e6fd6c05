#!/usr/bin/env bash
# Configures (once) and builds mfsim into build/ (Release, Ninja, ccache when installed).
# Options through the environment: BUILD_DIR, BUILD_TYPE, MFSIM_WERROR, MFSIM_SANITIZE (ON|OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
mkdir -p "$build_dir"
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DMFSIM_WERROR="${MFSIM_WERROR:-ON}" \
  -DMFSIM_SANITIZE="${MFSIM_SANITIZE:-OFF}" > "$build_dir/configure.log" 2>&1 || {
  cat "$build_dir/configure.log" >&2
  exit 1
}
cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)"
