#!/usr/bin/env bash
# Fails if mobilenet.hpp (the core) reaches a data or c10d library header, transitively.
# g++ -H lists every header it opens; the check also requires that the compile succeeded and
# that LibTorch's headers were seen, so a broken command can never pass.
# Usage: check_header_hygiene.sh COMPILER FLAGS... HEADER
set -uo pipefail
out=$("$@" 2>&1)
status=$?
if [[ $status -ne 0 ]]; then
  echo "$out" | grep -v '^\.' | tail -20
  echo "core_header_hygiene: the compile failed" >&2
  exit 1
fi
grep -q 'torch/csrc/api/include/torch/' <<< "$out" || { echo "core_header_hygiene: no LibTorch header seen" >&2; exit 1; }
if grep -E '(simdjson|turbojpeg|jpeglib|/png[.]h|gloo/|c10d/)' <<< "$out"; then
  echo "core_header_hygiene: the core reaches the headers above" >&2
  exit 1
fi
echo "core_header_hygiene: $(grep -c '^\.' <<< "$out") headers, none from data or c10d libraries"
