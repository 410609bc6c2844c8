"""Python side of benchmarks/train_step: torchvision mobilenet_v2 on the same torch, served
round by round to the harness (benchmarks/bench_child.py).

  python_baseline.py BATCH SIZE STEPS LATENCY_RUNS AMP(0/1) DEVICE
Commands:
  train              -> train_img_per_s (STEPS timed AdamW steps, channels-last)
  train_compile      -> train_img_per_s of the same step with the model through torch.compile
                        (inductor, its default mode; compiled at start-up, so no round pays
                        for it); -1 where torch has no compile (1.13)
  latency BATCH RUNS -> eager_ms, frozen_ms: median forward time of torchvision's model in
                        torch.inference_mode, channels-last, eager and after
                        torch.jit.freeze + torch.jit.optimize_for_inference (BN folded,
                        MKL-DNN layouts), on a BATCH x 3 x SIZE x SIZE input
"""
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench_child  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402


def main(batch, size, steps, runs, amp, device):
    torch.manual_seed(0)
    dev = torch.device(device)
    model = torchvision.models.mobilenet_v2(num_classes=80).to(dev).to(
        memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    use_scaler = amp and dev.type == "cuda"

    def make_scaler():
        if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):  # 2.3+; torch.cuda.amp's is deprecated
            return torch.amp.GradScaler("cuda", enabled=use_scaler)
        return torch.cuda.amp.GradScaler(enabled=use_scaler)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch, 80, device=dev) > 0.9).float()
    ac_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def make_step(net, optimizer):
        scaler = make_scaler()

        def step():
            optimizer.zero_grad()
            with torch.autocast(dev.type, dtype=ac_dtype, enabled=amp):
                logits = net(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return step

    step = make_step(model, opt)
    model.train()
    for _ in range(2):
        step()
    sync()

    def timed(fn):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        return {"train_img_per_s": batch * steps / (time.perf_counter() - t)}

    def train():
        model.train()
        return timed(step)

    # The torch.compile side trains its own copy of the model, with its own optimizer, so the
    # eager side is not changed by it. Compiling takes minutes on 2 cores: done here, before round 1.
    compiled_step = None
    if hasattr(torch, "compile"):
        twin = copy.deepcopy(model)
        twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-3)
        twin.train()
        compiled_step = make_step(torch.compile(twin), twin_opt)
        for _ in range(3):
            compiled_step()
        sync()

    def train_compile():
        if compiled_step is None:
            return {"train_img_per_s": -1}
        return timed(compiled_step)

    frozen = {}

    def median_ms(fn, inp, n):
        for _ in range(3):
            fn(inp)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn(inp)
            sync()
            times.append(time.perf_counter() - t)
        times.sort()
        return 1000 * times[len(times) // 2]

    def latency(b, n):
        b, n = int(b), int(n)
        model.eval()
        inp = torch.randn(b, 3, size, size, device=dev).contiguous(
            memory_format=torch.channels_last)
        with torch.inference_mode():
            eager = median_ms(model, inp, n)
        if b not in frozen:  # traced once per batch, after training, with the trained weights
            with torch.no_grad():
                traced = torch.jit.trace(model, inp)
                frozen[b] = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        with torch.no_grad():
            fast = median_ms(frozen[b], inp, n)
        return {"eager_ms": eager, "frozen_ms": fast}

    bench_child.serve({"train": train, "train_compile": train_compile, "latency": latency},
                      extra_info={"torch_compile": "yes" if compiled_step else "absent"})


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4] == "1", a[5])
