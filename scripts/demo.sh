#!/usr/bin/env bash
# The README's main command: installs missing packages (gnuplot for the plots too), builds,
# generates the demo data set and trains the seed model on it on the CPU (a few minutes),
# then prints the final metrics, the plots' paths and a few predictions.
# Extra arguments go to coco_train (e.g. --epochs 10, --loss asl, --nproc 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
demo=${DEMO_DIR:-$root/demo}
"$root/scripts/install_deps.sh"  # gnuplot-nox is in its list
"$root/scripts/build.sh" --target summary make_demo_data coco_train predict
echo "== the seed model"
"$build/examples/summary/summary" | tail -n 10
if [[ ! -f $demo/data/annotations/instances_val.json ]]; then
  echo "== generating demo data in $demo/data"
  "$build/examples/make_demo_data/make_demo_data" --out "$demo/data" --train 600 --val 150 --size 64 --seed 1
fi
# A rerun starts the demo run afresh, unless it is asked to continue it (--resume).
fresh=(--overwrite)
for arg in "$@"; do [[ $arg == --resume ]] && fresh=(); done
echo "== training (64 px: the demo's images are small; COCO uses the default 256)"
"$build/examples/coco_train/coco_train" \
  --train-ann "$demo/data/annotations/instances_train.json" --train-images "$demo/data/train" \
  --val-ann "$demo/data/annotations/instances_val.json" --val-images "$demo/data/val" \
  --image-size 64 --batch-size 16 --epochs 6 --lr 3e-3 --warmup-epochs 0.5 \
  --out "$demo/run" "${fresh[@]}" "$@"
echo "== predictions of best.pt on validation images"
"$build/examples/predict/predict" --checkpoint "$demo/run/best.pt" "$demo/data/val" | sed -n 1,5p
echo "== outputs: $demo/run (metrics.csv, *.png plots, best.pt, last.pt)"
