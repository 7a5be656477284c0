"""Throughput of ``detect_batch`` on 32 same-size frames, images/s per engine.

    python bench/batch_throughput.py [--models ulfd-rfb-320 rfb-lm]
        [--engines onnxruntime inference dygraph] [--threads 2] [--batch-sizes 1 8 32]
        [--size 1280x720] [--repeats 5]

The frames are the shared photos resized to --size (26 photos, the first 6 again to make
32), as frames of one video would be. Batch size 1 is a ``detect()`` loop; the others run
``detect_batch(frames, batch_size=B)``, whose results equal one-by-one detection. Each
(model, engine, threads) runs in its own process; the fastest of --repeats passes over the
32 frames is kept (preprocessing, network and post-processing included, decoding not).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def frames(size, n=32):
    import cv2

    from paddleface.image_io import read_image
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    photos = sorted((shared / "images").glob("*.jpg"))
    return [cv2.resize(read_image(photos[i % len(photos)]), size) for i in range(n)]


def worker(model, engine, threads, batch_sizes, size, repeats):
    from paddleface.detector import FaceDetector
    det = FaceDetector(model, device="cpu", engine=engine, threads=threads)
    images = frames(size)
    out = {}
    for bs in batch_sizes:
        def run():
            if bs == 1:
                return [det.detect(im) for im in images]
            return det.detect_batch(images, batch_size=bs)
        run()  # warm-up (and the engine's first-batch-size setup)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
        out[str(bs)] = len(images) / best
    print(json.dumps(out))


def main():
    from paddleface.cli import parse_size
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["ulfd-rfb-320", "rfb-lm"])
    ap.add_argument("--engines", nargs="+", default=["onnxruntime", "inference", "dygraph"])
    ap.add_argument("--threads", nargs="+", type=int, default=[2])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--size", type=parse_size, default=(1280, 720))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "ENGINE", "THREADS"))
    args = ap.parse_args()
    if args.worker:
        m, e, t = args.worker
        return worker(m, e, int(t), args.batch_sizes, args.size, args.repeats)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 32 frames "
          f"of {args.size[0]}x{args.size[1]}")
    print(f"{'model':14} {'engine':12} {'thr':>3} " +
          " ".join(f"{'batch ' + str(b):>9}" for b in args.batch_sizes) + "   (images/s)")
    for model in args.models:
        for threads in args.threads:
            for engine in args.engines:
                r = subprocess.run([sys.executable, __file__, "--worker", model, engine,
                                    str(threads), "--size", f"{args.size[0]}x{args.size[1]}",
                                    "--repeats", str(args.repeats), "--batch-sizes",
                                    *map(str, args.batch_sizes)], capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"{model:14} {engine:12} {threads:>3}   failed: {r.stderr.strip()[-300:]}")
                    continue
                res = json.loads(r.stdout.strip().splitlines()[-1])
                print(f"{model:14} {engine:12} {threads:>3} " +
                      " ".join(f"{res[str(b)]:9.1f}" for b in args.batch_sizes), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
