#!/usr/bin/env bash
# Installs mfsim's build and run dependencies from Debian 12 packages.
# Idempotent: packages already installed are skipped, and nothing is done when all are present.
# Works as root; otherwise uses sudo.
set -euo pipefail

packages=(
  # toolchain (already on the image, listed so a bare Debian 12 works too)
  g++ cmake ninja-build pkg-config ccache
  # libraries
  libsystemc-dev              # SystemC 2.3.4 + TLM: the cycle-accurate array models
  libboost-program-options-dev  # the mfsim command line (brings the Boost headers)
  nlohmann-json3-dev          # trace metadata, configs, reports
  libfmt-dev                  # formatting of messages and reports
  catch2                      # unit tests (Catch2 v2, CTest integration)
  zlib1g-dev                  # CRC-32 payload checksums, gzip-compressed IDX data files
  libopenblas-dev             # FP32 GEMMs of the functional training core (sgemm)
  # data
  dataset-fashion-mnist       # Fashion-MNIST IDX files under /usr/share/datasets/fashion-mnist
  fortunes                    # English text under /usr/share/games/fortunes: the character-level language model (train --task text)
  python3                     # report post-processing in scripts/ (results tables, benchmarks)
  python3-matplotlib          # scripts/plot_sweep.py
  python3-torch python3-torchvision  # python/mfsim_torch: capture any PyTorch model's training step
  python3-dev python3-pybind11  # the native Python module `mfsim` (python/mfsim, built into build/python)
  python3-pandas              # mfsim's Python API: per-GEMM, per-layer and per-phase tables as DataFrames
  libopenmpi-dev openmpi-bin  # mfsim sweep over MPI (optional at build time, tested with mpirun -np 2)
  # the sanitizer tier and fuzzing (scripts/sanitize.sh, scripts/fuzz.sh)
  clang libclang-rt-14-dev    # clang 14 with libFuzzer, AddressSanitizer and UBSan runtimes
  # the RTL twin (sim/rtl/, docs/rtl.md)
  verilator                   # Verilator 5.006: co-simulates the Verilog arrays (CTest tier `rtl`)
  yosys                       # Yosys 0.23: synthesizes the PEs and arrays (transistor counts, area)
  qflow-tech-osu018           # OSU 0.18 um standard cells: /usr/share/qflow/tech/osu018/osu018_stdcells.lib
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
