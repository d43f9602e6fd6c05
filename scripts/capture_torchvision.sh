#!/usr/bin/env bash
# Captures every classification model of torchvision.models (torchvision.models.list_models) on the
# meta device, batch 2, and checks each against the independent count of
# tests/python/torchvision_models.py (forward MACs, weight-gradient MACs, no CPU fallback,
# `mfsim inspect` accepts the trace) and prints one line per model. The CTest test checks the same.
# Result and time: docs/pytorch.md. Uses Debian's /usr/bin/python3 (python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
export MFSIM_BINARY=${MFSIM_BINARY:-$PWD/build/mfsim}
exec /usr/bin/python3 tests/python/torchvision_models.py "$@"
