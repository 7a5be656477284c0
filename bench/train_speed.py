"""Training throughput (images/s) of tools/train.py's loop on the converted val subset.

    python bench/train_speed.py [--model ulfd-rfb-320] [--batch-size 24] [--workers 2] [--profile]

Builds the VOC tree of the 487 labelled subset images with the converter, then prints
steady-state images/s (10 iterations after 2 warm-up ones) and images/s over one whole epoch
with the loader start-up. Upstream PyTorch on this machine (RFB-320, batch 24, 2 workers):
about 45 images/s steady, about 30 images/s over the 486-image epoch. ``--profile`` also
prints Paddle's operator summary of 3 model steps (where the step time goes).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def profile_steps(trainer, batch, steps=3):
    import paddle.profiler as profiler
    # on_trace_ready: no chrome trace written into the working directory
    p = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda prof: None)
    p.start()
    for _ in range(steps):
        total, _ = trainer._loss(batch)
        total.backward()
        trainer.optimizer.step()
        trainer.optimizer.clear_grad()
        p.step()
    p.stop()
    p.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False,
              time_unit="ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ulfd-rfb-320")
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    from common import convert_subset
    from paddleface.training.trainer import TrainConfig, Trainer
    with tempfile.TemporaryDirectory() as tmp:
        convert_subset(Path(tmp))
        cfg = TrainConfig(model=args.model, data_root=f"{tmp}/voc", split="test",
                          output_dir=f"{tmp}/out", epochs=1, batch_size=args.batch_size,
                          workers=args.workers, val_every=0, save_every=0)
        trainer = Trainer(cfg)
        # steady state: time iterations 3..12 of an epoch
        loader = trainer._loader(0)
        trainer.net.train()
        times = []
        for i, batch in enumerate(loader):
            t = time.time()
            total, _ = trainer._loss(batch)
            total.backward()
            trainer.optimizer.step()
            trainer.optimizer.clear_grad()
            times.append((time.time(), t))
            if i == 12:
                break
        steady = (times[-1][0] - times[2][0]) / 10
        if args.profile:
            profile_steps(trainer, batch)
        t0 = time.time()
        n = len(Trainer(cfg).train_set)
        trainer2 = Trainer(cfg)
        trainer2.train()
        epoch = time.time() - t0
    print(f"{'model':14} {'batch':>5} {'workers':>7} {'steady img/s':>12} {'epoch img/s':>11}")
    print(f"{args.model:14} {args.batch_size:5d} {args.workers:7d} "
          f"{args.batch_size / steady:12.1f} {n / epoch:11.1f}")


if __name__ == "__main__":
    main()
