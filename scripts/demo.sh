#!/usr/bin/env bash
# The README's main command: installs missing packages, builds, and runs the main job.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" --target summary
"$build/examples/summary/summary" "$@"
