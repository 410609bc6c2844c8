#!/usr/bin/env bash
# Installs the Debian 12 packages mobilenet builds, tests and runs with — only the missing ones.
# Usage: scripts/install_deps.sh [extra-package ...]
set -euo pipefail
packages=(
  build-essential cmake                     # toolchain
  libtorch-dev                              # LibTorch 1.13 (C++ API)
  libeigen3-dev                             # metrics without LibTorch
  libsimdjson-dev                           # COCO annotations
  libturbojpeg0-dev libjpeg-dev libpng-dev  # image decoding
  libcli11-dev                              # example programs' flags
  libgloo-dev                               # c10d Gloo process group headers
  doctest-dev                               # tests
  clang libclang-rt-dev                     # fuzz targets (libFuzzer, ASan)
  python3-torch python3-torchvision python3-sklearn python3-pil  # reference implementations
  "$@"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[install_deps] installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
