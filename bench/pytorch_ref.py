#!/usr/bin/env python3
"""PyTorch anchor for `pix2pix bench`: the reference pix2pix (UNet generator, patch16 discriminator,
instance norm) trained with the same step on the same CPU threads, so our/PyTorch ratios compare
like with like; with --device cuda the same step on the NVIDIA GPU, the anchor for the WebGPU backend
(FP32 throughout, as WebGPU computes: TF32 off).

Prints one JSON line per measured configuration:
  {"backend": "pytorch", "kind": "train"|"infer", "batch": B, "ms_per_image": ..., ...}
Each configuration should run in its own process (the bench does so), so ru_maxrss is its peak RSS.
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn


class Down(nn.Module):
    def __init__(self, cin, cout, norm=True, dropout=False):
        super().__init__()
        layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2))
        if dropout:
            layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Up(nn.Module):
    def __init__(self, cin, cout, dropout=False):
        super().__init__()
        layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.01)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x, skip):
        return torch.cat((self.model(x), skip), 1)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = Down(3, 64, norm=False)
        self.d2 = Down(64, 128)
        self.d3 = Down(128, 256)
        self.d4 = Down(256, 512, dropout=True)
        self.d5 = Down(512, 512, dropout=True)
        self.d6 = Down(512, 512, dropout=True)
        self.d7 = Down(512, 512, dropout=True)
        self.d8 = Down(512, 512, norm=False, dropout=True)
        self.u1 = Up(512, 512, dropout=True)
        self.u2 = Up(1024, 512, dropout=True)
        self.u3 = Up(1024, 512, dropout=True)
        self.u4 = Up(1024, 512, dropout=True)
        self.u5 = Up(1024, 256)
        self.u6 = Up(512, 128)
        self.u7 = Up(256, 64)
        self.final = nn.Sequential(nn.ConvTranspose2d(128, 3, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        d1 = self.d1(x)
        d2 = self.d2(d1)
        d3 = self.d3(d2)
        d4 = self.d4(d3)
        d5 = self.d5(d4)
        d6 = self.d6(d5)
        d7 = self.d7(d6)
        d8 = self.d8(d7)
        u = self.u1(d8, d7)
        u = self.u2(u, d6)
        u = self.u3(u, d5)
        u = self.u4(u, d4)
        u = self.u5(u, d3)
        u = self.u6(u, d2)
        u = self.u7(u, d1)
        return self.final(u)


class Discriminator(nn.Module):
    """patch16: 3x3 stride-2 convs with bias, a 16x16 logit map at 256."""

    def __init__(self):
        super().__init__()

        def block(cin, cout, norm=True):
            layers = [nn.Conv2d(cin, cout, 3, 2, 1)]
            if norm:
                layers.append(nn.InstanceNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            return layers

        self.model = nn.Sequential(
            *block(6, 64, norm=False), *block(64, 128), *block(128, 256), *block(256, 512), nn.Conv2d(512, 1, 3, 1, 1)
        )

    def forward(self, img, cond):
        return self.model(torch.cat((img, cond), 1))


def set_requires_grad(model, flag):
    for p in model.parameters():
        p.requires_grad_(flag)


def make_step(G, D, opt_g, opt_d):
    bce = nn.BCEWithLogitsLoss()
    l1 = nn.L1Loss()

    def step(a, b):
        fake = G(a)
        # D's weights need no gradient in the G update (pix2pix's set_requires_grad(D, False)).
        set_requires_grad(D, False)
        pred_fake = D(fake, a)
        loss_g = bce(pred_fake, torch.ones_like(pred_fake)) + 100.0 * l1(fake, b)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        set_requires_grad(D, True)
        pred_real = D(b, a)
        pred_fake = D(fake.detach(), a)
        loss_d = (bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake))) / 2
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return loss_g.item(), loss_d.item()

    return step


def openblas_core():
    """The kernel set OpenBLAS picked for this CPU (OPENBLAS_CORETYPE, else its own detection), or
    None where this torch loaded no OpenBLAS. Debian's torch does its GEMMs (convolutions included)
    in the system BLAS."""
    import ctypes

    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]})
    for lib in libs:
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return None


def timed(fn, reps, sync=lambda: None):
    """Wall time of each of `reps` runs of fn; `sync` waits for the device (CUDA runs asynchronously: a
    step's time is only its own once the GPU has finished it, and none of the previous step's)."""
    times = []
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--memory-format", choices=["auto", "contiguous", "channels_last"], default="auto")
    ap.add_argument("--blas-core", action="store_true", help="print OpenBLAS's kernel set and exit")
    args = ap.parse_args()
    if args.blas_core:
        torch.zeros(2, 2) @ torch.zeros(2, 2)
        print(openblas_core() or "none")
        return

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False: this torch has no CUDA GPU"}))
        sys.exit(1)
    if cuda:
        # FP32 arithmetic, as tfjs's WebGPU shaders do: cuDNN's convolutions default to TF32 on Ampere
        # and later, which would time a cheaper step than ours. cuDNN picks its fastest FP32 algorithms.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else lambda: None
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = Generator().to(args.device)
    D = Discriminator().to(args.device)
    a = (torch.rand(args.batch, 3, args.size, args.size) * 2 - 1).to(args.device)
    b = (torch.rand(args.batch, 3, args.size, args.size) * 2 - 1).to(args.device)

    def prepare(fmt):
        mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        G.to(memory_format=mf)
        D.to(memory_format=mf)
        return a.contiguous(memory_format=mf), b.contiguous(memory_format=mf)

    if args.kind == "train":
        G.train()
        D.train()
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        step = make_step(G, D, opt_g, opt_d)

        def runner(x, y):
            return lambda: step(x, y)

    else:
        G.eval()

        def runner(x, _y):
            def infer():
                with torch.no_grad():
                    G(x)

            return infer

    formats = ["contiguous", "channels_last"] if args.memory_format == "auto" else [args.memory_format]
    chosen, probe = formats[0], {}
    if len(formats) > 1:
        # PyTorch at its best: one warm-up and one timed run in each layout, keep the faster.
        for fmt in formats:
            x, y = prepare(fmt)
            fn = runner(x, y)
            fn()
            probe[fmt] = min(timed(fn, 1, sync))
        chosen = min(probe, key=probe.get)
    x, y = prepare(chosen)
    fn = runner(x, y)
    for _ in range(args.warmup):
        fn()
    times = timed(fn, args.reps, sync)
    med = statistics.median(times)
    out = {
        "backend": "pytorch",
        "kind": args.kind,
        "batch": args.batch,
        "ms_per_image": med * 1000 / args.batch,
        "ms_per_step": med * 1000,
        "times_ms": [t * 1000 for t in times],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "memory_format": chosen,
        "format_probe_ms": {k: v * 1000 for k, v in probe.items()},
        "torch": torch.__version__,
        "device": args.device,
    }
    if cuda:
        out["gpu"] = torch.cuda.get_device_name()
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["blas_core"] = openblas_core()
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
