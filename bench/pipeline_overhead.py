"""What the detection pipeline adds to the network time (issue: at most 1 ms for ulfd-rfb-320).

    python bench/pipeline_overhead.py [--models ulfd-rfb-320 rfb-lm] [--runs 100]

Per model, over the shared photos: the network alone on a prepared input, preprocessing
(resize + normalise), post-processing (threshold, decode, NMS, scaling) and the whole
``FaceDetector.detect`` call; medians in ms.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.detector import FaceDetector  # noqa: E402
from paddleface.image_io import read_image  # noqa: E402
from paddleface.postprocess import postprocess  # noqa: E402


def median_ms(fn, runs):
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["ulfd-rfb-320", "ulfd-slim-320", "rfb-lm"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    shared = Path(os.environ.get("PADDLEFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    images = [read_image(p) for p in sorted((shared / "images").glob("*.jpg"))]
    print(f"{'model':16} {'engine':10} {'network':>8} {'pre':>6} {'post':>6} {'detect':>7} "
          f"{'added':>6}   (ms, median over {len(images)} photos x {args.runs} runs)")
    for model in args.models:
        det = FaceDetector(model, device="cpu", engine=args.engine, threads=args.threads)
        rec = det.record
        net, pre, post, total, added = [], [], [], [], []
        for img in images:
            p = det.prepare(img)
            x = p.tensor[None]
            # network alone and whole detect() interleaved, so machine noise hits both alike
            n_t, d_t = [], []
            for i in range(max(10, args.runs // 5)):
                t0 = time.perf_counter()
                det.forward(x)
                t1 = time.perf_counter()
                det.detect(img)
                t2 = time.perf_counter()
                n_t.append((t1 - t0) * 1000)
                d_t.append((t2 - t1) * 1000)
            net.append(statistics.median(n_t))
            total.append(statistics.median(d_t))
            added.append(statistics.median([d - n for d, n in zip(d_t, n_t)]))
            pre.append(median_ms(lambda: det.prepare(img), args.runs))
            loc, conf, lm = det.forward(x)
            pri = rec.priors(*p.tensor.shape[1:])
            post.append(median_ms(lambda: postprocess(loc[0], conf[0], None if lm is None else lm[0],
                                                       pri, rec.priors.variances, det.protocol,
                                                       p.to_pixels), args.runs))
        m = statistics.median
        print(f"{model:16} {det.engine.name:10} {m(net):8.2f} {m(pre):6.2f} {m(post):6.2f} "
              f"{m(total):7.2f} {m(added):6.2f}")


if __name__ == "__main__":
    main()
