#!/usr/bin/env bash
# The Python module's overhead (docs/performance.md, "Python module"): the same simulation of the
# ResNet-18 training step (224x224, batch 32, shape-only, 32x32 MF-MAC, OS, timing mode, the
# mapper's default search) run by `mfsim simulate` and by `mfsim.simulate` from Python, as whole
# processes (interpreter start and `import mfsim` included), paired A/B by farm-bench where it is
# installed (else 5 timed runs each); then the call alone, timed inside Python, against the CLI's
# own wall time in its report. Run it with nothing else running on the machine.
#   usage: scripts/bench_python.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
[ -x build/mfsim ] && [ -d build/python/mfsim ] || ./scripts/build.sh > /dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
./build/mfsim trace -q --network resnet18 --batch 32 -o "$tmp/r18.json"
export PYTHONPATH=$PWD/build/python
py=(/usr/bin/python3 -c "import mfsim; mfsim.simulate('$tmp/r18.json', mode='timing')")
cli=(./build/mfsim simulate -q --mode timing --trace "$tmp/r18.json" --report "$tmp/cli.json")
if command -v farm-bench > /dev/null; then
  farm-bench -n "$runs" --timeout 600 --vs "${cli[*]}" -- "${py[@]}"
else
  for name in cli py; do
    declare -n cmd=$name
    s=$(date +%s.%N); for _ in $(seq "$runs"); do "${cmd[@]}"; done; e=$(date +%s.%N)
    echo "$name: $(echo "($e - $s) / $runs" | bc -l | cut -c1-6) s per run"
  done
fi
# The call alone (no interpreter start-up) against the CLI's replay time (its report's wall_seconds).
/usr/bin/python3 - "$tmp/r18.json" "$runs" << 'PYEOF'
import json, statistics, subprocess, sys, time
import mfsim
trace, runs = sys.argv[1], int(sys.argv[2])
t = mfsim.load_trace(trace)
py, cli = [], []
for _ in range(runs):
    t0 = time.perf_counter(); mfsim.simulate(t, mode="timing"); py.append(time.perf_counter() - t0)
    subprocess.run(["./build/mfsim", "simulate", "-q", "--mode", "timing", "--trace", trace, "--report", trace + ".cli.json"], check=True)
    cli.append(json.load(open(trace + ".cli.json"))["performance"]["wall_seconds"])
print("in-process call: mfsim.simulate %.3f s (median of %d), CLI replay %.3f s: ratio %.3f"
      % (statistics.median(py), runs, statistics.median(cli), statistics.median(py) / statistics.median(cli)))
PYEOF
