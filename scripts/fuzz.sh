#!/usr/bin/env bash
# Fuzzes every parser of user-written files (tests/fuzz, docs/reliability.md) with libFuzzer under
# AddressSanitizer + UBSan. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
# (default 60 s each, all targets). New inputs go to build-fuzz/corpus/TARGET (the seed corpus in
# tests/fuzz/corpus is read, never written); crashes, timeouts and out-of-memory inputs are
# written to build-fuzz/crashes/TARGET, and the script fails if any appears. A summary line per
# target gives executions, coverage (edges), corpus size and findings.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(trace config energy_table topology idx sweep_state)
./scripts/setup.sh > /dev/null
build=${FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMFSIM_SANITIZE=ON \
    -DMFSIM_FUZZ=ON -DMFSIM_BUILD_TESTS=OFF -DMFSIM_WERROR=OFF > "$build.configure.log" 2>&1 || {
    cat "$build.configure.log" >&2
    exit 1
  }
fi
cmake --build "$build" --target $(printf 'fuzz_%s ' "${targets[@]}") > "$build/fuzz-build.log" 2>&1 || {
  tail -30 "$build/fuzz-build.log" >&2
  exit 1
}
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  log="$build/fuzz-$t.log"
  # Leak checks off: SystemC's and Open MPI's own allocations are not ours to find here.
  ASAN_OPTIONS=detect_leaks=0 "$build/tests/fuzz/fuzz_$t" "$corpus" tests/fuzz/corpus/"$t" \
    -dict=tests/fuzz/"$t".dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$crashes/" -print_final_stats=1 > "$log" 2>&1 || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  found=$(find "$crashes" -type f | wc -l)
  echo "fuzz $t: ${seconds} s, ${execs} executions, ${cov} edges, corpus $(find "$corpus" -type f | wc -l) files, ${found} findings"
  if [ "$found" -gt 0 ]; then
    status=1
    find "$crashes" -type f | sed 's/^/  finding: /'
  fi
done
exit $status
