#!/usr/bin/env bash
# The ONNX export through the programs: coco_train --export-onnx on demo data, the export_onnx
# program, and the deploy snippets of README.md and docs/deploy.md run as written on three
# validation images, whose probabilities and labels must be the ones predict prints.
# Usage: onnx_programs.sh BUILD_DIR PYTHON SOURCE_DIR
set -euo pipefail
build=$1 python=$2 source=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "onnx_programs: FAIL: $*" >&2; exit 1; }
data=$tmp/data
"$build/examples/make_demo_data/make_demo_data" --out "$data" --train 64 --val 16 --size 64 --seed 1
"$build/examples/coco_train/coco_train" --train-ann "$data/annotations/instances_train.json" \
  --train-images "$data/train" --val-ann "$data/annotations/instances_val.json" --val-images "$data/val" \
  --image-size 48 --batch-size 4 --epochs 8 --workers 1 --out "$tmp/run" --export-onnx "$tmp/coco.onnx"
[[ -s $tmp/coco.onnx ]] || fail "coco_train --export-onnx wrote no file"
"$build/examples/export_onnx/export_onnx" "$tmp/run/best.pt" "$tmp/model.onnx" --probabilities --float16
check="$source/tests/python/onnx_reference.py"
# Captured first: grep -q would stop reading early, and pipefail would count the writer's
# broken pipe as a failed check.
out=$("$python" "$check" check "$tmp/coco.onnx") || fail "coco.onnx: checker"
grep -q "output logits batchx" <<< "$out" || fail "coco.onnx: no logits output"
out=$("$python" "$check" check "$tmp/model.onnx") || fail "model.onnx: checker"
grep -q "output probabilities batchx" <<< "$out" || fail "model.onnx: no probabilities output"

# The deploy snippets, verbatim (README.md's short one, docs/deploy.md's full one), on three
# validation images, each as cat.jpg beside model.onnx.
if ! "$python" -c "import onnxruntime, onnx, PIL, numpy" 2>/dev/null; then
  echo "onnx_programs: SKIPPED the deploy snippet (no onnxruntime, onnx or PIL in $python)"
  exit 0
fi
# Each snippet runs twice per image: on model.onnx (its labels) and on a copy whose metadata
# thresholds are 0, so that it prints every probability. Both sides read one lossless copy of
# the image (PIL opens cat.jpg by its content, predict decodes PNG), so only the resize and
# the numerics separate them: every probability must match predict's to 0.001 (the snippet
# rounds to 3 decimals), and the labels too but for a class within 0.001 of its threshold.
mkdir "$tmp/deploy" "$tmp/all"
cp "$tmp/coco.onnx" "$tmp/deploy/model.onnx"
"$python" - "$tmp/deploy/model.onnx" "$tmp/all/model.onnx" <<'PY' || fail "could not write the threshold-0 copy"
import json, sys
import onnx
model = onnx.load(sys.argv[1])
entry = next(p for p in model.metadata_props if p.key == "thresholds")
entry.value = json.dumps([0.0] * len(json.loads(entry.value)))
onnx.save(model, sys.argv[2])
PY
for doc in README.md docs/deploy.md; do
  awk '/^```python$/ {on = 1; next} /^```$/ {on = 0} on' "$source/$doc" > "$tmp/${doc//\//_}.py"
  [[ -s $tmp/${doc//\//_}.py ]] || fail "no python block in $doc"
done
n=0
while read -r image; do
  n=$((n + 1))
  "$python" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2], "PNG")' \
    "$image" "$tmp/cat$n.png"
  cp "$tmp/cat$n.png" "$tmp/deploy/cat.jpg"
  cp "$tmp/cat$n.png" "$tmp/all/cat.jpg"
  "$build/examples/predict/predict" --checkpoint "$tmp/run/best.pt" --threshold 0 --json "$tmp/cat$n.png" \
    > "$tmp/predict$n.json"
  for doc in README.md docs/deploy.md; do
    snippet=$tmp/${doc//\//_}.py
    (cd "$tmp/deploy" && "$python" "$snippet") > "$tmp/labels.txt" || fail "$doc: the snippet failed"
    (cd "$tmp/all" && "$python" "$snippet") > "$tmp/all.txt" || fail "$doc: the snippet failed on the threshold-0 copy"
    "$python" - "$tmp/predict$n.json" "$tmp/deploy/model.onnx" "$tmp/labels.txt" "$tmp/all.txt" "$doc $(basename "$image")" <<'PY' \
      || fail "$doc: the snippet disagrees with predict on $image"
import json, sys
import onnxruntime as ort
predict_json, model, labels_txt, all_txt, what = sys.argv[1:]
read = lambda path: {name: float(p) for name, p in (line.split() for line in open(path) if line.strip())}
ours = {l["class"]: l["probability"] for l in json.load(open(predict_json))["labels"]}
meta = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
thresholds = dict(zip(json.loads(meta["class_names"]), json.loads(meta["thresholds"])))
labels, everything = read(labels_txt), read(all_txt)
assert set(ours) == set(thresholds) == set(everything), \
    f"classes: predict {sorted(ours)}, metadata {sorted(thresholds)}, snippet {sorted(everything)}"
bad, borderline = [], 0
for name, t in thresholds.items():
    p = ours[name]
    if abs(everything[name] - p) > 0.001:
        bad.append(f"{name}: snippet p={everything[name]} vs predict {p:.4f}")
    if abs(p - t) <= 0.001:
        borderline += 1
    elif (name in labels) != (p >= t):
        bad.append(f"{name}: predict p={p:.4f} threshold {t:.4f}, snippet {'has' if name in labels else 'lacks'} it")
assert not bad, "; ".join(bad)
print(f"onnx_programs: {what}: {len(ours)} probabilities agree to 0.001; labels {sorted(labels)}, "
      f"{borderline} of {len(ours)} classes within 0.001 of their threshold")
PY
  done
done < <(find "$data/val" -name '*.jpg' | sort | head -3)
# The comparison means something only if the probabilities depend on the image. A briefly
# trained MobileNetV2 ignores its input in eval mode (BatchNorm running statistics still near
# their initial 0/1 shrink every layer's activations, as torchvision's do), and would pass
# with any preprocessing: the 128 steps above (8 epochs of batch 4) are enough for them.
"$python" - "$tmp"/predict[123].json <<'PY' || fail "the trained model ignores its input: the snippet check decided nothing"
import json, sys
runs = [{l["class"]: l["probability"] for l in json.load(open(f))["labels"]} for f in sys.argv[1:]]
spread = max(max(r[k] for r in runs) - min(r[k] for r in runs) for k in runs[0])
print(f"onnx_programs: the {len(runs)} images' probabilities differ by up to {spread:.3f}")
assert spread > 0.05
PY
