"""Writes image fixtures and PIL/torchvision reference outputs for tests/test_image.cpp.

Usage: /usr/bin/python3 image_fixtures.py OUT_DIR
       /usr/bin/python3 image_fixtures.py --decode IMAGE OUT.bin   (PIL's RGB pixels, raw)

Every reference array is written as raw bytes (uint8 HWC or float32 CHW) next to a line in
OUT_DIR/manifest.txt: `name kind dtype d0 d1 d2 [extra ints...]`. The C++ test reads them
back and compares against its own decoding, so PIL is the independent reference.
"""
import io
import os
import sys

import numpy as np

import fixture_manifest
from PIL import Image

if sys.argv[1] == "--decode":
    with Image.open(sys.argv[2]) as im:
        np.ascontiguousarray(np.asarray(im.convert("RGB"))).tofile(sys.argv[3])
    sys.exit(0)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)
manifest = []


def natural(w, h):
    """A photo-like image: smooth gradients, shapes with edges, mild noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)
    g = 255 * x / w
    b = 255 * (1 - y / h)
    img = np.stack([r, g, b], axis=2)
    for _ in range(12):
        cx, cy, rad = rng.integers(0, w), rng.integers(0, h), rng.integers(10, 80)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < rad ** 2
        img[mask] = rng.integers(0, 256, 3)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def write_ref(name, arr, kind, extra=()):
    fixture_manifest.write(out, manifest, name, arr, kind, extra)


def decode_ref(fname):
    with Image.open(os.path.join(out, fname)) as im:
        return np.asarray(im.convert("RGB"))


base = natural(640, 480)
base.save(os.path.join(out, "base.jpg"), quality=90)
odd = natural(333, 251)
odd.save(os.path.join(out, "odd.jpg"), quality=90, subsampling=0)
base.convert("L").save(os.path.join(out, "gray.jpg"), quality=90)
base.convert("CMYK").save(os.path.join(out, "cmyk.jpg"), quality=90)
base.save(os.path.join(out, "progressive.jpg"), quality=90, progressive=True)
odd.save(os.path.join(out, "png_named.jpg"), format="PNG")
rgba = odd.convert("RGBA")
a = np.asarray(rgba).copy()
a[..., 3] = np.linspace(0, 255, a.shape[1]).astype(np.uint8)[None, :]
Image.fromarray(a, "RGBA").save(os.path.join(out, "rgba.png"))
odd.convert("P", palette=Image.ADAPTIVE).save(os.path.join(out, "palette.png"))
data = open(os.path.join(out, "base.jpg"), "rb").read()
open(os.path.join(out, "truncated.jpg"), "wb").write(data[: len(data) // 2])
open(os.path.join(out, "header_only.jpg"), "wb").write(data[:300])
open(os.path.join(out, "empty.jpg"), "wb").write(b"")
open(os.path.join(out, "garbage.jpg"), "wb").write(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
png = open(os.path.join(out, "png_named.jpg"), "rb").read()
open(os.path.join(out, "truncated.png"), "wb").write(png[: len(png) // 2])
buf = bytearray(data)
for i in range(1000, len(buf) - 2, 997):  # corrupt entropy-coded data with markers
    buf[i] = 0xFF
    buf[i + 1] = 0xD9
open(os.path.join(out, "corrupt.jpg"), "wb").write(bytes(buf))
# A scan cut short, then a proper end-of-image marker: libjpeg warns "premature end of data
# segment" and pads with grey; the decoder must refuse it.
cut = int(len(data) * 0.8)
while data[cut - 1] == 0xFF:
    cut -= 1
open(os.path.join(out, "truncated_scan.jpg"), "wb").write(data[:cut] + b"\xff\xd9")
# Junk between the scan and the end marker: libjpeg warns "extraneous bytes before marker"
# but loses nothing; PIL decodes it, and so must we.
open(os.path.join(out, "extraneous.jpg"), "wb").write(data[:-2] + b"\x12\x34\x56\xff\xd9")
# 4:2:2 chroma (PIL's subsampling=1) for the region-decoding tests.
base.save(os.path.join(out, "sub422.jpg"), quality=90, subsampling=1)
# A progressive JPEG whose first scan repeats 600 times (a "scan bomb": every scan is another
# pass over the whole image; libjpeg only warns about the odd progression).
odd.save(os.path.join(out, "progressive_small.jpg"), quality=90, progressive=True)
small = open(os.path.join(out, "progressive_small.jpg"), "rb").read()
sos = small.index(b"\xff\xda")
end = sos + 2 + int.from_bytes(small[sos + 2:sos + 4], "big")
while not (small[end] == 0xFF and small[end + 1] not in (0x00, 0xFF) and
           not 0xD0 <= small[end + 1] <= 0xD7):
    end += 1
open(os.path.join(out, "many_scans.jpg"), "wb").write(small[:end] + small[sos:end] * 600 +
                                                      small[end:])
# A JPEG whose frame header claims 9000x9000 (81 MP): only the header is read.
sof = data.index(b"\xff\xc0")
big = bytearray(data)
big[sof + 5:sof + 9] = bytes([9000 >> 8, 9000 & 255, 9000 >> 8, 9000 & 255])
open(os.path.join(out, "huge_header.jpg"), "wb").write(bytes(big))
# A valid 16384x16384 grey PNG of ~260 KB (zeros compress 1000:1): 268 MP, 1 GB as RGBA.
import struct  # noqa: E402
import zlib  # noqa: E402


def png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload +
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


z = zlib.compressobj(9)
row = bytes(16384 + 1)  # filter byte + one row of zeros
idat = b"".join(z.compress(row) for _ in range(16384)) + z.flush()
with open(os.path.join(out, "huge.png"), "wb") as fh:
    ihdr = struct.pack(">IIBBBBB", 16384, 16384, 8, 0, 0, 0, 0)  # 8-bit grey
    fh.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) +
             png_chunk(b"IEND", b""))

# Full decodes, as PIL's convert("RGB") gives them.
for f in ["base.jpg", "odd.jpg", "gray.jpg", "cmyk.jpg", "progressive.jpg", "png_named.jpg",
          "rgba.png", "palette.png", "extraneous.jpg", "sub422.jpg"]:
    write_ref("decode_" + f.replace(".", "_"), decode_ref(f), "decode:" + f)

# DCT-scaled decodes via PIL's draft(), which uses libjpeg's scale_denom.
for req in [(320, 240), (160, 120), (100, 70), (80, 60)]:
    with Image.open(os.path.join(out, "base.jpg")) as im:
        im.draft("RGB", req)
        arr = np.asarray(im.convert("RGB"))
    write_ref("draft_%dx%d" % req, arr, "draft:base.jpg", (req[1], req[0]))

# Antialiased bilinear resizes of full decodes (PIL.Image.resize, optional box).
odd_px = Image.open(os.path.join(out, "odd.jpg")).convert("RGB")
base_px = Image.open(os.path.join(out, "base.jpg")).convert("RGB")
cases = [("odd.jpg", odd_px, (100, 80), None), ("odd.jpg", odd_px, (224, 224), None),
         ("odd.jpg", odd_px, (500, 400), None), ("base.jpg", base_px, (256, 192), None),
         ("base.jpg", base_px, (37, 301), None),
         ("base.jpg", base_px, (224, 224), (100.0, 50.0, 400.0, 330.0)),
         ("base.jpg", base_px, (256, 256), (13.5, 7.25, 77.0, 90.5))]
for i, (f, im, size, box) in enumerate(cases):
    arr = np.asarray(im.resize(size, Image.BILINEAR, box=box))
    b = box if box is not None else (0.0, 0.0, float(im.width), float(im.height))
    write_ref("resize_%d" % i, arr, "resize:" + f, b)

# Crop, then resize (torchvision's resized_crop on PIL): box is integer (left, top, w, h).
for i, (l, t, w, h, size) in enumerate([(10, 20, 300, 200, 256), (200, 100, 120, 90, 256),
                                        (0, 0, 640, 480, 224), (500, 300, 140, 180, 96)]):
    arr = np.asarray(base_px.crop((l, t, l + w, t + h)).resize((size, size), Image.BILINEAR))
    write_ref("crop_%d" % i, arr, "crop:base.jpg", (l, t, w, h))

# torchvision evaluation pipeline: Resize(256) + CenterCrop(224) + ToTensor + Normalize.
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402

for f, im in [("base.jpg", base_px), ("odd.jpg", odd_px)]:
    tv = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    write_ref("eval_" + f.replace(".", "_"), tv(im).numpy().astype(np.float32), "eval:" + f)
    tv = T.Compose([T.Resize((100, 150)), T.ToTensor()])
    write_ref("resize_exact_" + f.replace(".", "_"), tv(im).numpy().astype(np.float32),
              "exact:" + f)

# Colour jitter references with fixed factors, on a small float image.
from torchvision.transforms import functional as TF  # noqa: E402

small = TF.to_tensor(odd_px.resize((40, 30), Image.BILINEAR))
write_ref("jitter_input", small.numpy(), "jitter_input")
for name, fn, fac in [("brightness", TF.adjust_brightness, 1.3),
                      ("contrast", TF.adjust_contrast, 0.6),
                      ("saturation", TF.adjust_saturation, 1.7),
                      ("hue", TF.adjust_hue, 0.2), ("hue_neg", TF.adjust_hue, -0.35)]:
    write_ref("jitter_" + name, fn(small, fac).numpy(), "jitter:" + name, (fac,))

with open(os.path.join(out, "manifest.txt"), "w") as fh:
    fh.write("\n".join(manifest) + "\n")
