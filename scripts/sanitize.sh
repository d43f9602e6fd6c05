#!/usr/bin/env bash
# The sanitizer tier (CI runs it after the README's test command): a clang build with
# AddressSanitizer + UBSan of everything, the whole test suite under it, every fuzz corpus file and
# crash reproducer as regression tests (CTest label `fuzz`), then each fuzz target for a short time.
# Usage: scripts/sanitize.sh [FUZZ_SECONDS_PER_TARGET]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
./scripts/setup.sh
build=build-san
if [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMFSIM_SANITIZE=ON \
    -DMFSIM_FUZZ=ON -DMFSIM_BUILD_TESTS=ON -DMFSIM_WERROR=OFF > "$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2
    exit 1
  }
fi
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" > "$build/build.log" 2>&1 || {
  tail -40 "$build/build.log" >&2
  exit 1
}
echo "sanitize: ASan+UBSan build in $build; running the suite and the fuzz regressions"
(cd "$build" && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)")
echo "sanitize: fuzzing each target for ${seconds} s"
FUZZ_BUILD_DIR="$build" ./scripts/fuzz.sh "$seconds"
