#!/usr/bin/env bash
# Learning parity: coco_train (default recipe) and a torchvision reference with the identical
# recipe (tests/python/learning_reference.py: same initial weights, transforms, optimizer,
# schedule, batch, epochs) on make_demo_data output whose objects often cross the image border.
# Asserts: |mAP(C++) - mAP(Python)| <= 0.02, and the default squish evaluation beats the
# ImageNet center-crop evaluation of the same checkpoint (the crop cuts border objects away).
# Usage: learning_parity.sh BUILD_DIR [PYTHON]
set -euo pipefail
build=$1
python=${2:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "learning_parity: FAIL: $*" >&2; exit 1; }
# Recipe shared by both sides. Output stride 32: torchvision's MobileNetV2 has no dilation.
size=64 batch=16 epochs=5 lr=2e-3 warmup=0.5 seed=0
"$build/examples/make_demo_data/make_demo_data" --out "$tmp/data" --train 640 --val 320 --size 72 \
  --seed 7 --border-fraction 0.6 > /dev/null
start=$(date +%s)
"$python" "$here/python/learning_reference.py" --data "$tmp/data" --image-size $size \
  --batch-size $batch --epochs $epochs --lr $lr --warmup-epochs $warmup --seed $seed \
  --init-out "$tmp/init.pt" --threads 2 --workers 2 | tee "$tmp/python.log"
py_map=$(tail -1 "$tmp/python.log" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["map"])')
"$build/examples/coco_train/coco_train" \
  --train-ann "$tmp/data/annotations/instances_train.json" --train-images "$tmp/data/train" \
  --val-ann "$tmp/data/annotations/instances_val.json" --val-images "$tmp/data/val" \
  --weights "$tmp/init.pt" --output-stride 32 --image-size $size --batch-size $batch \
  --epochs $epochs --lr $lr --warmup-epochs $warmup --schedule cosine --optimizer adamw \
  --weight-decay 1e-4 --seed $seed --workers 2 --threads 2 --out "$tmp/run" > "$tmp/cpp.log" 2>&1 ||
  { tail -20 "$tmp/cpp.log"; fail "coco_train failed"; }
grep "^epoch" "$tmp/cpp.log"
col=$(head -1 "$tmp/run/metrics.csv" | tr ',' '\n' | grep -n '^map$' | cut -d: -f1)
cpp_map=$(awk -F, -v c="$col" 'END {print $c}' "$tmp/run/metrics.csv")
"$build/examples/coco_train/coco_train" --evaluate "$tmp/run/last.pt" --eval-resize center \
  --val-ann "$tmp/data/annotations/instances_val.json" --val-images "$tmp/data/val" \
  --batch-size $batch --threads 2 > "$tmp/center.log" 2>&1 || { tail "$tmp/center.log"; fail "--evaluate failed"; }
center_map=$(sed -n 's/.* mAP \([0-9.]*\) CF1.*/\1/p' "$tmp/center.log")
echo "learning_parity: val mAP after $epochs epochs: C++ $cpp_map, torchvision $py_map;" \
     "same checkpoint with center-crop eval $center_map ($(( $(date +%s) - start )) s)"
awk -v a="$cpp_map" -v b="$py_map" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 0.02)}' ||
  fail "C++ mAP $cpp_map is not within 0.02 of torchvision's $py_map"
awk -v a="$cpp_map" -v b="$center_map" 'BEGIN {exit !(a > b)}' ||
  fail "squish eval ($cpp_map) does not beat center-crop eval ($center_map)"
echo "learning_parity: passed"
