"""Decode-only speed of the Python sides' JPEG decoders on bench_images' files (one core,
best of 5 passes, images per CPU second), full scale and 1/2 scale:

  .venv-bench-images/bin/python benchmarks/images/decode_only.py bench_images_data
  .venv-torch2/bin/python       benchmarks/images/decode_only.py bench_images_data

PIL decodes through whichever PIL the interpreter has (pillow-simd in the bench venv, with
Debian's libjpeg-turbo; Pillow's wheel bundles its own); simplejpeg when it is installed.
"""
import glob
import importlib.util
import io
import os
import sys
import time

import PIL
from PIL import Image, features


def main(d):
    data = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(d, "*.jpg")))]

    def pil(f):
        for b in data:
            im = Image.open(io.BytesIO(b))
            if f > 1:
                im.draft("RGB", (im.size[0] // f, im.size[1] // f))
            im.load()

    def simplejpeg_decode(f):
        import simplejpeg
        for b in data:
            h, w, _, _ = simplejpeg.decode_jpeg_header(b)
            simplejpeg.decode_jpeg(b, "RGB", min_height=h // f, min_width=w // f)

    sides = [("PIL %s (libjpeg-turbo %s)" % (PIL.__version__, features.version("libjpeg_turbo")), pil)]
    if importlib.util.find_spec("simplejpeg"):
        sides.append(("simplejpeg", simplejpeg_decode))
    for name, fn in sides:
        for f in (1, 2):
            best = min(_cpu(fn, f) for _ in range(5))
            print("%-40s scale 1/%d  %.0f img/s" % (name, f, len(data) / best))


def _cpu(fn, f):
    c = time.process_time()
    fn(f)
    return time.process_time() - c


if __name__ == "__main__":
    main(sys.argv[1])
