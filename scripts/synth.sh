#!/usr/bin/env bash
# Synthesizes every PE type (a whole PE) and small arrays of sim/rtl/ (OS, and the WS/IS one) with Yosys
# and writes the synthesized area table (docs/rtl.md, "Synthesis"):
#   - a technology-independent transistor count: synth -flatten; abc -g cmos2; stat -tech cmos
#     (Yosys counts NAND/NOR 4, NOT 2 and a D flip-flop 16 transistors);
#   - the area in the OSU018 (0.18 um) standard cells: dfflibmap, abc -liberty, stat -liberty (um^2).
# Each PE is mfsim_pe_reg (sim/rtl/mfsim_pe_reg.v: operand registers, MAC datapath, accumulator
# register), synthesized flat; the table also gives its flip-flops' share (their count, 16
# transistors each, their cells' liberty area), the rest being the datapath and the registers'
# enable and reset logic.
#
# Usage: scripts/synth.sh [--out FILE] [--pe NAME]... [--no-arrays] [--update] [--acc-bits N] [--jobs N]
#   --out       the table (default energy/area/osu018-synth.json)
#   --update    replace only the synthesized rows (the --pe types, and the arrays unless --no-arrays)
#               of the existing table (--out), each with its own command and date; the other rows
#               and the table's provenance stay
#   --pe        synthesize only these PE types (default: all eight)
#   --no-arrays skip the 4 x 4 arrays (MF-MAC, shift and INT8; output-stationary and stationary)
#   --acc-bits  integer accumulator width (default 32, the default of pe.acc_bits)
#   --jobs      Yosys runs at once (default 1); the FP32 PE takes several minutes and about
#               200 MB (each run is limited to 8 GB of memory)
set -euo pipefail
ORIG=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=""
LIB=/usr/share/qflow/tech/osu018/osu018_stdcells.lib
ARRAYS=1
UPDATE=0
ACC_BITS=32
JOBS=1
PES=()
COMMAND="scripts/synth.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?synth.sh: --out: expected a file}; shift 2 ;;
    --pe) PES+=("${2:?synth.sh: --pe: expected a PE type}"); shift 2 ;;
    --no-arrays) ARRAYS=0; shift ;;
    --update) UPDATE=1; shift ;;
    --acc-bits) ACC_BITS=${2:?synth.sh: --acc-bits: expected a width}; shift 2 ;;
    --jobs) JOBS=${2:?synth.sh: --jobs: expected a number}; shift 2 ;;
    --liberty) LIB=${2:?synth.sh: --liberty: expected a file}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "synth.sh: unknown option \"$1\"; see --help" >&2; exit 2 ;;
  esac
done
case "$OUT" in "") OUT=$ROOT/energy/area/osu018-synth.json ;; /*) ;; *) OUT=$ORIG/$OUT ;; esac
if [ "$UPDATE" = 1 ] && [ ! -r "$OUT" ]; then
  echo "synth.sh: --update: cannot read the table \"$OUT\"" >&2; exit 2
fi
command -v yosys >/dev/null || { echo "synth.sh: yosys not found; run scripts/setup.sh" >&2; exit 2; }
[ -r "$LIB" ] || { echo "synth.sh: --liberty: cannot read \"$LIB\"; run scripts/setup.sh (qflow-tech-osu018)" >&2; exit 2; }
case "$JOBS" in ''|*[!0-9]*|0) echo "synth.sh: --jobs: expected a positive integer, got \"$JOBS\"" >&2; exit 2 ;; esac
case "$ACC_BITS" in ''|*[!0-9]*) echo "synth.sh: --acc-bits: expected an integer in [2, 64], got \"$ACC_BITS\"" >&2; exit 2 ;; esac
if [ "$ACC_BITS" -lt 2 ] || [ "$ACC_BITS" -gt 64 ]; then
  echo "synth.sh: --acc-bits: expected an integer in [2, 64], got \"$ACC_BITS\"" >&2; exit 2
fi

# PE type, operand bits, accumulator bits (float PEs accumulate in binary32), FMA.
ALL="mfmac:4:$ACC_BITS:0 int8:8:$ACC_BITS:0 int4:4:$ACC_BITS:0 shift:9:$ACC_BITS:0 shift2:9:$ACC_BITS:0 fp32:32:32:0 bf16:16:32:0 fp8:8:32:0"
SEL=()
for p in "${PES[@]+"${PES[@]}"}"; do
  hit=""
  for e in $ALL; do [ "${e%%:*}" = "$p" ] && hit=$e; done
  [ -n "$hit" ] || { echo "synth.sh: --pe: unknown PE type \"$p\"; expected mfmac|int8|int4|shift|shift2|fp32|bf16|fp8" >&2; exit 2; }
  SEL+=("$hit")
done
[ ${#SEL[@]} -gt 0 ] || read -r -a SEL <<< "$ALL"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RTL="$ROOT/sim/rtl/mfsim_pe_int.v $ROOT/sim/rtl/mfsim_pe_float.v $ROOT/sim/rtl/mfsim_mac.v $ROOT/sim/rtl/mfsim_skew.v"

# run_yosys TAG TOP PARAMS: writes $TMP/TAG.cmos.json and $TMP/TAG.lib.txt
run_yosys() {
  local tag=$1 top=$2 params=$3 src=$RTL
  [ "$top" = mfsim_mac ] || src="$src $ROOT/sim/rtl/$top.v"
  local head="read_verilog $src
chparam $params $top
hierarchy -top $top"
  printf '%s\nsynth -flatten\ndfflegalize -cell $_DFF_P_ 01\nabc -g cmos2\ntee -q -o %s stat -json -tech cmos\n' \
    "$head" "$TMP/$tag.cmos.json" > "$TMP/$tag.cmos.ys"
  printf '%s\nsynth -flatten\ndfflibmap -liberty %s\nabc -liberty %s\ntee -q -o %s stat -liberty %s\n' \
    "$head" "$LIB" "$LIB" "$TMP/$tag.lib.txt" "$LIB" > "$TMP/$tag.lib.ys"
  echo "synth.sh: $tag ($top $params)" >&2
  for t in cmos lib; do
    if ! (ulimit -v 8000000; yosys -q -s "$TMP/$tag.$t.ys") > "$TMP/$tag.$t.log" 2>&1; then
      echo "synth.sh: yosys failed on $tag ($t); its log:" >&2
      tail -20 "$TMP/$tag.$t.log" >&2
      return 1
    fi
  done
}

# Every run, at most $JOBS at once; the first failure stops the script.
RUNS=()
LIST=""
if [ "$ARRAYS" = 1 ]; then
  for e in "int8:8:$ACC_BITS" "mfmac:4:$ACC_BITS" "shift:9:$ACC_BITS"; do
    IFS=: read -r pe ow aw <<< "$e"
    for st in os stat; do
      RUNS+=("array-$st-$pe|mfsim_array_$st|-set R 4 -set C 4 -set PE \"$pe\" -set OW $ow -set AW $aw")
      LIST_ARRAYS="${LIST_ARRAYS:-} array-$st:$pe:$ow:$aw:0"
    done
  done
fi
# The longest runs first (the float PEs, the arrays), so that --jobs overlaps them.
for e in "${SEL[@]}"; do
  IFS=: read -r pe ow aw fma <<< "$e"
  run="pe-$pe|mfsim_pe_reg|-set PE \"$pe\" -set OW $ow -set AW $aw -set FMA $fma"
  case "$pe" in fp32|bf16) RUNS=("$run" "${RUNS[@]+"${RUNS[@]}"}") ;; *) RUNS+=("$run") ;; esac
  LIST="$LIST pe:$pe:$ow:$aw:$fma"
done
LIST="$LIST ${LIST_ARRAYS:-}"
running=0
for r in "${RUNS[@]}"; do
  IFS='|' read -r tag top params <<< "$r"
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || exit 1
    running=$((running - 1))
  fi
  run_yosys "$tag" "$top" "$params" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || exit 1
  running=$((running - 1))
done

mkdir -p "$(dirname "$OUT")"
python3 - "$TMP" "$OUT" "$LIB" "$COMMAND" "$(yosys -V)" "$UPDATE" $LIST <<'PY'
import datetime, hashlib, json, os, re, sys
tmp, out, lib, command, version, update = sys.argv[1:7]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def cmos(tag):
    d = json.load(open(os.path.join(tmp, tag + ".cmos.json")))
    return int(d["design"]["estimated_num_transistors"]), int(d["design"]["num_cells_by_type"].get("$_DFF_P_", 0))
libtext = open(lib).read()
def cell_area(cell):
    m = re.search(r"cell\s*\(\s*" + re.escape(cell) + r"\s*\)\s*\{\s*area\s*:\s*([0-9.]+)", libtext)
    if not m:
        sys.exit(f"synth.sh: {lib}: no area for cell {cell}")
    return float(m.group(1))
def area(tag):
    text = open(os.path.join(tmp, tag + ".lib.txt")).read()
    found = re.findall(r"Chip area for module '[^']*': ([0-9.]+)", text)
    if len(found) != 1:
        sys.exit(f"synth.sh: {tag}: expected one module's area in the Yosys statistics, found {len(found)}")
    ff = sum(int(n) * cell_area(c) for c, n in re.findall(r"^\s+(DFF\w*)\s+([0-9]+)\s*$", text, re.M))
    return float(found[0]), ff
pes, arrays = [], []
for item in sys.argv[7:]:
    kind, pe, ow, aw, fma = item.split(":")
    tag = kind + "-" + pe
    t, ffs = cmos(tag)
    a, aff = area(tag)
    # The shift PEs' operand registers carry a tag bit beside their 8-bit operands.
    tagged = pe in ("shift", "shift2")
    row = {"pe": pe, "operand_bits": int(ow) - (1 if tagged else 0), "acc_bits": int(aw)}
    if tagged and kind == "pe":
        row["register_bits"] = int(ow)
    if kind == "pe":
        row.update({"fma": fma == "1", "rtl": "mfsim_pe_reg", "transistors": t, "transistors_flip_flops": 16 * ffs,
                    "flip_flops": ffs, "area_um2": round(a, 3), "area_um2_flip_flops": round(aff, 3)})
        pes.append(row)
    else:
        st = kind.split("-")[1]  # os, or stat: the WS and IS array (the same hardware)
        row.update({"dataflow": "os" if st == "os" else "ws", "rows": 4, "cols": 4, "rtl": "mfsim_array_" + st,
                    "transistors": t, "flip_flops": ffs, "area_um2": round(a, 3)})
        arrays.append(row)
sha = hashlib.sha256(open(lib, "rb").read()).hexdigest()
doc = {
    "format": "mfsim-area-synth",
    "version": 1,
    "name": "osu018-synth",
    "description": "Yosys synthesis of sim/rtl/ (each PE type's whole PE at its default widths; 4 x 4 "
                   "arrays, output-stationary and stationary (dataflow ws: the WS and IS array)): transistor counts (abc -g cmos2; stat -tech cmos) and OSU018 0.18 um "
                   "standard-cell areas (dfflibmap, abc -liberty, stat -liberty).",
    "provenance": {
        "command": command.strip(),
        "tool": version.strip(),
        "liberty": lib,
        "liberty_sha256": sha,
        "node_nm": 180,
        "date": now,
        "transistors": "whole PE (mfsim_pe_reg) synthesized flat; Yosys stat -tech cmos after abc -g cmos2: NAND/NOR 4, NOT 2, D flip-flop 16 transistors; "
                       "flip-flops with reset or enable legalized to plain ones plus gates",
        "area": "sum of the OSU018 cells' liberty areas (no placement, wiring or utilization overhead); "
                "area_um2_flip_flops: the flip-flop cells' share",
    },
    "pes": pes,
    "arrays": arrays,
}
if update == "1":
    # The existing table with the synthesized rows replaced (or added), each carrying its own
    # command and date; the same tool and liberty file, or the table would mix two syntheses.
    old = json.load(open(out))
    for key in ("tool", "liberty_sha256"):
        if old["provenance"][key] != doc["provenance"][key]:
            sys.exit(f"synth.sh: --update: {out} was synthesized with another {key} "
                     f"({old['provenance'][key]}); regenerate the whole table")
    def merge(rows, new, key):
        for r in new:
            r["command"], r["date"] = command.strip(), now
            hit = [i for i, o in enumerate(rows) if key(o) == key(r)]
            if hit and rows[hit[0]]["acc_bits"] != r["acc_bits"]:
                # One row per PE type (and array): a row at other widths would replace it silently.
                print(f"synth.sh: --update: {out} has the {r['pe']} row at {rows[hit[0]]['acc_bits']} accumulator "
                      f"bits, not {r['acc_bits']}; use --out for another table", file=sys.stderr)
                sys.exit(2)
            if hit:
                rows[hit[0]] = r
            else:
                rows.append(r)
    merge(old["pes"], pes, lambda r: r["pe"])
    merge(old["arrays"], arrays, lambda r: (r["pe"], r["dataflow"]))
    doc = old
tmpout = out + ".tmp"
with open(tmpout, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
os.replace(tmpout, out)
print(f"synth.sh: wrote {out}", file=sys.stderr)
PY
