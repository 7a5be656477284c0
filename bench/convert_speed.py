"""Speed of data/wider_face_2_voc_add_landmark.py on the labelled val-subset images.

    python bench/convert_speed.py [--workers 2] [--repeat 3]

Upstream baseline measured on this machine: 26 images/s (487 images in 18.8 s, 1 process).
Prints images/s per run and the peak memory of the converting processes.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import subset_label  # noqa: E402


def main():
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'run':>3} {'images':>6} {'seconds':>8} {'images/s':>9} {'x upstream':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        label = subset_label(Path(tmp) / "label.txt")
        n = sum(1 for l in label.read_text().splitlines() if l.startswith("#"))
        for i in range(args.repeat):
            out = Path(tmp) / f"voc{i}"
            t = time.time()
            subprocess.run([sys.executable, str(ROOT / "data/wider_face_2_voc_add_landmark.py"),
                            "--quiet", "--sets", "val", "--images",
                            f"val={shared / 'widerface/val/images'}", "--label", f"val={label}",
                            "--out", str(out), "--workers", str(args.workers)],
                           check=True, stdout=subprocess.DEVNULL)
            dt = time.time() - t
            print(f"{i + 1:3d} {n:6d} {dt:8.2f} {n / dt:9.1f} {n / dt / 26:10.1f}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory of one converting process: {peak:.0f} MB (whole command, interpreter start included)")


if __name__ == "__main__":
    main()
