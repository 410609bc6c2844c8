"""Reference computations with torchvision's MobileNetV2, for tests/test_models.cpp.

Everything here is independent of the C++ code: models come from torchvision, and the
output-stride rule is re-implemented on torchvision's modules.

Usage (all paths are files written or read by the C++ test):
  keys NUM_CLASSES OUT                      state_dict keys, one per line, in order
  export NUM_CLASSES SEED WEIGHTS INPUT OUT random model -> weights, input, logits (OS 32)
  logits NUM_CLASSES OS WEIGHTS INPUT OUT   load weights (from C++), dilate, save logits
  raw NUM_CLASSES OUT                        model.state_dict() as users save it (OrderedDict)
  same WEIGHTS_A WEIGHTS_B                  exit 0 iff both files hold identical tensors
  summary NUM_CLASSES OS SIZE OUT           torchsummary's row count and MB figures
"""
import sys

import torch
import torchvision

import torch_files  # LibTorch-written files, weights only


def dilate(model, output_stride):
    """Replace strides by dilation once the stride would exceed output_stride.
    The block that loses its stride keeps the old dilation; later blocks get the new one."""
    stride, dilation = 2, 1  # after the stem
    for block in model.features:
        if not isinstance(block, torchvision.models.mobilenetv2.InvertedResidual):
            continue
        dw = [m for m in block.modules()
              if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels and m.groups > 1][0]
        s = dw.stride[0]
        new_dilation = dilation
        if s > 1:
            if stride * s > output_stride:
                dw.stride = (1, 1)
                new_dilation = dilation * s
            else:
                stride *= s
        dw.dilation = (dilation, dilation)
        dw.padding = (dilation, dilation)
        dilation = new_dilation
    return model


def model_for(num_classes, output_stride=32):
    return dilate(torchvision.models.mobilenet_v2(num_classes=num_classes), output_stride).eval()


def save(obj, path):
    # LibTorch 1.13's unpickler lacks SETITEM, which pickle uses for one-entry dicts.
    obj.setdefault("version", torch.tensor(1))
    torch.save(obj, path)


def main(argv):
    cmd = argv[0]
    if cmd == "keys":
        with open(argv[2], "w") as f:
            f.write("\n".join(model_for(int(argv[1])).state_dict().keys()) + "\n")
    elif cmd == "export":
        torch.manual_seed(int(argv[2]))
        model = model_for(int(argv[1]))
        with torch.no_grad():  # non-trivial BN statistics and a classifier that matters
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.num_batches_tracked.fill_(7)
            model.classifier[1].weight.normal_(0, 0.1)
        x = torch.randn(2, 3, 96, 96)
        torch.save(dict(model.state_dict()), argv[3])
        save({"input": x}, argv[4])
        save({"logits": model(x).detach()}, argv[5])
    elif cmd == "logits":
        model = model_for(int(argv[1]), int(argv[2]))
        model.load_state_dict(torch_files.load(argv[3]))
        x = torch_files.load(argv[4])["input"]
        save({"logits": model(x).detach()}, argv[5])
    elif cmd == "raw":
        torch.manual_seed(3)
        torch.save(model_for(int(argv[1])).state_dict(), argv[2])
    elif cmd == "same":
        a, b = torch_files.load(argv[1]), torch_files.load(argv[2])
        ok = list(a.keys()) == list(b.keys()) and all(
            a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
        sys.exit(0 if ok else 1)
    elif cmd == "summary":
        # torchsummary's rule: hook every module except Sequential / ModuleList / the model.
        model = model_for(int(argv[1]), int(argv[2]))
        size = int(argv[3])
        rows = []

        def hook(module, inputs, output):
            rows.append(output[0].numel())  # per-sample elements (batch of 1)

        for m in model.modules():
            if not isinstance(m, (torch.nn.Sequential, torch.nn.ModuleList)) and m is not model:
                m.register_forward_hook(hook)
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        params = sum(p.numel() for p in model.parameters())
        mb = 1024.0 ** 2
        with open(argv[4], "w") as f:
            f.write("%d\n%d\n%.12f\n%.12f\n%.12f\n" % (
                len(rows), params, 2.0 * sum(rows) * 4.0 / mb, 3 * size * size * 4.0 / mb,
                params * 4.0 / mb))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
