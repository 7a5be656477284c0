"""Depthwise 3x3 convolution, forward + backward, in the formulations tried for training speed.

    python bench/depthwise_speed.py [--batch 24] [--steps 10]

The shapes are the depthwise layers of ULFD RFB-320 that dominate a training step's time
(C channels at H x W, stride 1). Each formulation runs in its own process at 1 thread; the
figure is CPU milliseconds per forward + backward (median), which other load on the machine
moves less than wall time. Formulations:
- paddle conv2d: nn.functional.conv2d(groups=C), what the networks use (im2col + GEMM per
  channel in dygraph on CPU);
- paddle shift-add: the sum over the 9 taps of a shifted input slice times a per-channel
  weight, built from elementwise ops;
- paddle NHWC: conv2d with data_format="NHWC" on an NHWC input;
- torch conv2d: PyTorch's CPU kernel, the reference.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SHAPES = [(16, 120, 160), (32, 60, 80), (64, 30, 40), (128, 15, 20)]
KINDS = ["paddle conv2d", "paddle shift-add", "paddle NHWC", "torch conv2d"]


def paddle_shift_add(x, w):
    import paddle
    import paddle.nn.functional as F
    h, wd = x.shape[2], x.shape[3]
    xp = F.pad(x, [1, 1, 1, 1])
    out = None
    for dy in range(3):
        for dx in range(3):
            tap = xp[:, :, dy:dy + h, dx:dx + wd] * w[:, :, dy, dx].reshape([1, -1, 1, 1])
            out = tap if out is None else out + tap
    return out


def measure(kind, c, h, w, batch, steps):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    k = (rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32)
    times = []
    if kind.startswith("torch"):
        import torch
        torch.set_num_threads(1)
        xt = torch.tensor(x, requires_grad=True)
        kt = torch.tensor(k, requires_grad=True)
        for _ in range(steps):
            t = time.process_time()
            y = torch.nn.functional.conv2d(xt, kt, padding=1, groups=c)
            y.sum().backward()
            times.append(time.process_time() - t)
    else:
        import paddle
        import paddle.nn.functional as F
        nhwc = kind.endswith("NHWC")
        xt = paddle.to_tensor(x.transpose(0, 2, 3, 1).copy() if nhwc else x, stop_gradient=False)
        kt = paddle.to_tensor(k, stop_gradient=False)
        for _ in range(steps):
            t = time.process_time()
            if kind == "paddle shift-add":
                y = paddle_shift_add(xt, kt)
            else:
                y = F.conv2d(xt, kt, padding=1, groups=c, data_format="NHWC" if nhwc else "NCHW")
            y.sum().backward()
            xt.clear_gradient()
            kt.clear_gradient()
            times.append(time.process_time() - t)
    return float(np.median(times[2:])) * 1000


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        kind, c, h, w = json.loads(args.one)
        print(json.dumps(measure(kind, c, h, w, args.batch, args.steps)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    print(f"depthwise 3x3, stride 1, batch {args.batch}, forward + backward, CPU ms (1 thread)")
    print("C x H x W | " + " | ".join(KINDS))
    for c, h, w in SHAPES:
        row = []
        for kind in KINDS:
            r = subprocess.run([sys.executable, __file__, "--one", json.dumps([kind, c, h, w]),
                                "--batch", str(args.batch), "--steps", str(args.steps)],
                               capture_output=True, text=True, env=env)
            row.append(f"{float(r.stdout.strip().splitlines()[-1]):.1f}" if r.returncode == 0
                       else "failed")
        print(f"{c} x {h} x {w} | " + " | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
