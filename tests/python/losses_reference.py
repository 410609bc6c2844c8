#!/usr/bin/python3
"""Reference values for tests/test_losses.cpp, computed with PyTorch / torchvision.

Usage: losses_reference.py DIR
For every DIR/<case>.in written by the C++ test, writes DIR/<case>.out.

<case>.in (whitespace separated):
    kind dtype            kind: bce | focal | asl | softf1_macro | softf1_micro
    key value ... end     parameters of the loss
    N C
    N*C logits, N*C targets, N*C (or C, or 1) output weights v, [C pos_weight if given]
<case>.out:
    number of loss values K, K loss values (reduction none), N*C values of d(sum(v*loss))/dlogits

References (independent of the C++ code under test):
- focal: torchvision.ops.sigmoid_focal_loss, in the case's dtype.
- bce:   torch.nn.functional.binary_cross_entropy_with_logits(pos_weight=...), in the case's dtype.
- asl:   the formula of Ridnik et al. (ICCV 2021), eq. (1)-(4) with the probability shifting
         p_m = max(p - m, 0), logs clamped at eps as in the authors' code; float64.
- softf1: 1 - 2TP/(2TP+FP+FN+eps) with TP=sum p*y, FP=sum p*(1-y), FN=sum (1-p)*y; float64.
"""

import torch
import torch.nn.functional as F
import torchvision

import case_files  # tests/python, beside this script


def asl_paper(x, y, gamma_neg, gamma_pos, clip, eps):
    p = torch.sigmoid(x)
    p_m = torch.clamp(p - clip, min=0.0) if clip > 0 else p       # probability shifting
    l_pos = (1.0 - p) ** gamma_pos * torch.log(torch.clamp(p, min=eps))
    l_neg = p_m ** gamma_neg * torch.log(torch.clamp(1.0 - p_m, min=eps))
    return -(y * l_pos + (1.0 - y) * l_neg)


def soft_f1(x, y, micro, eps):
    p = torch.sigmoid(x)
    dims = (0, 1) if micro else (0,)
    tp = (p * y).sum(dim=dims)
    fp = (p * (1.0 - y)).sum(dim=dims)
    fn = ((1.0 - p) * y).sum(dim=dims)
    return (1.0 - 2.0 * tp / (2.0 * tp + fp + fn + eps)).reshape(-1)


def run_case(path_in, path_out):
    tok = open(path_in).read().split()
    kind, dtype_name = tok[0], tok[1]
    i = 2
    params = {}
    while tok[i] != "end":
        params[tok[i]] = float(tok[i + 1])
        i += 2
    i += 1
    n, c = int(tok[i]), int(tok[i + 1])
    i += 2
    vals = [float(v) for v in tok[i:]]
    x = torch.tensor(vals[: n * c], dtype=torch.float64).reshape(n, c)
    y = torch.tensor(vals[n * c: 2 * n * c], dtype=torch.float64).reshape(n, c)
    rest = vals[2 * n * c:]

    # The C++ side wrote float32 values exactly (9 digits); torchvision/bce run in that dtype.
    dtype = torch.float32 if dtype_name == "float32" else torch.float64
    if kind in ("focal", "bce"):
        x = x.to(dtype)
        y = y.to(dtype)
    x.requires_grad_(True)
    if kind == "focal":
        loss = torchvision.ops.sigmoid_focal_loss(
            x, y, alpha=params["alpha"], gamma=params["gamma"], reduction="none").reshape(-1)
    elif kind == "bce":
        pw = None
        if params.get("pos_weight", 0) > 0:
            pw = torch.tensor(rest[n * c:], dtype=dtype)
        loss = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none").reshape(-1)
    elif kind == "asl":
        loss = asl_paper(x, y, params["gamma_neg"], params["gamma_pos"], params["clip"],
                         params["eps"]).reshape(-1)
    elif kind in ("softf1_macro", "softf1_micro"):
        loss = soft_f1(x, y, kind == "softf1_micro", params["eps"])
    else:
        raise SystemExit("unknown kind " + kind)
    k = loss.numel()
    v = torch.tensor(rest[:k], dtype=loss.dtype)
    (grad,) = torch.autograd.grad((v * loss).sum(), x)
    with open(path_out, "w") as f:
        f.write("%d\n" % k)
        f.write(" ".join("%.17g" % a for a in loss.detach().double().tolist()) + "\n")
        f.write(" ".join("%.17g" % a for a in grad.double().reshape(-1).tolist()) + "\n")


if __name__ == "__main__":
    case_files.run_folder(run_case)
