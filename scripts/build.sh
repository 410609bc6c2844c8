#!/usr/bin/env bash
# Configures and builds (Release, -j2: sized for a 2-core machine).
# Usage: scripts/build.sh [--torch 1.13|2.11] [cmake --build arguments ...]
#   e.g. scripts/build.sh --torch 2.11 --target test_models bench_inference
#   --torch 1.13 (default): Debian's LibTorch, into ${BUILD_DIR:-build}
#   --torch 2.11: the PyPI wheel of .venv-torch2 (cmake --preset torch2), into
#                 ${BUILD_DIR:-build-torch2}
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch_flag.sh"  # sets $torch, shifts it off
case $torch in
  1.13) preset=debian build=${BUILD_DIR:-$root/build} ;;
  2.11) preset=torch2 build=${BUILD_DIR:-$root/build-torch2} ;;
esac
cmake -S "$root" -B "$build" --preset "$preset" >/dev/null
cmake --build "$build" -j "${JOBS:-2}" "$@"
