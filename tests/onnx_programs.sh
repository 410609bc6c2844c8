#!/usr/bin/env bash
# The ONNX export through the programs: coco_train --export-onnx on demo data, the export_onnx
# program, and docs/deploy.md's onnxruntime snippet run as written on a validation image,
# whose labels must be the ones predict prints for the same checkpoint.
# Usage: onnx_programs.sh BUILD_DIR PYTHON SOURCE_DIR
set -euo pipefail
build=$1 python=$2 source=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "onnx_programs: FAIL: $*" >&2; exit 1; }
data=$tmp/data
"$build/examples/make_demo_data/make_demo_data" --out "$data" --train 64 --val 16 --size 48 --seed 1
"$build/examples/coco_train/coco_train" --train-ann "$data/annotations/instances_train.json" \
  --train-images "$data/train" --val-ann "$data/annotations/instances_val.json" --val-images "$data/val" \
  --image-size 48 --batch-size 16 --epochs 1 --workers 1 --out "$tmp/run" --export-onnx "$tmp/coco.onnx"
[[ -s $tmp/coco.onnx ]] || fail "coco_train --export-onnx wrote no file"
"$build/examples/export_onnx/export_onnx" "$tmp/run/best.pt" "$tmp/model.onnx" --probabilities --float16
check="$source/tests/python/onnx_reference.py"
# Captured first: grep -q would stop reading early, and pipefail would count the writer's
# broken pipe as a failed check.
out=$("$python" "$check" check "$tmp/coco.onnx") || fail "coco.onnx: checker"
grep -q "output logits batchx" <<< "$out" || fail "coco.onnx: no logits output"
out=$("$python" "$check" check "$tmp/model.onnx") || fail "model.onnx: checker"
grep -q "output probabilities batchx" <<< "$out" || fail "model.onnx: no probabilities output"

# The deploy snippet, verbatim, on the first validation image (as model.onnx / cat.jpg).
if ! "$python" -c "import onnxruntime, PIL, numpy" 2>/dev/null; then
  echo "onnx_programs: SKIPPED the deploy snippet (no onnxruntime or PIL in $python)"
  exit 0
fi
image=$(find "$data/val" -name '*.jpg' | sort | head -1)
mkdir "$tmp/deploy"
cp "$tmp/coco.onnx" "$tmp/deploy/model.onnx"
cp "$image" "$tmp/deploy/cat.jpg"
"$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" "$image" > "$tmp/predict.txt"
# predict: "<file>: name p name p ..."; a snippet: one "name p" per line. Same names, in any
# order; probabilities agree to the printed 3 decimals but for JPEG decoding differences.
ours=$(sed 's/^[^:]*://' "$tmp/predict.txt" | tr ' ' '\n' | awk 'NF && $0 !~ /^[0-9.]+$/' | sort | tr '\n' ' ')
# The README's short snippet and docs/deploy.md's full one.
for doc in README.md docs/deploy.md; do
  awk '/^```python$/ {on = 1; next} /^```$/ {on = 0} on' "$source/$doc" > "$tmp/deploy/snippet.py"
  [[ -s $tmp/deploy/snippet.py ]] || fail "no python block in $doc"
  (cd "$tmp/deploy" && "$python" snippet.py) > "$tmp/snippet.txt" || fail "$doc: the snippet failed"
  theirs=$(awk '{print $1}' "$tmp/snippet.txt" | sort | tr '\n' ' ')
  echo "onnx_programs: predict: [$ours] $doc snippet: [$theirs]"
  [[ $ours == "$theirs" ]] || fail "$doc: the snippet's labels differ from predict's"
done
