#!/usr/bin/env bash
# Re-measures, on one build's LibTorch, the settings decided by measurement on the other stack
# (issue 18 item 5): bf16 autocast on the CPU, thread count, and prepare_for_inference's
# memory format / backend choice. C++ only (bench_train_step --cpp-only), variants interleaved
# (A B C A B C ...), medians of the rounds. The figures go in docs/stacks.md with the stack.
# Usage: benchmarks/stack_decisions.sh BUILD_DIR [ROUNDS=3] [STEPS=5]
#   e.g. benchmarks/stack_decisions.sh build-torch2      (LibTorch 2.11)
#        benchmarks/stack_decisions.sh build             (Debian 1.13)
set -euo pipefail
build=${1:?usage: stack_decisions.sh BUILD_DIR [ROUNDS] [STEPS]}
rounds=${2:-3}
steps=${3:-5}
bin=$build/benchmarks/train_step/bench_train_step
[[ -x $bin ]] || { echo "stack_decisions: $bin is not built (--target bench_train_step)" >&2; exit 1; }

load=$(cut -d' ' -f1 /proc/loadavg)
if ! awk -v l="$load" 'BEGIN{exit !(l < 0.5)}'; then
  echo "stack_decisions: 1-minute load $load >= 0.5; run it on a quiet machine" >&2
  exit 2
fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load $load, $(nproc) cores usable"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "LibTorch: $(grep -m1 -E '^Torch_DIR' "$build/CMakeCache.txt" | cut -d= -f2-)"
echo "BLAS of libtorch_cpu: $(ldd "$bin" | grep -E 'blas|mkl' | awk '{print $1 " -> " $3}' | tr '\n' ' ')"
echo "libblas.so.3 alternative: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo none)"
echo "model: MobileNetV2 OS32, 80 classes, 224x224, channels-last training, AdamW, batch 32"
echo

variants=("fp32 2 threads|--threads 2" "bf16 autocast 2 threads|--threads 2 --amp"
          "fp32 1 thread|--threads 1" "bf16 autocast 1 thread|--threads 1 --amp")
declare -A step latency
for ((r = 1; r <= rounds; ++r)); do
  for v in "${variants[@]}"; do
    name=${v%%|*}
    read -ra flags <<<"${v#*|}"
    out=$("$bin" --cpp-only "$steps" "${flags[@]}")
    s=$(sed -n 's/^C++ step: median \([0-9.]*\) s wall.*/\1/p' <<<"$out")
    step[$name]+="$s "
    # The batch-1 rows: eager and each preparation (memory format x backend choice).
    latency[$name]+=$(grep '^C++ batch-1' <<<"$out" | sed 's/^/    /')$'\n'
    echo "round $r, $name: step $s s"
  done
done
echo
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo "medians of $rounds rounds ($steps timed steps each):"
for v in "${variants[@]}"; do
  name=${v%%|*}
  m=$(median <<<"${step[$name]}")
  printf '  %-24s train step %.3f s (%.1f img/s)\n' "$name" "$m" "$(awk -v m="$m" 'BEGIN{print 32/m}')"
done
echo
echo "batch-1 CPU ms per round (eager, and prepare_for_inference per memory format/backends):"
for v in "${variants[@]}"; do
  name=${v%%|*}
  [[ $name == bf16* ]] && continue  # inference runs without autocast: the fp32 rows cover it
  echo "  $name:"
  printf '%s' "${latency[$name]}"
done
