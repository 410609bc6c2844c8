#!/usr/bin/env bash
# Installs what mobilenet builds, tests and runs with — only what is missing.
# Usage: scripts/install_deps.sh [--torch 1.13|2.11] [extra-debian-package ...]
#   --torch 1.13  (default) Debian's LibTorch 1.13 and its Python peers (python3-torch, ...)
#   --torch 2.11  the common Debian packages, plus torch 2.11.0 / torchvision 0.26.0 (CUDA 13.0
#                 wheels) and the other pinned PyPI packages of scripts/requirements/torch2.11.txt
#                 in the ignored venv $MOBILENET_VENV (default .venv-torch2): ~5 GB, ~3 min.
#                 The build then uses `cmake --preset torch2`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch_flag.sh"  # sets $torch, shifts it off

packages=(
  build-essential cmake ccache ninja-build  # toolchain
  libeigen3-dev                             # metrics without LibTorch
  libsimdjson-dev                           # COCO annotations
  libturbojpeg0-dev libjpeg-dev libpng-dev  # image decoding
  libcli11-dev                              # example programs' flags
  libgloo-dev                               # c10d Gloo process group headers (neither stack ships them)
  libonnx-dev libprotobuf-dev protobuf-compiler zlib1g-dev  # ONNX export (onnx.proto, protoc, static protobuf)
  doctest-dev                               # tests
  gnuplot-nox                               # coco_train's plots (the coco_train_no_shell test renders them)
  clang libclang-rt-dev                     # fuzz targets (libFuzzer, ASan)
  python3-venv
)
if [[ $torch == 1.13 ]]; then
  packages+=(libtorch-dev                   # LibTorch 1.13 (C++ API)
             python3-torch python3-torchvision python3-sklearn python3-pil python3-onnx)  # references
fi
packages+=("$@")
missing=()
for p in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[install_deps] installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ $torch == 2.11 ]]; then
  venv=${MOBILENET_VENV:-$root/.venv-torch2}
  req=$root/scripts/requirements/torch2.11.txt
  stamp=$venv/.mobilenet-requirements
  # Reinstall only when the pinned list changed since the last successful install.
  if [[ ! -x $venv/bin/python ]] || ! cmp -s "$req" "$stamp"; then
    echo "[install_deps] PyPI stack of $req -> $venv (about 5 GB)"
    [[ -x $venv/bin/python ]] || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    # Every pin must be what got installed (a transitive upgrade would change the references).
    if ! diff <(grep -v '^#' "$req" | sort -f) \
              <("$venv/bin/python" -m pip freeze --disable-pip-version-check | sort -f) >/dev/null; then
      echo "[install_deps] installed versions differ from $req:" >&2
      diff <(grep -v '^#' "$req" | sort -f) \
           <("$venv/bin/python" -m pip freeze --disable-pip-version-check | sort -f) >&2 || true
      exit 1
    fi
    "$venv/bin/python" -m pip check --disable-pip-version-check
    cp "$req" "$stamp"
  fi
fi
