#!/bin/sh
# Traces the first training step of a small CNN (two strided convolutions and a classifier,
# batch 4) in every arithmetic the RTL arrays run, for the co-simulation tier (tests/rtl):
# ALS-POTQ strict (every operand PoT4), ALS-POTQ with INT8 activations (shift-add pairs), INT8
# activations with two-term weights and errors (two-term shift-add pairs), INT8,
# INT4, FP32, BF16 and FP8. Usage: trace_steps.sh MFSIM OUTDIR
set -eu
mfsim=$1
out=$2
mkdir -p "$out"
for step in "strict --quant als-potq --policy strict" "int8act --quant als-potq --policy int8-activations" \
            "apot --quant als-potq --policy act8-apotwg" \
            "int8 --quant int8" "int4 --quant int4" "fp32 --quant fp32" "bf16 --quant bf16" "fp8 --quant fp8"; do
  set -- $step
  name=$1
  shift
  "$mfsim" train -q --spec conv:4:3:2:1,relu,conv:6:3:2:1,relu,flatten,fc:10 --epochs 1 --train-limit 16 \
    --test-limit 8 --batch 4 --seed 3 "$@" --trace-out "$out/$name.json" --report "$out/$name-report.json"
done
