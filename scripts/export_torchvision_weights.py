#!/usr/bin/env python3
"""Exports a torchvision MobileNetV2's weights in the format mobilenet::load_weights reads.

    /usr/bin/python3 scripts/export_torchvision_weights.py OUT.pt [--checkpoint FILE] [--num-classes N]

With --checkpoint, loads a state_dict you already have (e.g. torchvision's pretrained
mobilenet_v2 file downloaded elsewhere); otherwise asks torchvision for its pretrained
weights (needs network access) . The file is `torch.save(dict(model.state_dict()))`:
a plain dict, since LibTorch cannot unpickle an OrderedDict.
"""
import argparse

import torch
import torchvision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--checkpoint", help="a torchvision mobilenet_v2 state_dict file")
    parser.add_argument("--num-classes", type=int, default=1000)
    args = parser.parse_args()
    if args.checkpoint:
        model = torchvision.models.mobilenet_v2(num_classes=args.num_classes)
        state = torch.load(args.checkpoint, map_location="cpu")
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    else:
        model = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")
    torch.save(dict(model.state_dict()), args.out)
    print(f"wrote {len(model.state_dict())} tensors to {args.out}")


if __name__ == "__main__":
    main()
