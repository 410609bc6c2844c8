"""Writes inputs and torchvision/PIL reference outputs for tests/test_transforms.cpp.

Usage: /usr/bin/python3 transforms_reference.py OUT_DIR

Every array goes to OUT_DIR/<name>.bin (raw uint8 HWC or float32) with a line in
OUT_DIR/manifest.txt: `name kind dtype d0 d1 d2 [extra numbers...]`, the format of
image_fixtures.py. The C++ suite applies its own ops with the parameters in `extra` and
compares, so torchvision.transforms.functional (on uint8 CHW tensors) and PIL are the
independent references.

Op lines: `op_<i> <op> u8 H W 3 <input id> <magnitude> <bilinear 0/1> <fill given 0/1> r g b`,
where <magnitude> is the signed value torchvision's RandAugment passes to its `_apply_op`.
"""
import math
import os
import sys

import numpy as np

import fixture_manifest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261130)
manifest = []


def write(name, arr, kind, extra=()):
    fixture_manifest.write(out, manifest, name, arr, kind, extra)


def natural(h, w):
    """Smooth gradients, discs with hard edges and mild noise: every op has work to do."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 9.0) * np.cos(y / 7.0), 255 * x / w,
                    255 * (1 - y / h)], axis=2)
    for _ in range(6):
        cx, cy, rad = rng.integers(0, w), rng.integers(0, h), rng.integers(4, 15)
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] = rng.integers(0, 256, 3)
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# Inputs: a non-square natural image, a dull one (narrow range, one flat channel) for
# autocontrast/equalize, and a constant one (equalize's no-op branch).
inputs = [natural(57, 83)]
dull = (60 + natural(40, 50).astype(np.int32) * 80 // 255).astype(np.uint8)
dull[..., 2] = 77
inputs.append(dull)
inputs.append(np.full((20, 30, 3), 90, np.uint8))
for i, arr in enumerate(inputs):
    write("input_%d" % i, arr, "input")

NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def reference(op, img, m, interp, fill):
    """torchvision.transforms.functional with the parameters RandAugment derives from m."""
    if op == "identity":
        return img
    if op == "shear_x":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[math.degrees(math.atan(m)), 0.0], interpolation=interp,
                        fill=fill, center=[0, 0])
    if op == "shear_y":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[0.0, math.degrees(math.atan(m))], interpolation=interp,
                        fill=fill, center=[0, 0])
    if op == "translate_x":
        return F.affine(img, angle=0.0, translate=[int(m), 0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=interp, fill=fill)
    if op == "translate_y":
        return F.affine(img, angle=0.0, translate=[0, int(m)], scale=1.0, shear=[0.0, 0.0],
                        interpolation=interp, fill=fill)
    if op == "rotate":
        return F.rotate(img, m, interpolation=interp, fill=fill)
    if op == "brightness":
        return F.adjust_brightness(img, 1.0 + m)
    if op == "color":
        return F.adjust_saturation(img, 1.0 + m)
    if op == "contrast":
        return F.adjust_contrast(img, 1.0 + m)
    if op == "sharpness":
        return F.adjust_sharpness(img, 1.0 + m)
    if op == "posterize":
        return F.posterize(img, int(m))
    if op == "solarize":
        return F.solarize(img, m)
    if op == "autocontrast":
        return F.autocontrast(img)
    if op == "equalize":
        return F.equalize(img)
    raise ValueError(op)


# (op, input id, magnitude, bilinear, fill or None)
cases = [("identity", 0, 0.0, 0, None)]
for m in [17.0, -23.5, 30.0, 4.2]:
    cases.append(("rotate", 0, m, 0, None))
cases += [("rotate", 0, -12.0, 1, None), ("rotate", 0, 27.0, 1, [10, 200, 30]),
          ("rotate", 0, 9.0, 0, [124, 116, 104])]
for op in ["shear_x", "shear_y"]:
    cases += [(op, 0, 0.3, 0, None), (op, 0, -0.17, 0, None), (op, 0, 0.21, 1, [7, 8, 9]),
              (op, 0, -0.09, 1, None)]
for op in ["translate_x", "translate_y"]:
    cases += [(op, 0, 20.7, 0, None), (op, 0, -25.9, 0, [50, 60, 70]),
              (op, 0, 13.0, 1, None)]
for op in ["brightness", "color", "contrast", "sharpness"]:
    for m in [0.9, 0.63, -0.3, -0.9]:
        cases.append((op, 0, m, 0, None))
cases += [("contrast", 1, 0.81, 0, None), ("color", 1, -0.6, 0, None),
          ("sharpness", 1, 0.9, 0, None)]
for bits in [8, 7, 6, 5, 4]:
    cases.append(("posterize", 0, float(bits), 0, None))
for t in [255.0, 246.5, 127.5, 42.0, 0.0]:
    cases.append(("solarize", 0, t, 0, None))
for i in range(3):
    cases += [("autocontrast", i, 0.0, 0, None), ("equalize", i, 0.0, 0, None)]

for k, (op, i, m, bilinear, fill) in enumerate(cases):
    img = torch.from_numpy(inputs[i]).permute(2, 0, 1).contiguous()
    if bilinear and fill is not None:
        # torchvision's own fill path multiplies the already weighted edge samples by the
        # coverage once more (darkening a one-pixel band); the reference here is the
        # consistent blend: bilinear sample with zero padding + (1 - coverage) * fill.
        sample = reference(op, img.float(), m, BILINEAR, None)
        coverage = reference(op, torch.ones_like(img, dtype=torch.float32), m, BILINEAR, None)
        fill_img = torch.tensor(fill, dtype=torch.float32).view(3, 1, 1)
        res = torch.round(sample + (1 - coverage) * fill_img).clamp(0, 255).to(torch.uint8)
    else:
        res = reference(op, img, m, BILINEAR if bilinear else NEAREST, fill)
    f = fill if fill is not None else [0, 0, 0]
    write("op_%d" % k, res.permute(1, 2, 0).numpy(), op,
          [i, m, bilinear, int(fill is not None)] + f)

# RandAugment's magnitude table for the first input (torchvision's private table: the
# numbers behind RandAugment(num_ops, magnitude)), one row per op, 31 levels.
space = T.RandAugment()._augmentation_space(31, (57, 83))
names = {"Identity": "identity", "ShearX": "shear_x", "ShearY": "shear_y",
         "TranslateX": "translate_x", "TranslateY": "translate_y", "Rotate": "rotate",
         "Brightness": "brightness", "Color": "color", "Contrast": "contrast",
         "Sharpness": "sharpness", "Posterize": "posterize", "Solarize": "solarize",
         "AutoContrast": "autocontrast", "Equalize": "equalize"}
for key, (mags, signed) in space.items():
    row = mags.float().numpy() if mags.ndim > 0 else np.zeros(31, np.float32)
    write("magnitude_" + names[key], row.astype(np.float32), "magnitude", [int(signed)])

# Squish: the whole image to s x s, as PIL's resize and torchvision's Resize((s, s)).
src = natural(131, 200)
Image.fromarray(src).save(os.path.join(out, "squish.png"))
pil = Image.fromarray(src)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
for s in [64, 150]:
    write("squish_pil_%d" % s, np.asarray(pil.resize((s, s), Image.BILINEAR)), "squish", [s])
    tv = T.Compose([T.Resize((s, s)), T.ToTensor(), norm])
    write("squish_tv_%d" % s, tv(pil).numpy(), "squish_tv", [s])
    tv = T.Compose([T.Resize((s, s)), T.RandomHorizontalFlip(1.0), T.ToTensor(), norm])
    write("squish_tv_flip_%d" % s, tv(pil).numpy(), "squish_tv_flip", [s])
# ImageNet-style evaluation for EvalCrop::center at 64: Resize(int(64 * 256 / 224)) + crop.
tv = T.Compose([T.Resize(int(64 * 256 / 224)), T.CenterCrop(64), T.ToTensor(), norm])
write("center_tv_64", tv(pil).numpy(), "center_tv", [64])
# A small uneven downscale (84x73 -> 64x64, as demo images): Pillow 13.0 rounds it differently
# from Pillow <= 12.2, whose arithmetic ours follows; this case tells which the Python has.
odd = natural(84, 73)
Image.fromarray(odd).save(os.path.join(out, "squish_odd.png"))
write("squish_pil_odd_64", np.asarray(Image.fromarray(odd).resize((64, 64), Image.BILINEAR)),
      "squish", [64])

with open(os.path.join(out, "manifest.txt"), "w") as fh:
    fh.write("\n".join(manifest) + "\n")
