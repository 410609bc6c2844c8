"""Python side of benchmarks/train_step: torchvision mobilenet_v2 on the same torch.

  python_baseline.py BATCH SIZE THREADS STEPS LATENCY_RUNS AMP(0/1) DEVICE
Prints 'train_img_per_s X' and 'latency_ms Y'.
"""
import sys
import time

import torch
import torchvision


def main(batch, size, threads, steps, runs, amp, device):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = torchvision.models.mobilenet_v2(num_classes=80).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.cuda.amp.GradScaler(enabled=amp and dev.type == "cuda")
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch, 80, device=dev) > 0.9).float()
    ac_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16

    def step():
        opt.zero_grad()
        with torch.autocast(dev.type, dtype=ac_dtype, enabled=amp):
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    model.train()
    for _ in range(2):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    print("train_img_per_s %.3f" % (batch * steps / (time.perf_counter() - t)))

    model.eval()
    one = x[:1].clone()
    with torch.no_grad():
        for _ in range(3):
            model(one)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            model(one)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    times.sort()
    print("latency_ms %.3f" % (1000 * times[len(times) // 2]))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), a[5] == "1", a[6])
