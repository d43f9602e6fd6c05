#!/usr/bin/env bash
# Training-core speed (docs/performance.md): one epoch over all 60,000 Fashion-MNIST images
# for the CNN and the MLP in each arithmetic, cnn-bn and resnet8 in FP32 and ALS-POTQ, and one
# epoch of the Transformer, one BLAS thread,
# nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh > /dev/null
./scripts/build.sh > /dev/null
tmp=$(mktemp -d)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
for model in cnn mlp; do
  for quant in fp32 bf16 fp8 int8 int4 als-potq; do
    ./build/mfsim train -q --threads 1 --model "$model" --quant "$quant" --epochs 1 --report "$tmp/r.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%-4s %-9s epoch %.1f s  test accuracy %.4f' % (r['model'], r['quant'], r['epoch_seconds'][0], r['test_accuracy']))" "$tmp/r.json"
  done
done
for model in cnn-bn resnet8; do  # the networks with batch normalisation: FP32 and ALS-POTQ
  for quant in fp32 als-potq; do
    ./build/mfsim train -q --threads 1 --model "$model" --quant "$quant" --epochs 1 --report "$tmp/r.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%-7s %-9s epoch %.1f s  test accuracy %.4f' % (r['model'], r['quant'], r['epoch_seconds'][0], r['test_accuracy']))" "$tmp/r.json"
  done
done
for quant in fp32 int8 als-potq; do  # the Transformer on its generated task, one epoch of 16,000 sequences
  ./build/mfsim train -q --threads 1 --model transformer:vocab=65 --quant "$quant" --epochs 1 --batch 32 --report "$tmp/t.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%-11s %-9s epoch %.1f s  test token accuracy %.4f' % ('transformer', r['quant'], r['epoch_seconds'][0], r['test_token_accuracy']))" "$tmp/t.json"
done
rm -rf "$tmp"
