#!/usr/bin/env bash
# Installs bench_images' own Python sides, pinned in benchmarks/images/requirements.txt, into
# the ignored venv .venv-bench-images (2.11) or .venv-bench-images-1.13: pillow-simd (built
# from its sdist with -mavx2) and simplejpeg. pillow-simd and Pillow both install the `PIL`
# package, so they cannot share a venv; this one lists the stack Python's site directories
# in a .pth file, after its own: torch and torchvision come from the stack, PIL from
# pillow-simd. About 1 minute.
# Usage: benchmarks/images/install_sides.sh [--torch 1.13|2.11]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/scripts/torch_flag.sh"  # sets $torch, shifts it off

if [[ $torch == 2.11 ]]; then
  base=$root/.venv-torch2/bin/python
  venv=$root/.venv-bench-images
else
  base=/usr/bin/python3
  venv=$root/.venv-bench-images-1.13
fi
[[ -x $base ]] || "$root/scripts/install_deps.sh" --torch "$torch"
req=$root/benchmarks/images/requirements.txt
stamp=$venv/.mobilenet-requirements
if [[ -x $venv/bin/python ]] && cmp -s "$req" "$stamp"; then exit 0; fi

echo "[install_sides] $req -> $venv (pillow-simd builds from source, about 1 minute)"
rm -rf "$venv"
"$base" -m venv "$venv"
site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
"$base" -c 'import site; print("\n".join(site.getsitepackages()))' > "$site/mobilenet-stack.pth"
CC="cc -mavx2" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
  --no-binary pillow-simd -r "$req"
# pillow-simd must be the PIL this venv imports, and the stack's torch must still be there.
"$venv/bin/python" - <<'PY'
import PIL, simplejpeg, torch, torchvision
assert PIL.__version__ == "12.1.1.post0", "PIL is " + PIL.__version__ + " from " + PIL.__file__
print("[install_sides] PIL", PIL.__version__, "(pillow-simd), simplejpeg", simplejpeg.__version__,
      "torch", torch.__version__, "torchvision", torchvision.__version__)
PY
cp "$req" "$stamp"
