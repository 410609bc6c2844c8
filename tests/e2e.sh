#!/usr/bin/env bash
# End-to-end: generate demo data, train the seed model briefly, check that validation mAP
# ends far above the untrained model's, resume, interrupt, and predict with what train wrote.
# Usage: e2e.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data=$tmp/data
"$build/examples/make_demo_data/make_demo_data" --out "$data" --train 400 --val 100 --size 64 --seed 1
common=(--train-ann "$data/annotations/instances_train.json" --train-images "$data/train"
        --val-ann "$data/annotations/instances_val.json" --val-images "$data/val"
        --image-size 64 --batch-size 16 --lr 3e-3 --warmup-epochs 0.5 --workers 2)
train() { "$build/examples/coco_train/coco_train" "${common[@]}" "$@"; }
fail() { echo "e2e: FAIL: $*" >&2; exit 1; }

# 1. Train 4 epochs, then resume the same run for 2 more.
train --epochs 4 --out "$tmp/run"
[[ -f $tmp/run/last.pt && -f $tmp/run/best.pt && -f $tmp/run/metrics.csv ]] || fail "missing outputs"
train --epochs 6 --out "$tmp/run" --resume --allow-change epochs
rows=$(tail -n +2 "$tmp/run/metrics.csv" | wc -l)
[[ $rows -eq 7 ]] || fail "metrics.csv has $rows epoch rows, expected 7 (untrained + 6)"

# 2. mAP: column 'map' of the untrained row (epoch 0) versus the last epoch.
col=$(head -1 "$tmp/run/metrics.csv" | tr ',' '\n' | grep -n '^map$' | cut -d: -f1)
untrained=$(awk -F, -v c="$col" 'NR==2 {print $c}' "$tmp/run/metrics.csv")
final=$(awk -F, -v c="$col" 'END {print $c}' "$tmp/run/metrics.csv")
echo "e2e: val mAP untrained $untrained -> trained $final"
awk -v u="$untrained" -v f="$final" 'BEGIN {exit !(f >= u + 0.25)}' ||
  fail "mAP $final is not far above the untrained $untrained"

# 3. predict reads the checkpoint train wrote: one JSON line per validation image.
"$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" --json "$data/val" > "$tmp/pred.jsonl"
images=$(find "$data/val" -name '*.jpg' | wc -l)
lines=$(grep -c '"labels": \[' "$tmp/pred.jsonl")
[[ $lines -eq $images ]] || fail "predict gave $lines results for $images images"
grep -q '"probability"' "$tmp/pred.jsonl" || fail "predict labelled nothing"
"$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" "$data/val" | sed -n 1,3p

# 4. SIGINT finishes the step, writes a checkpoint, exits 130; --resume continues from it.
# start_training OUT LOG: coco_train in the background (started directly, so that $pid is
# coco_train itself), returning once its first epoch has begun.
start_training() {
  "$build/examples/coco_train/coco_train" "${common[@]}" --epochs 1 --out "$1" \
    --max-train-images 400 > "$2" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "epoch 1/1" "$2" 2>/dev/null && break
    sleep 0.2
  done
}
start_training "$tmp/int" "$tmp/int.log"
kill -INT $pid
set +e
wait $pid
status=$?
set -e
[[ $status -eq 130 ]] || { cat "$tmp/int.log"; fail "interrupted run exited $status, expected 130"; }
[[ -f $tmp/int/last.pt ]] || fail "no checkpoint after SIGINT"
train --epochs 1 --out "$tmp/int" --max-train-images 400 --resume > "$tmp/int2.log" 2>&1 ||
  { cat "$tmp/int2.log"; fail "resume after SIGINT failed"; }
grep -q "resumed from" "$tmp/int2.log" || fail "resume did not load the checkpoint"
# 5. Data parallel: 2 local ranks (Gloo on loopback), then resume in distributed mode.
train --epochs 1 --out "$tmp/ddp" --nproc 2 --max-train-images 96 --max-val-images 40 \
  > "$tmp/ddp.log" 2>&1 || { cat "$tmp/ddp.log"; fail "--nproc 2 failed"; }
grep -q "data parallel: 2 processes" "$tmp/ddp.log" || fail "--nproc 2 did not run 2 ranks"
train --epochs 2 --out "$tmp/ddp" --nproc 2 --max-train-images 96 --max-val-images 40 --resume \
  --allow-change epochs \
  > "$tmp/ddp2.log" 2>&1 || { cat "$tmp/ddp2.log"; fail "distributed resume failed"; }
rows=$(tail -n +2 "$tmp/ddp/metrics.csv" | wc -l)
[[ $rows -eq 3 ]] || fail "distributed metrics.csv has $rows rows, expected 3"

# 6. The run folder and the resume contract: a fresh run into a used --out is refused, and a
# resume with another image size names the difference; both exit 1 without touching the run.
before=$(md5sum "$tmp/run/last.pt" "$tmp/run/metrics.csv")
set +e
train --epochs 1 --out "$tmp/run" > "$tmp/fresh.log" 2>&1; fresh=$?
"$build/examples/coco_train/coco_train" "${common[@]/#64/48}" --epochs 6 --out "$tmp/run" --resume > "$tmp/mismatch.log" 2>&1; mismatch=$?
set -e
[[ $fresh -eq 1 ]] && grep -q "already holds a run" "$tmp/fresh.log" || { cat "$tmp/fresh.log"; fail "a fresh run into a used --out was not refused"; }
[[ $mismatch -eq 1 ]] && grep -q "image_size: checkpoint 64, now 48" "$tmp/mismatch.log" ||
  { cat "$tmp/mismatch.log"; fail "a resume with another image size was not refused"; }
[[ "$(md5sum "$tmp/run/last.pt" "$tmp/run/metrics.csv")" == "$before" ]] || fail "a refused run changed the run folder"

# 7. Every training image unreadable: a non-zero exit that says so, not "exit 0 after 0 steps".
cp -r "$data" "$tmp/bad"
for f in "$tmp"/bad/train/*.jpg; do head -c 100 "$f" > "$f.cut" && mv "$f.cut" "$f"; done
set +e
"$build/examples/coco_train/coco_train" --train-ann "$tmp/bad/annotations/instances_train.json" \
  --train-images "$tmp/bad/train" --val-ann "$tmp/bad/annotations/instances_val.json" \
  --val-images "$tmp/bad/val" --image-size 64 --batch-size 16 --epochs 1 --out "$tmp/badrun" \
  > "$tmp/bad.log" 2>&1; bad=$?
set -e
[[ $bad -ne 0 ]] && grep -q "no training step was made" "$tmp/bad.log" ||
  { tail -5 "$tmp/bad.log"; fail "training on unreadable images exited $bad without saying why"; }
# 8. Bad flags are refused naming the flag and the value; predict on a folder without images
# says so; --sync-bn trains 2 ranks with SyncBatchNorm2d.
for bad in "--clip-grad nan" "--threads -5" "--dist-timeout 1e30" "--ema-decay 1" "--randaugment-m 31" "--lr inf"; do
  set +e
  train --epochs 1 --out "$tmp/badflag" $bad > "$tmp/flag.log" 2>&1; status=$?
  set -e
  flag=${bad%% *}
  [[ $status -ne 0 ]] && grep -q -- "$flag" "$tmp/flag.log" || { cat "$tmp/flag.log"; fail "'$bad' was not refused"; }
done
mkdir -p "$tmp/noimages"
set +e
"$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" "$tmp/noimages" > "$tmp/noimg.log" 2>&1; status=$?
"$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" --threshold nan "$data/val" > "$tmp/nan.log" 2>&1; nan_status=$?
set -e
[[ $status -eq 1 ]] && grep -q "no image" "$tmp/noimg.log" || { cat "$tmp/noimg.log"; fail "predict on an empty folder"; }
[[ $nan_status -ne 0 ]] && grep -q -- "--threshold" "$tmp/nan.log" || fail "predict --threshold nan was accepted"
train --epochs 1 --out "$tmp/syncbn" --nproc 2 --sync-bn --max-train-images 64 --max-val-images 32 \
  > "$tmp/syncbn.log" 2>&1 || { cat "$tmp/syncbn.log"; fail "--nproc 2 --sync-bn failed"; }
# 9. A second Ctrl-C exits at once: sent right after the first, it ends the process before
# the first one's checkpoint is written (one Ctrl-C writes last.pt: step 4).
start_training "$tmp/int3" "$tmp/int3.log"
kill -INT $pid; sleep 0.02; kill -INT $pid  # two signals sent at once would merge into one
set +e
wait $pid
status=$?
set -e
[[ $status -eq 130 ]] || { cat "$tmp/int3.log"; fail "double SIGINT exited $status, expected 130"; }
[[ ! -f $tmp/int3/last.pt ]] || fail "double SIGINT still wrote a checkpoint: the second signal did not exit at once"
echo "e2e: passed"
