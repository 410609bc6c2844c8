#!/usr/bin/env bash
# coco_train's flag table (examples/coco_train/flags.hpp): every flag --list-flags prints is
# either in the run contract or on this script's explicit list of flags that do not change
# the result; --help shows no flag the table lacks; a resume that changes contracted flags is
# refused naming each of them, one that changes only other flags is accepted; bad flags and
# values are refused naming the flag, without a crash.
# Usage: coco_train_flags.sh BUILD_DIR
set -euo pipefail
build=$1
bin=$build/examples/coco_train/coco_train
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "coco_train_flags: FAIL: $*" >&2; exit 1; }

# Flags that cannot change what training produces. Each was reviewed: adding a flag here is a
# claim that a resumed run may change it freely.
not_result=(--coco-root --train-ann --train-images --val-ann --val-images --threads --workers
            --device --out --evaluate --resume --overwrite --allow-change --nproc --dist-timeout
            --export-onnx --list-flags)
# A value differing from the base run's, for every contracted flag (--sync-bn: step 3).
declare -A changed=(
  [--arch]="--arch mobilenet_v1" [--output-stride]="--output-stride 32" [--width-mult]="--width-mult 0.5"
  [--init]="--init seed" [--weights]="--weights $tmp/unread.pt" [--loss]="--loss focal"
  [--focal-alpha]="--focal-alpha 0.5" [--focal-gamma]="--focal-gamma 1" [--asl-gamma-neg]="--asl-gamma-neg 3"
  [--asl-gamma-pos]="--asl-gamma-pos 0.5" [--asl-clip]="--asl-clip 0.1" [--optimizer]="--optimizer sgd"
  [--lr]="--lr 0.01" [--weight-decay]="--weight-decay 0.001" [--momentum]="--momentum 0.5"
  [--schedule]="--schedule onecycle" [--warmup-epochs]="--warmup-epochs 2" [--epochs]="--epochs 2"
  [--batch-size]="--batch-size 4" [--image-size]="--image-size 40" [--train-crop]="--train-crop rrc"
  [--eval-resize]="--eval-resize center" [--min-crop-scale]="--min-crop-scale 0.3" [--recipe]="--recipe asl"
  [--ema-decay]="--ema-decay 0.5" [--ema-warmup]="--ema-warmup 10" [--cutout]="--cutout 0.25"
  [--randaugment-n]="--randaugment-n 1" [--randaugment-m]="--randaugment-m 5" [--pct-start]="--pct-start 0.4"
  [--amp]="--amp" [--freeze]="--freeze 0-1" [--unfreeze-epoch]="--unfreeze-epoch 2"
  [--channels-last]="--channels-last" [--normalize]="--no-normalize" [--ignore-crowd]="--ignore-crowd"
  [--seed]="--seed 3" [--select-by]="--select-by loss" [--clip-grad]="--clip-grad 1"
  [--max-image-pixels]="--max-image-pixels 100000" [--max-train-images]="--max-train-images 24"
  [--max-val-images]="--max-val-images 12" [--sync-bn]="")

# 1. The listing: each flag tagged, contracted under its own name or on the list above.
"$bin" --list-flags > "$tmp/flags.txt"
contracted=()
while read -r name tag key; do
  case $tag in
    changes_result)
      [[ $key == "$(tr - _ <<< "${name#--}")" ]] || fail "$name: contract name '$key'"
      [[ -v changed[$name] ]] || fail "$name is contracted: give it a changed value in this test"
      contracted+=("$name") ;;
    does_not_change_result)
      [[ " ${not_result[*]} " == *" $name "* ]] ||
        fail "$name is tagged does_not_change_result but is not on this test's reviewed list" ;;
    *) fail "$name: tag '$tag'" ;;
  esac
done < "$tmp/flags.txt"
for name in "${not_result[@]}"; do
  grep -q -- "^$name  *does_not_change_result" "$tmp/flags.txt" || fail "$name is not listed as does_not_change_result"
done
# --help comes from the same table: no flag beyond it (and --help itself).
"$bin" --help | grep -oE '^  --[a-z][a-z-]*' | sed 's/^  //' | sort > "$tmp/help.txt"
awk '{print $1}' "$tmp/flags.txt" | sort > "$tmp/listed.txt"
diff "$tmp/help.txt" "$tmp/listed.txt" || fail "--help and --list-flags differ"
echo "coco_train_flags: ${#contracted[@]} contracted flags, ${#not_result[@]} others"

# 2. A base run to resume: one epoch on a few tiny images.
data=$tmp/data
"$build/examples/make_demo_data/make_demo_data" --out "$data" --train 32 --val 16 --size 32 --seed 1 > /dev/null
paths=(--train-ann "$data/annotations/instances_train.json" --train-images "$data/train"
       --val-ann "$data/annotations/instances_val.json" --val-images "$data/val" --out "$tmp/run")
declare -A base=([--image-size]=32 [--batch-size]=8 [--epochs]=1 [--workers]=2 [--threads]=2)
# with ARGS...: sets $args to the base run's flags, each replaced where ARGS give it (CLI11
# refuses a flag given twice). No `printf | grep -q` here: grep -q exits at its first match,
# printf may then die of SIGPIPE, and under pipefail the pipeline reads as "not given".
with() {
  args=("${paths[@]}")
  local flag word
  declare -A given=()
  for word in "$@"; do given[$word]=1; done
  for flag in "${!base[@]}"; do
    [[ -v given[$flag] ]] || args+=("$flag" "${base[$flag]}")
  done
  args+=("$@")
}
with
"$bin" "${args[@]}" > "$tmp/base.log" 2>&1 || { cat "$tmp/base.log"; fail "the base run failed"; }
before=$(md5sum "$tmp/run/last.pt" "$tmp/run/metrics.csv")
# refused LOG WHAT ARGS...: the resume exits 1, names WHAT, and leaves the run as it was.
refused() {
  local log=$1 what=$2 status=0
  shift 2
  with --resume "$@"
  "$bin" "${args[@]}" > "$log" 2>&1 || status=$?
  [[ $status -eq 1 ]] && grep -q -- "$what" "$log" || { cat "$log"; fail "resume with '$*' exited $status, not refused naming $what"; }
  [[ "$(md5sum "$tmp/run/last.pt" "$tmp/run/metrics.csv")" == "$before" ]] || fail "resume with '$*' changed the run"
}

# 3. One contracted flag changed: refused, naming it and both values. --sync-bn is refused
# before the contract is read (it needs a data-parallel run), naming it too.
refused "$tmp/momentum.log" "momentum: checkpoint 0.9, now 0.5" --momentum 0.5
refused "$tmp/syncbn.log" "--sync-bn" --sync-bn
# Every contracted flag changed at once: the refusal names each one.
all=()
for name in "${contracted[@]}"; do read -r -a words <<< "${changed[$name]}"; all+=("${words[@]}"); done
refused "$tmp/all.log" "different run" "${all[@]}"
for name in "${contracted[@]}"; do
  [[ -z ${changed[$name]} ]] && continue
  key=$(tr - _ <<< "${name#--}")
  grep -q "[:;] $key: checkpoint\|different run: $key: checkpoint" "$tmp/all.log" || { cat "$tmp/all.log"; fail "changing $name was not named"; }
done
# An --allow-change name the contract lacks is refused (a typo would allow nothing).
refused "$tmp/typo.log" "'momentun' is not in the run contract" --momentum 0.5 --allow-change momentun

# 4. Only flags that do not change the result changed: the resume is accepted.
with --resume --workers 1 --threads 1 --dist-timeout 100
"$bin" "${args[@]}" > "$tmp/ok.log" 2>&1 ||
  { cat "$tmp/ok.log"; fail "a resume with other --workers/--threads/--dist-timeout was refused"; }
grep -q "resumed from" "$tmp/ok.log" || { cat "$tmp/ok.log"; fail "the resume did not load last.pt"; }
with --resume --momentum 0.5 --allow-change momentum
"$bin" "${args[@]}" > "$tmp/allowed.log" 2>&1 ||
  { cat "$tmp/allowed.log"; fail "--allow-change momentum did not allow it"; }

# 5. Unknown flags and bad values: an error naming the flag, never a crash (status >= 128).
for bad in "--bogus" "--momentum abc" "--epochs 1.5" "--seed -1" "--amp=maybe" "--lr nan" "--arch foo"; do
  status=0
  with $bad
  "$bin" "${args[@]}" > "$tmp/bad.log" 2>&1 || status=$?
  flag=${bad%% *}
  flag=${flag%%=*}
  [[ $status -ne 0 && $status -lt 128 ]] && grep -q -- "$flag" "$tmp/bad.log" ||
    { cat "$tmp/bad.log"; fail "'$bad' exited $status without naming $flag"; }
done
echo "coco_train_flags: passed"
