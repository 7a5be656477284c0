"""A short from-scratch training run of each LightWeightFaceDetector backbone on the WIDER val
subset (no checkpoints are published): mean loss of the first and last iterations.

    python bench/lwfd_learning.py [--iters 60] [--batch-size 8] [--size 320]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def main():
    from common import convert_subset
    from paddleface.training.trainer import TrainConfig, Trainer
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["lwfd-mnv2-0.1", "lwfd-mnv3-small", "lwfd-effnet-b0"])
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--size", type=int, default=320)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        convert_subset(Path(tmp))
        print(f"{'model':16} {'iters':>5} {'loss first 10':>13} {'loss last 10':>12} {'img/s':>6}")
        for m in args.models:
            cfg = TrainConfig(model=m, data_root=f"{tmp}/voc", split="test", output_dir=f"{tmp}/{m}",
                              epochs=100, batch_size=args.batch_size, input_size=(args.size, args.size),
                              max_iters=args.iters, val_every=0, save_every=0, workers=2)
            t0 = time.time()
            losses = [l for h in Trainer(cfg).train()["history"] for l in h["losses"]]
            rate = len(losses) * args.batch_size / (time.time() - t0)
            print(f"{m:16} {len(losses):5d} {np.mean(losses[:10]):13.3f} {np.mean(losses[-10:]):12.3f} {rate:6.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
