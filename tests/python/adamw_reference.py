"""torch.optim.AdamW of this stack's Python on the tensors a C++ test wrote: the parameter after
each step, as float.hex per line (exact).
  adamw_reference.py IN.pt OUT.txt   IN.pt: {"param": p0, "g0": g0, "g1": g1, ...} (torch::pickle_save)"""
import sys

import torch

import torch_files  # LibTorch-written files, weights only

data = torch_files.load(sys.argv[1])
p = data["param"].clone().requires_grad_()
opt = torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
with open(sys.argv[2], "w") as out:
    for g in [data["g%d" % i] for i in range(len(data) - 1)]:
        p.grad = g.clone()
        opt.step()
        out.write(" ".join(float(v).hex() for v in p.detach().flatten().tolist()) + "\n")
