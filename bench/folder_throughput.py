"""Images per second of ``paddleface detect DIR --workers N`` beside N x one engine's rate.

    python bench/folder_throughput.py [--model ulfd-rfb-320] [--images 1000] [--workers 1 2]
        [--rounds 2]

The folder: ``--images`` JPEG photos made from the shared images (each a shared photo,
flipped and/or scaled by a seeded choice, re-encoded so that every file differs), written
once to a scratch folder. For each N the whole job runs (``run_folder_job`` into a fresh
results folder: decode thread, engine, JSON writing) and the rate counts from the first
finished photo to the last, so the workers' start-up (imports, model load) is left out and
printed apart. The bound is N x the single-process engine rate: ``FaceDetector.detect`` on
photos already decoded, in this process, with the engine threads a job's worker gets
(cores // N: 2 for one process here, 1 for two). The rounds interleave the N
values (and the bound) so a load change on the shared machine hits each alike; the best
round of each is kept. The load average is printed. Decoding (one thread, alone) is timed
too: the photos must be decoded by the same cores, so the last line gives the ceiling that
decoding leaves, cores / (detect time + decode time) per photo.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(dest: Path, n: int, shared: Path) -> None:
    """``n`` distinct JPEGs from the shared photos (seeded flips and scales)."""
    import cv2
    import numpy as np
    from paddleface.image_io import read_image
    sources = [read_image(str(p)) for p in sorted((shared / "images").glob("*.jpg"))]
    rng = np.random.default_rng(0)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = sources[i % len(sources)]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        s = float(rng.uniform(0.6, 1.0))
        img = cv2.resize(np.ascontiguousarray(img), None, fx=s, fy=s,
                         interpolation=cv2.INTER_AREA)
        sub = dest / f"part{i // 250}"
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"photo{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def engine_rate(model: str, folder: Path, threads: int, limit: int = 200) -> float:
    """Photos per second of detect() alone (decoded photos, ``threads`` engine threads as a
    job's worker has them): one process's bound."""
    from paddleface.detector import FaceDetector
    from paddleface.image_io import read_image
    det = FaceDetector(model, device="cpu", threads=threads)
    photos = [read_image(str(p)) for p in sorted(folder.rglob("*.jpg"))[:limit]]
    for im in photos[:10]:
        det.detect(im)
    t0 = time.perf_counter()
    for im in photos:
        det.detect(im)
    return len(photos) / (time.perf_counter() - t0)


def decode_rate(folder: Path, limit: int = 200) -> float:
    """Photos per second of decoding alone (``read_image``, one thread)."""
    from paddleface.image_io import read_image
    paths = sorted(folder.rglob("*.jpg"))[:limit]
    t0 = time.perf_counter()
    for p in paths:
        read_image(str(p))
    return len(paths) / (time.perf_counter() - t0)


def job_rate(model: str, folder: Path, workers: int):
    """(images/s from the first result to the last, seconds before the first result)."""
    from paddleface.batch.job import run_folder_job
    out = Path(tempfile.mkdtemp(prefix="fthr"))
    try:
        t0 = time.perf_counter()
        c = run_folder_job([str(folder)], str(out), {"model": model, "device": "cpu"},
                           workers=workers, progress=False)
        total = time.perf_counter() - t0
        if c["failed"]:
            raise SystemExit(f"{c['failed']} photos failed")
        return (c["done"] - 1) / c["seconds"], total - c["seconds"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ulfd-rfb-320")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--folder", help="reuse (or make) the photo folder here")
    args = ap.parse_args()
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    tmp = tempfile.mkdtemp(prefix="fthr-photos")
    folder = Path(args.folder) if args.folder else Path(tmp) / "photos"
    try:
        if len(list(folder.rglob("*.jpg"))) != args.images:
            shutil.rmtree(folder, ignore_errors=True)
            make_folder(folder, args.images, shared)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"{args.model}, {args.images} photos")
        from paddleface.batch.job import worker_threads
        best = {}
        threads = sorted({worker_threads(n, None) for n in args.workers})
        for rnd in range(args.rounds):
            order = [f"engine@{t}" for t in threads] + ["decode"] + list(args.workers)
            order = order[rnd % len(order):] + order[:rnd % len(order)]
            for what in order:
                if what == "decode":
                    r = decode_rate(folder)
                    best["decode"] = max(best.get("decode", 0), r)
                elif isinstance(what, str):
                    r = engine_rate(args.model, folder, int(what.split("@")[1]))
                    best[what] = max(best.get(what, 0), r)
                else:
                    r, startup = job_rate(args.model, folder, what)
                    if r > best.get(what, (0, 0))[0]:
                        best[what] = (r, startup)
                print(f"  round {rnd + 1}: {what}: {r:.1f} images/s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"\n{'processes':>9} {'threads':>7} {'images/s':>9} {'start-up s':>10} "
              f"{'N x engine':>10} {'ratio':>6}")
        for n in args.workers:
            r, startup = best[n]
            t = worker_threads(n, None)
            one = best[f"engine@{t}"]
            print(f"{n:9d} {t:7d} {r:9.1f} {startup:10.1f} {n * one:10.1f} {r / (n * one):6.2f}")
        cores = os.cpu_count() or 1
        per_photo = 1 / best["engine@1"] + 1 / best["decode"]
        print(f"decoding alone: {best['decode']:.1f} photos/s; a photo costs "
              f"{1000 / best['engine@1']:.2f} ms of detect() + {1000 / best['decode']:.2f} ms "
              f"of decoding, so {cores} cores can do at most {cores / per_photo:.1f} photos/s "
              f"({cores / per_photo / (cores * best['engine@1']):.2f} of {cores} x engine)")
        for t in threads:
            print(f"engine alone (1 process, {t} thread(s), decoded photos): "
                  f"{best[f'engine@{t}']:.1f} images/s")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
