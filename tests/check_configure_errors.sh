#!/usr/bin/env bash
# Bad setups stop CMake with a message naming the versions found and needed (README, "Which
# LibTorch"). Each case configures this repository in a scratch folder and greps the message.
#   a LibTorch older than 1.13            (a stand-in Torch package whose version.h says 1.12.1)
#   a torchvision that does not match torch (a stand-in Python: this torch, the previous torchvision)
#   references from another stack          (a stand-in Python reporting the other stack's torch)
#   a CUDA toolkit that does not match     (a CUDA 13.0 torch, a stand-in nvcc reporting 12.4)
# The stand-ins answer exactly what the checks ask (torch's and torchvision's versions, nvcc
# --version); everything else is the real configure.
# Usage: check_configure_errors.sh SOURCE_DIR CMAKE WORK_DIR TORCH_VERSION [PREFIX_PATH]
#   TORCH_VERSION, PREFIX_PATH: the LibTorch this build found and the CMAKE_PREFIX_PATH it used
#   (':'-separated)
set -euo pipefail
src=$1 cmake=$2 work=$3 version=$4 prefix=${5:-}
prefix=${prefix//:/;}  # passed ':'-separated
major=${version%%.*} minor=${version#*.}; minor=${minor%%.*}
if ((major == 1)); then tv_minor=$((minor + 1)); else tv_minor=$((minor + 15)); fi
rm -rf "$work" && mkdir -p "$work"
failures=0

# expect NAME PATTERN cmake-args...: the configure must fail and print PATTERN.
expect() {
  local name=$1 pattern=$2; shift 2
  local log=$work/$name.log
  if "$cmake" -S "$src" -B "$work/$name" "$@" >"$log" 2>&1; then
    echo "FAIL $name: configure succeeded"; failures=$((failures + 1)); return
  fi
  # No `tr | grep -q`: grep -q may exit before tr is done, and a SIGPIPE'd tr fails a pipefail pipeline.
  local flat
  flat=$(tr -s ' \n' ' ' <"$log")
  if grep -q -- "$pattern" <<<"$flat"; then
    echo "ok   $name: $(grep -o -- "$pattern" <<<"$flat")"
  else
    echo "FAIL $name: no '$pattern' in:"; tail -n 20 "$log"; failures=$((failures + 1))
  fi
}

# A Python that reports the given torch, torchvision and CUDA versions to the configure step.
fake_python() {
  local path=$work/python-$1-$2
  cat >"$path" <<EOF
#!/bin/sh
printf '%s\n' "$1" "$2" "${3:-}" "$work/none" "$work/none"
EOF
  chmod +x "$path"
  echo "$path"
}

# 1. LibTorch 1.12: a Torch package that is found and reports its version through version.h.
mkdir -p "$work/torch112/include/torch/csrc/api/include/torch" "$work/torch112/share/cmake/Torch"
printf '#define TORCH_VERSION_MAJOR 1\n#define TORCH_VERSION_MINOR 12\n#define TORCH_VERSION_PATCH 1\n' \
  >"$work/torch112/include/torch/csrc/api/include/torch/version.h"
cat >"$work/torch112/share/cmake/Torch/TorchConfig.cmake" <<EOF
set(TORCH_INSTALL_PREFIX "$work/torch112")
set(TORCH_INCLUDE_DIRS "$work/torch112/include")
set(TORCH_LIBRARIES "")
set(Torch_FOUND TRUE)
EOF
expect old_libtorch "needs LibTorch >= 1.13; found 1.12.1" \
  -DTorch_DIR="$work/torch112/share/cmake/Torch" -DMOBILENET_BUILD_TESTS=OFF \
  -DMOBILENET_BUILD_BENCHMARKS=OFF -DMOBILENET_BUILD_EXAMPLES=OFF

# 2. A torchvision one release behind the one that pairs with this build's torch.
expect torchvision_mismatch \
  "torchvision 0.$((tv_minor - 1)).0 does not match torch $version (needs torchvision 0.$tv_minor.x)" \
  -DMOBILENET_PYTHON="$(fake_python "$version" "0.$((tv_minor - 1)).0")" \
  -DCMAKE_PREFIX_PATH="$prefix" -DMOBILENET_BUILD_EXAMPLES=OFF

# 3. A reference Python of the other stack than this build's LibTorch.
if ((major == 1)); then other=(2.11.0 0.26.0); else other=(1.13.1 0.14.1); fi
expect other_stack "the build uses LibTorch $version but MOBILENET_PYTHON=.* has torch ${other[0]}" \
  -DMOBILENET_PYTHON="$(fake_python "${other[@]}")" -DCMAKE_PREFIX_PATH="$prefix" \
  -DMOBILENET_BUILD_EXAMPLES=OFF

# 4. A CUDA 13.0 torch with a CUDA 12.4 nvcc.
mkdir -p "$work/cuda124/bin"
printf '#!/bin/sh\necho "Cuda compilation tools, release 12.4, V12.4.131"\n' >"$work/cuda124/bin/nvcc"
chmod +x "$work/cuda124/bin/nvcc"
expect cuda_mismatch "built with CUDA 13.0 and needs a CUDA 13.x toolkit; found CUDA 12.4" \
  -DMOBILENET_PYTHON="$(fake_python 2.11.0+cu130 0.26.0 13.0)" -DMOBILENET_TORCH_FROM_PYTHON=ON \
  -DCMAKE_CUDA_COMPILER="$work/cuda124/bin/nvcc"

if ((failures)); then
  echo "$failures configure-error case(s) failed"; exit 1
fi
echo "all configure-error cases stop with their message"
