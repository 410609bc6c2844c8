#!/usr/bin/env bash
# coco_train starts gnuplot without a shell: an --out holding quotes, spaces, $(...) and a
# leading '-' trains, plots (when gnuplot is installed) and runs nothing else; without gnuplot
# on PATH the run says so and still succeeds.
# Usage: coco_train_no_shell.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
bin=$build/examples/coco_train/coco_train
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "coco_train_no_shell: FAIL: $*" >&2; exit 1; }

"$build/examples/make_demo_data/make_demo_data" --out "$tmp/data" --train 16 --val 8 --size 32 --seed 1 > /dev/null
mkdir "$tmp/cwd"
cd "$tmp/cwd"  # where a shell would run `touch PWNED`
train() {
  "$bin" --train-ann "$tmp/data/annotations/instances_train.json" --train-images "$tmp/data/train" \
    --val-ann "$tmp/data/annotations/instances_val.json" --val-images "$tmp/data/val" \
    --image-size 32 --batch-size 8 --epochs 1 --workers 1 --threads 2 --out "$1"
}
# -print -quit, not `find | grep -q`: under pipefail a find killed by SIGPIPE would read as "none".
pwned() { [[ -n $(find "$tmp" "$build" -name PWNED -print -quit) ]] || [[ -e $HOME/PWNED && ! -e $tmp/home_had_pwned ]]; }
[[ -e $HOME/PWNED ]] && touch "$tmp/home_had_pwned"

# Balanced single quotes: wrapped in '...' for a shell, as the old std::system call did, the
# $(...) would run.
out="./-o'\$(touch PWNED)'ut \"x\" y"
train "$out" > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "training into $out failed"; }
pwned && fail "a PWNED file was created: --out reached a shell"
[[ -f $out/best.pt && -f $out/plots.gp ]] || fail "no best.pt / plots.gp in $out"
! grep -q PWNED "$out/plots.gp" || fail "plots.gp embeds the --out path"
if command -v gnuplot > /dev/null; then
  for png in loss f1 map per_class_ap; do
    [[ -s $out/$png.png ]] || { cat "$tmp/train.log"; fail "gnuplot did not write $png.png"; }
  done
  grep -qF "plots: $out/" "$tmp/train.log" || fail "the run did not report its plots"
else
  echo "coco_train_no_shell: gnuplot not installed, plots not checked"
fi

# Without gnuplot: said, skipped, exit 0.
mkdir "$tmp/empty"
PATH=$tmp/empty train "./-o'ut \$(touch PWNED) \"x\"" > "$tmp/nognuplot.log" 2>&1 || { cat "$tmp/nognuplot.log"; fail "a run without gnuplot failed"; }
grep -q "gnuplot not found" "$tmp/nognuplot.log" || { cat "$tmp/nognuplot.log"; fail "a missing gnuplot was not reported"; }
pwned && fail "a PWNED file was created"
echo "coco_train_no_shell: passed"
