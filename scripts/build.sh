#!/usr/bin/env bash
# Configures and builds into ${BUILD_DIR:-build} (Release, -j2: sized for a 2-core machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "${JOBS:-2}" "$@"
