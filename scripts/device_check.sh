#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step functions run through run_step (bash -c): not unreachable
# The GPU check of issue 13, as one command: builds mobilenet against the machine's own
# LibTorch 2.x (a pip torch) and the Debian packages carried in .device-deps/prefix, runs the
# CUDA tests, the CUDA benchmarks and every CTest test, and writes logs and a summary to $OUT.
# A failing step does not stop the later ones; the summary says which failed. The whole run
# keeps to a time budget (default 480 s), each step to its own limit within it.
#
# On the device machine (from the repository root; .device-deps from fetch_device_deps.sh):
#   scripts/device_check.sh                      # everything, with CUDA
# Here (no GPU), to check the script itself:
#   scripts/device_check.sh --dry-run            # print the plan: paths, flags, commands
#   scripts/device_check.sh --cpu --jobs 2 --budget 3600 --ctest-args "-L unit"
#                                                # Debian's LibTorch, CUDA steps skipped
# Options:
#   --cpu              no CUDA: the benchmarks run small on the CPU, CUDA-only steps are skipped
#   --dry-run          print what would run, run nothing
#   --steps LIST       comma-separated subset of: configure,build,cuda_tests,bench_train_step,
#                      bench_epoch,ctest (default: all, in that order)
#   --jobs N           build and ctest parallelism (default: nproc)
#   --budget S         seconds for the whole run (default 480; the step limits scale with it)
#   --build-dir DIR    default build-device (build-device-cpu with --cpu)
#   --ctest-args ARGS  extra ctest arguments for the ctest step (e.g. "-L unit")
# Environment:
#   OUT          where logs and summary.md go (default: BUILD_DIR/out); at most 8 files
#   PYTHON       a Python that imports torch (default: the first of python3,
#                /opt/torch/.venv/bin/python3, /usr/bin/python3 that does)
#   DEPS_PREFIX  the unpacked Debian packages (default .device-deps/prefix)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
start_time=$(date +%s)

cpu=0 dry=0 steps="configure,build,cuda_tests,bench_train_step,bench_epoch,ctest"
jobs=$(nproc) budget=480 build="" ctest_args=""
while (($#)); do
  case $1 in
    --cpu) cpu=1 ;;
    --dry-run) dry=1 ;;
    --steps) steps=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --budget) budget=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --ctest-args) ctest_args=$2; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $build ]] || build=$root/build-device$([[ $cpu == 1 ]] && echo -cpu)
[[ $build = /* ]] || build=$root/$build
out=${OUT:-$build/out}
deps=${DEPS_PREFIX:-$root/.device-deps/prefix}

# ---- the Python that has torch ------------------------------------------------------------
py=${PYTHON:-}
if [[ -z $py ]]; then
  for candidate in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch' 2>/dev/null; then
      py=$(command -v "$candidate")
      break
    fi
  done
fi
if [[ -z $py ]] || ! "$py" -c 'import torch' 2>/dev/null; then
  echo "device_check: no Python that imports torch (set PYTHON)" >&2
  exit 2
fi
pyval() { "$py" -c "import torch, os; print($1)" 2>/dev/null; }
torch_version=$(pyval torch.__version__)
has_cuda=$(pyval 'int(torch.cuda.is_available())')
[[ $cpu == 1 ]] && has_cuda=0

# ---- configure flags ------------------------------------------------------------------------
prefixes=()
# The pip torch's CMake package; Debian's python3-torch has none (libtorch-dev's is found by
# CMake's default search).
torch_cmake=$(pyval torch.utils.cmake_prefix_path)
if [[ $cpu == 0 && -n $torch_cmake && -e $torch_cmake/Torch/TorchConfig.cmake ]]; then
  prefixes+=("$torch_cmake")
fi
[[ -d $deps/usr ]] && prefixes+=("$deps/usr")
extra_flags=()
cxx_flags=""
torch_include=$(pyval 'os.path.join(os.path.dirname(torch.__file__), "include")')
nccl_note="" gloo_note=""
if [[ $cpu == 0 ]]; then
  # The wheel's CUDA pieces (nvtx3, NCCL's header) live in site-packages/nvidia/*/include.
  site=$(pyval 'os.path.dirname(os.path.dirname(torch.__file__))')
  for d in "$site"/nvidia/*; do
    [[ -d $d/include ]] && prefixes+=("$d")
  done
  nccl_h=$(find "$site/nvidia" /usr/local/cuda/include /usr/include -maxdepth 3 -name nccl.h 2>/dev/null | head -1)
  if [[ -n $nccl_h ]]; then
    cxx_flags+=" -isystem $(dirname "$nccl_h")"
    nccl_note="nccl.h: $nccl_h"
  else
    cxx_flags+=" -DMOBILENET_HAS_NCCL=0"
    nccl_note="nccl.h not found: NCCL compiled out (its tests skip)"
  fi
  if [[ -e $torch_include/gloo/config.h ]]; then
    extra_flags+=("-DMOBILENET_GLOO_INCLUDE_DIR=$torch_include")
    gloo_note="Gloo headers: the wheel's ($torch_include)"
  else
    gloo_note="Gloo headers: Debian's libgloo-dev from $deps"
  fi
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  if [[ -n $nvcc ]]; then
    extra_flags+=("-DCMAKE_CUDA_COMPILER=$nvcc" "-DCUDAToolkit_ROOT=$(dirname "$(dirname "$nvcc")")")
    # The consumer tests configure their own projects: they find CUDA through the environment.
    CUDAToolkit_ROOT=$(dirname "$(dirname "$nvcc")")
    export CUDAToolkit_ROOT
  fi
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # H200; skips torch's GPU probe
fi
prefix_path=$(IFS=';'; echo "${prefixes[*]}")
configure_cmd=(cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
               "-DCMAKE_PREFIX_PATH=$prefix_path" "-DMOBILENET_PYTHON=$py"
               "-DCMAKE_CXX_FLAGS=${cxx_flags# }" "${extra_flags[@]}")

# ---- benchmark settings -------------------------------------------------------------------
# The load average still counts the build that just ended for minutes; the benchmarks run
# when nothing else does (procs_running, printed), with the threshold raised to the cores.
max_load=$(nproc)
if [[ $has_cuda == 1 ]]; then
  train_cmd=("$build/benchmarks/train_step/bench_train_step" --device cuda --amp --train-only
             --batch 128 --size 224 --steps 20 --threads 4 --rounds 3 --max-load "$max_load")
  epoch_cmd=("$build/benchmarks/epoch/bench_epoch" --device cuda --amp --channels-last
             --images 1024 --batch 64 --size 224 --workers 16 --threads 4 --rounds 3 --splits ""
             --dir "$build/bench_epoch_data" --max-load "$max_load")
else
  train_cmd=("$build/benchmarks/train_step/bench_train_step" --device cpu --train-only
             --batch 8 --size 96 --steps 2 --threads 2 --rounds 1 --allow-load)
  epoch_cmd=("$build/benchmarks/epoch/bench_epoch" --device cpu --images 32 --batch 8 --size 64
             --workers 2 --threads 2 --rounds 1 --splits "" --dir "$build/bench_epoch_data"
             --allow-load)
fi

# ---- steps ----------------------------------------------------------------------------------
# name|limit in seconds|log file (at most 8 files come back from $OUT)
declare -A limit=([configure]=120 [build]=300 [cuda_tests]=90 [bench_train_step]=90
                  [bench_epoch]=150 [ctest]=100000)
# Sized for the 16-core device and the default budget; a larger --budget (a slower machine)
# stretches every limit in proportion.
for k in "${!limit[@]}"; do
  limit[$k]=$((limit[$k] * budget / 480))
done
declare -A logf=([configure]=configure.log [build]=build.log [cuda_tests]=cuda_tests.log
                 [bench_train_step]=bench_train_step.log [bench_epoch]=bench_epoch.log
                 [ctest]=ctest.log)
summary_rows=()

elapsed() { echo $(($(date +%s) - start_time)); }

# run_step NAME COMMAND...: runs with the step's limit, capped by what is left of the budget
# (minus 10 s for the summary); records ok / FAILED / TIMEOUT and the time taken.
run_step() {
  local name=$1; shift
  local left=$((budget - $(elapsed) - 10))
  local cap=${limit[$name]}
  ((left < cap)) && cap=$left
  if ((cap < 15)); then
    summary_rows+=("| $name | skipped | 0 | no time left in the ${budget} s budget |")
    return 1
  fi
  local log=$out/${logf[$name]} t0 rc status
  t0=$(date +%s)
  echo "[device_check] $name (limit ${cap} s) -> $log"
  { echo "\$ $*"; echo; } >>"$log"
  # Through bash -c, so the step may be a function (exported below); timeout stops the
  # step's whole process group.
  timeout --kill-after=10 "$cap" bash -c '"$@"' _ "$@" >>"$log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=TIMEOUT ;;
    *) status="FAILED (exit $rc)" ;;
  esac
  summary_rows+=("| $name | $status | $(($(date +%s) - t0)) | ${note:-} |")
  note=""
  echo "[device_check] $name: $status"
  return "$rc"
}
skip_step() { summary_rows+=("| $1 | skipped | 0 | $2 |"); echo "[device_check] $1: skipped ($2)"; }
wants() { [[ ,$steps, == *,$1,* ]]; }

# Compares the GradScaler fixture rerun with PyTorch's CUDA GradScaler to the committed one
# (written by the documented formulas on a CPU): the same records, numbers within 1e-6.
compare_fixture() {
  "$py" - "$root/tests/data/grad_scaler.txt" "$1" <<'EOF'
import math, sys
def records(path):
    return [l.split() for l in open(path) if l.strip() and not l.startswith("#")]
want, got = records(sys.argv[1]), records(sys.argv[2])
bad = 0
if len(want) != len(got):
    sys.exit("different record counts: %d committed, %d from CUDA" % (len(want), len(got)))
for w, g in zip(want, got):
    for a, b in zip(w, g):
        try:
            x, y = float(a), float(b)
        except ValueError:
            same = a == b
        else:
            same = (math.isnan(x) and math.isnan(y)) or x == y or abs(x - y) <= 1e-6 * max(abs(x), abs(y))
        if not same or len(w) != len(g):
            bad += 1
            print("differs: committed", " ".join(w), "\n         cuda     ", " ".join(g))
            break
print("grad_scaler fixture: %d of %d records differ" % (bad, len(want)))
sys.exit(1 if bad else 0)
EOF
}

cuda_tests() {
  local rc=0
  if [[ $has_cuda == 1 ]]; then
    echo "== tests/python/grad_scaler_reference.py with PyTorch's own GradScaler on CUDA"
    "$py" "$root/tests/python/grad_scaler_reference.py" --impl torch --device cuda \
          --out "$build/grad_scaler_cuda.txt" && compare_fixture "$build/grad_scaler_cuda.txt" || rc=1
  else
    echo "== no CUDA: the fixture rerun is skipped; test_cuda's cases skip themselves"
  fi
  echo "== ctest -L cuda"
  (cd "$build" && ctest -L cuda -V --timeout 300 --no-tests=error) || rc=1
  return "$rc"
}

bench() {
  local bin=$1
  [[ -x $bin ]] || { echo "not built: $bin"; return 1; }
  # Wait (up to 20 s) until nothing else runs; print what the machine was doing.
  for _ in $(seq 20); do
    (( $(awk '/procs_running/ {print $2}' /proc/stat) <= 2 )) && break
    sleep 1
  done
  echo "procs_running $(awk '/procs_running/ {print $2}' /proc/stat), loadavg $(cut -d' ' -f1-3 /proc/loadavg), max-load $max_load"
  "$@"
}

env_report() {
  echo "date        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "mode        $([[ $cpu == 1 ]] && echo "--cpu (Debian LibTorch, no CUDA)" || echo device)"
  echo "python      $py ($("$py" --version 2>&1)), torch $torch_version, CUDA available: $has_cuda"
  echo "torch       cmake prefix ${torch_cmake:-?}, cxx11 abi $(pyval 'int(torch._C._GLIBCXX_USE_CXX11_ABI)')"
  if command -v nvidia-smi >/dev/null; then
    echo "gpu         $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  fi
  echo "cpu         $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "cmake       $(cmake --version | head -1), $(command -v ninja >/dev/null && echo "ninja $(ninja --version)" || echo "NO ninja")"
  echo "compiler    $(c++ --version | head -1)"
  echo "deps        $deps ($(du -sh "$deps" 2>/dev/null | cut -f1 || echo missing))"
  [[ -n $nccl_note ]] && echo "nccl        $nccl_note"
  [[ -n $gloo_note ]] && echo "gloo        $gloo_note"
  echo "budget      $budget s, jobs $jobs, steps $steps"
}

show() { printf '%q ' "$@"; echo; }
if [[ $dry == 1 ]]; then
  env_report
  echo "build dir   $build"
  echo "out         $out"
  echo
  wants configure && echo "configure:        $(show "${configure_cmd[@]}")"
  wants build && echo "build:            cmake --build $build -j $jobs -- -k 0"
  wants cuda_tests && echo "cuda_tests:       $([[ $has_cuda == 1 ]] && echo "grad_scaler_reference.py --impl torch --device cuda + compare; ")ctest -L cuda -V"
  wants bench_train_step && echo "bench_train_step: $(show "${train_cmd[@]}")"
  wants bench_epoch && echo "bench_epoch:      $(show "${epoch_cmd[@]}")"
  wants ctest && echo "ctest:            ctest -j $jobs -LE cuda --output-on-failure --timeout 600 --no-tests=error $ctest_args"
  exit 0
fi

export -f pyval compare_fixture cuda_tests bench
export py root build has_cuda max_load
mkdir -p "$out" "$build"
rm -f "$out"/*.log "$out/summary.md"
note=""

if wants configure; then
  [[ -d $deps/usr ]] || note="no $deps: run scripts/fetch_device_deps.sh here and carry .device-deps/prefix"
  run_step configure "${configure_cmd[@]}"
fi
if wants build; then
  if [[ -e $build/build.ninja ]]; then
    run_step build cmake --build "$build" -j "$jobs" -- -k 0  # keep going: build what compiles
  else
    skip_step build "not configured"
  fi
fi
if wants cuda_tests; then
  note=$([[ $has_cuda == 1 ]] || echo "no CUDA: test_cuda's cases skipped themselves")
  run_step cuda_tests cuda_tests
fi
if wants bench_train_step; then
  note=$([[ $has_cuda == 1 ]] || echo "CPU smoke run, not a measurement")
  run_step bench_train_step bench "${train_cmd[@]}"
fi
if wants bench_epoch; then
  note=$([[ $has_cuda == 1 ]] || echo "CPU smoke run, not a measurement")
  run_step bench_epoch bench "${epoch_cmd[@]}"
fi
if wants ctest; then
  # shellcheck disable=SC2086  # ctest_args are words
  run_step ctest bash -c "cd '$build' && ctest -j $jobs -LE cuda --output-on-failure --timeout 600 --no-tests=error $ctest_args"
fi

# ---- summary --------------------------------------------------------------------------------
{
  echo "# device_check $(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s of $budget"
  echo
  echo '```'
  env_report
  echo '```'
  echo
  echo "| step | status | seconds | note |"
  echo "|---|---|---|---|"
  printf '%s\n' "${summary_rows[@]}"
  echo
  for f in bench_train_step bench_epoch; do
    [[ -e $out/${logf[$f]} ]] || continue
    echo "## $f"
    echo '```'
    grep -E '^(LibTorch|Python|load|training|loader|data|device) |C\+\+/Python|UNDER LOAD' "$out/${logf[$f]}" | head -20
    echo '```'
  done
  if [[ -e $out/ctest.log ]]; then
    echo "## ctest"
    echo '```'
    grep -E 'tests passed|tests failed|\*\*\*|Failed|Timeout|Not Run' "$out/ctest.log" | head -40
    echo '```'
  fi
  if [[ -e $out/cuda_tests.log ]]; then
    echo "## cuda tests"
    echo '```'
    grep -E 'grad_scaler fixture|MESSAGE|skipped|test cases:|assertions:|Passed|Failed' "$out/cuda_tests.log" | head -40
    echo '```'
  fi
} >"$out/summary.md"
cat "$out/summary.md"
failed=$(printf '%s\n' "${summary_rows[@]}" | grep -cE 'FAILED|TIMEOUT' || true)
exit $((failed > 0))
