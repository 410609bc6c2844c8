#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, runs all tests.
# Usage: scripts/test.sh [--torch 1.13|2.11] [ctest arguments ...]
#   --torch 1.13 (default): Debian's LibTorch 1.13, references from /usr/bin/python3
#   --torch 2.11: LibTorch 2.11 from the PyPI wheel (CUDA-enabled build, CPU execution),
#                 references from the same wheel in .venv-torch2
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/torch_flag.sh"  # sets $torch, shifts it off
"$root/scripts/install_deps.sh" --torch "$torch"
"$root/scripts/build.sh" --torch "$torch"
case $torch in
  1.13) cd "${BUILD_DIR:-$root/build}" ;;
  *) cd "${BUILD_DIR:-$root/build-torch2}" ;;
esac
ctest --output-on-failure -j "${JOBS:-2}" "$@"
