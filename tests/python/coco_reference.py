"""Independent reference for tests/test_coco.cpp, written with Python's json module only.

  coco_reference.py targets ANN OUT [--ignore-crowd] [--drop-empty]
      OUT line 1: the category ids in class order; line 2: the names joined by '|';
      then one line per kept image: "<image id> <file name> <class index> <class index> ...".
  coco_reference.py merge OUT ANN1 ANN2 ...
      Union of the category names (normalized: case, '_', '-' and spaces ignored), the first
      file's classes first; OUT line 1: the class names joined by '|'; then one line per image
      of every file in order: "<image id> <class index> ...".
  coco_reference.py demo ANN IMAGE_DIR
      Checks a make_demo_data split with PIL: every image opens at its annotated size and
      every non-crowd annotation's box is covered by pixels of its class colour. Exit 1 on a
      failure (printed).
"""
import json
import re
import sys


def class_order(categories):
    # Contiguous indices in ascending id order, as in the COCO 90 -> 80 convention.
    ids = sorted(c["id"] for c in categories)
    return {cid: k for k, cid in enumerate(ids)}, ids


def targets(ann_file, out_file, ignore_crowd, drop_empty):
    with open(ann_file) as f:
        data = json.load(f)
    index, ids = class_order(data["categories"])
    names = {c["id"]: c["name"] for c in data["categories"]}
    labels = {img["id"]: set() for img in data["images"]}
    for a in data["annotations"]:
        if ignore_crowd and a.get("iscrowd", 0):
            continue
        labels[a["image_id"]].add(index[a["category_id"]])
    with open(out_file, "w") as out:
        out.write(" ".join(str(i) for i in ids) + "\n")
        out.write("|".join(names[i] for i in ids) + "\n")
        for img in data["images"]:
            ks = sorted(labels[img["id"]])
            if drop_empty and not ks:
                continue
            out.write(" ".join([str(img["id"]), img["file_name"]] + [str(k) for k in ks]) + "\n")


def norm(name):
    return re.sub(r"[ _\-\t]+", " ", name.lower()).strip()


def merge(out_file, ann_files):
    datas = []
    for path in ann_files:
        with open(path) as f:
            datas.append(json.load(f))
    classes, where = [], {}
    for data in datas:
        for c in sorted(data["categories"], key=lambda c: c["id"]):
            if norm(c["name"]) not in where:
                where[norm(c["name"])] = len(classes)
                classes.append(c["name"])
    with open(out_file, "w") as out:
        out.write("|".join(classes) + "\n")
        for data in datas:
            name_of = {c["id"]: c["name"] for c in data["categories"]}
            labels = {img["id"]: set() for img in data["images"]}
            for a in data["annotations"]:
                labels[a["image_id"]].add(where[norm(name_of[a["category_id"]])])
            for img in data["images"]:
                out.write(" ".join([str(img["id"])] + [str(k) for k in sorted(labels[img["id"]])]) + "\n")


def demo(ann_file, image_dir):
    from PIL import Image
    import numpy as np
    colours = {"circle": (225, 35, 35), "square": (35, 190, 60), "triangle": (40, 80, 235),
               "cross": (240, 215, 35), "ring": (215, 45, 205), "diamond": (30, 205, 215)}
    with open(ann_file) as f:
        data = json.load(f)
    name_of = {c["id"]: c["name"] for c in data["categories"]}
    pixels = {}
    failures = 0
    for img in data["images"]:
        im = Image.open(f"{image_dir}/{img['file_name']}")
        if im.format != "JPEG" or im.size != (img["width"], img["height"]):
            print("bad image", img, im.format, im.size)
            failures += 1
        pixels[img["id"]] = np.asarray(im.convert("RGB")).astype(np.float64)
    for a in data["annotations"]:
        if a["iscrowd"]:
            continue
        x, y, w, h = a["bbox"]
        box = pixels[a["image_id"]][y:y + h, x:x + w]
        colour = np.array(colours[name_of[a["category_id"]]], dtype=np.float64)
        close = (np.linalg.norm(box - colour, axis=2) < 70).mean()
        if close < 0.15:
            print(f"annotation {a['id']} ({name_of[a['category_id']]}): only {close:.2f} of its box has its colour")
            failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "targets":
        targets(sys.argv[2], sys.argv[3], "--ignore-crowd" in sys.argv, "--drop-empty" in sys.argv)
    elif mode == "merge":
        merge(sys.argv[2], sys.argv[3:])
    elif mode == "demo":
        demo(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
