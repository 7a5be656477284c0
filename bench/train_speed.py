"""Training-step throughput, PaddleFace's trainer step beside a PyTorch step of the same network.

    python bench/train_speed.py [--threads 1,2] [--steps 12] [--rounds 3] [--profile] [--epoch]

One training step = forward, multibox loss, backward, SGD (momentum, weight decay) for ULFD
RFB-320 on one batch of 24 real augmented images at 320x240 (the converted val subset).
Each framework runs in its own process, with the same batch and the same initial weights
(the upstream init.pth, through the x2paddle import for Paddle, strict load for torch);
rounds alternate between the two and the best round counts (this VM varies by +-30%).
Paddle runs paddleface.training.step.train_step, the function tools/train.py runs; the torch
side is bench/torch_ulfd.py (this project's own PyTorch version of the step, not the
upstream code). ``--profile`` prints Paddle's operator summary of 3 steps; ``--epoch`` also
times one whole epoch of tools/train.py's loop (data loading included).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_batch(path: Path, batch: int) -> None:
    """``batch`` augmented images of the converted subset and their targets, saved as npz."""
    from bench.common import convert_subset
    from paddleface.datasets.voc import VOCFaceDataset
    from paddleface.registry import get_record
    from paddleface.training.trainer import TrainSet
    rec = get_record("ulfd-rfb-320")
    convert_subset(path.parent)
    ts = TrainSet(VOCFaceDataset(path.parent / "voc", "test"), rec, rec.train.input_size, 0)
    items = [ts[i] for i in range(batch)]
    np.savez(path, **{k: np.stack(v) for k, v in zip(("x", "loc_t", "conf_t", "landm_t"), zip(*items))})


def paddle_side(batch_file: str, threads: int, steps: int, profile: bool, variant: str = ""):
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import paddle
    from bench.common import shared_dir
    from paddleface.registry import get_record
    from paddleface.training.step import make_optimizer, train_step
    from paddleface.weights import load_weights, resolve_weights
    paddle.set_device("cpu")
    rec = get_record("ulfd-rfb-320")
    net = rec.build()
    init = shared_dir() / "reference/train/replay_ulfd_rfb320/init.pth"
    load_weights(net, resolve_weights(rec, str(init)), rec)
    net.train()
    if variant == "to_static":  # the forward as a static graph (backward stays dygraph's)
        net = paddle.jit.to_static(net, full_graph=True)
    elif variant == "onednn":  # ask for oneDNN kernels in dygraph
        paddle.set_flags({"FLAGS_use_mkldnn": True})
    z = np.load(batch_file)
    batch = [paddle.to_tensor(z[k]) for k in ("x", "loc_t", "conf_t", "landm_t")]
    opt = make_optimizer(net, rec, 1e-2)
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        train_step(net, rec, opt, batch)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    if profile:
        import paddle.profiler as profiler
        p = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda prof: None)
        p.start()
        for _ in range(3):
            train_step(net, rec, opt, batch)
            p.step()
        p.stop()
        p.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False,
                  time_unit="ms")
    return float(np.median(times[2:])), float(np.median(cpu[2:]))


def torch_side(batch_file: str, threads: int, steps: int) -> float:
    import torch
    from bench.common import shared_dir
    from bench.torch_ulfd import TorchULFDRFB, multibox_loss
    torch.set_num_threads(threads)
    net = TorchULFDRFB()
    init = shared_dir() / "reference/train/replay_ulfd_rfb320/init.pth"
    net.load_state_dict(torch.load(init, map_location="cpu", weights_only=True), strict=True)
    net.train()
    z = np.load(batch_file)
    x, loc_t = torch.from_numpy(z["x"]), torch.from_numpy(z["loc_t"])
    labels = torch.from_numpy(z["conf_t"]).long()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad()
        conf, loc = net(x)
        reg, cls = multibox_loss(conf, loc, labels, loc_t)
        (reg + cls).backward()
        opt.step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(times[2:])), float(np.median(cpu[2:]))


def run_side(side: str, batch_file: Path, threads: int, steps: int):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, __file__, "--side", side, "--batch-file", str(batch_file),
                        "--threads", str(threads), "--steps", str(steps)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"the {side} side failed:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["seconds"], out["cpu_seconds"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--epoch", action="store_true")
    ap.add_argument("--variants", default="",
                    help="also time Paddle variants: to_static,onednn (comma-separated)")
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--batch-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:  # one measurement in this process
        threads = int(args.threads)
        side, _, variant = args.side.partition(":")
        s, c = (paddle_side(args.batch_file, threads, args.steps, args.profile, variant)
                if side == "paddle" else torch_side(args.batch_file, threads, args.steps))
        print(json.dumps({"seconds": s, "cpu_seconds": c}))
        return 0
    try:
        import torch  # noqa: F401
        sides = ["paddle", "torch"]
    except ImportError:
        print("torch is not installed: Paddle only", file=sys.stderr)
        sides = ["paddle"]
    sides += [f"paddle:{v}" for v in args.variants.split(",") if v]
    with tempfile.TemporaryDirectory() as tmp:
        batch_file = Path(tmp) / "batch.npz"
        make_batch(batch_file, args.batch)
        best, best_cpu = {}, {}
        for rnd in range(args.rounds):
            for threads in (int(t) for t in args.threads.split(",")):
                for side in sides if rnd % 2 == 0 else sides[::-1]:
                    s, c = run_side(side, batch_file, threads, args.steps)
                    best[side, threads] = min(best.get((side, threads), s), s)
                    best_cpu[side, threads] = min(best_cpu.get((side, threads), c), c)
        if args.profile:
            paddle_side(str(batch_file), int(args.threads.split(",")[-1]), 4, True)
        print(f"one training step, ULFD RFB-320, batch {args.batch} at 320x240 "
              f"(best of {args.rounds} rounds, median of {args.steps - 2} steps)")
        print("(images per CPU-second: less sensitive to other load; equals images/s at 1 thread "
              "on a quiet machine)")
        print("threads | PaddleFace images/s | PyTorch images/s | Paddle / torch | "
              "PaddleFace images/CPU-s | PyTorch images/CPU-s | Paddle / torch")
        for threads in (int(t) for t in args.threads.split(",")):
            p, pc = args.batch / best["paddle", threads], args.batch / best_cpu["paddle", threads]
            if ("torch", threads) in best:
                t, tc = args.batch / best["torch", threads], args.batch / best_cpu["torch", threads]
                print(f"{threads} | {p:.1f} | {t:.1f} | {p / t:.2f}x | {pc:.1f} | {tc:.1f} | {pc / tc:.2f}x")
            else:
                print(f"{threads} | {p:.1f} | - | - | {pc:.1f} | - | -")
            for side in sides[2:]:
                v, vc = args.batch / best[side, threads], args.batch / best_cpu[side, threads]
                print(f"{threads} | {side}: {v:.1f} | | {v / t:.2f}x | {vc:.1f} | | {vc / tc:.2f}x"
                      if ("torch", threads) in best else f"{threads} | {side}: {v:.1f}")
        if args.epoch:
            from paddleface.training.trainer import TrainConfig, Trainer
            cfg = TrainConfig(model="ulfd-rfb-320", data_root=f"{tmp}/voc", split="test",
                              output_dir=f"{tmp}/out", epochs=1, batch_size=args.batch,
                              workers=2, val_every=0, save_every=0)
            t0 = time.time()
            trainer = Trainer(cfg)
            trainer.train()
            print(f"one epoch of tools/train.py's loop: {len(trainer.train_set) / (time.time() - t0):.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
