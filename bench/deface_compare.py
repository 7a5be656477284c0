"""PaddleFace ``--anonymize`` beside ``deface`` (PyPI; CenterFace): speed on the same clip, and
the faces each leaves visible on the WIDER val photos of the shared folder.

    python bench/deface_compare.py [--deface-venv /work/venvs/deface] [--model rfb-lm]
        [--frames 60] [--images 488]

deface pulls opencv-python (beside our opencv-python-headless), so it lives in its own venv.
1. Speed: a 1280x720, 25 fps clip with a tone (``make_face_clip``); each tool's command
   (blur, audio kept) is run twice, alternating, the faster run kept: wall time including
   start-up, and frames/s.
2. Misses: a true face (WIDER label, at least 20 px tall) counts as hidden when at least half
   of its box lies inside the regions the tool would blur (PaddleFace: boxes grown by the
   margin 0.2; deface: CenterFace at its default threshold 0.2, boxes scaled by its default
   mask scale 1.3). Printed per face height.
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
SIZE_BINS = ((20, 40), (40, 80), (80, 100000))


def deface_worker(list_file: str) -> None:
    """Run inside the deface venv: CenterFace boxes (x1 y1 x2 y2) scaled as deface masks them."""
    import cv2
    from deface.centerface import CenterFace
    from deface.deface import scale_bb
    cf = CenterFace(in_shape=None, backend="auto")
    out = {}
    for path in Path(list_file).read_text().split("\n"):
        if not path:
            continue
        image = cv2.imread(path)
        dets, _ = cf(image, threshold=0.2)
        out[path] = [list(map(float, scale_bb(*d[:4], 1.3))) for d in dets]
    print(json.dumps(out))


def deface_speed_worker(clip: str, threads: int, scale: str) -> None:
    """Run inside the deface venv: ms per frame of CenterFace + deface's blur on the decoded
    frames of ``clip`` (start-up and decoding excluded), ``scale`` WxH or "full"."""
    import cv2
    import onnxruntime
    from deface.centerface import CenterFace
    from deface.deface import anonymize_frame
    cap, frames = cv2.VideoCapture(clip), []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    in_shape = None if scale == "full" else tuple(int(v) for v in scale.split("x"))
    cf = CenterFace(in_shape=in_shape, backend="onnxrt",
                    override_execution_provider="CPUExecutionProvider")
    # the same session on ONNX Runtime's CPU provider with our thread count
    import deface
    import onnx
    model = cf.dynamicize_shapes(onnx.load(str(Path(deface.__file__).parent / "centerface.onnx")))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    cf.sess = onnxruntime.InferenceSession(model.SerializeToString(), opts,
                                           providers=["CPUExecutionProvider"])
    for f in frames[:3]:
        cf(f, threshold=0.2)
    t0 = time.perf_counter()
    for f in frames:
        dets, _ = cf(f, threshold=0.2)
        anonymize_frame(dets, f, mask_scale=1.3, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
    print(json.dumps({"ms": 1000 * (time.perf_counter() - t0) / len(frames)}))


def wider_truth(shared: Path, limit: int):
    label = (shared / "widerface/val/label.txt").read_text().splitlines()
    subset = set((shared / "widerface/val/subset.txt").read_text().split())
    truth, name = {}, None
    for line in label:
        if line.startswith("#"):
            name = line[1:].strip()
            name = name if name in subset else None
            if name:
                truth[str(shared / "widerface/val/images" / name)] = []
        elif name and line.strip():
            x, y, w, h = map(float, line.split()[:4])
            truth[str(shared / "widerface/val/images" / name)].append([x, y, x + w, y + h])
    return dict(list(truth.items())[:limit])


def covered(box, regions, shape) -> bool:
    h, w = shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return True
    mask = np.zeros((y2 - y1, x2 - x1), bool)
    for r in regions:
        rx1, ry1 = int(np.floor(r[0])) - x1, int(np.floor(r[1])) - y1
        rx2, ry2 = int(np.ceil(r[2])) - x1, int(np.ceil(r[3])) - y1
        mask[max(0, ry1):max(0, ry2), max(0, rx1):max(0, rx2)] = True
    return mask.mean() >= 0.5


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deface-venv", default="/work/venvs/deface")
    p.add_argument("--model", default="rfb-lm")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--images", type=int, default=488)
    p.add_argument("--threads", type=int, default=1, help="per-frame timing: engine threads")
    p.add_argument("--only", choices=["wall", "frame", "misses"], nargs="+",
                   default=["wall", "frame", "misses"])
    p.add_argument("--deface-worker", help=argparse.SUPPRESS)
    p.add_argument("--deface-speed-worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.deface_worker:
        deface_worker(args.deface_worker)
        return 0
    if args.deface_speed_worker:
        clip, threads, scale = args.deface_speed_worker
        deface_speed_worker(clip, int(threads), scale)
        return 0
    import cv2

    from paddleface.detector import FaceDetector
    from paddleface.video.anonymize import face_region
    from paddleface.video.synthetic import make_face_clip
    from paddleface.video.writer import find_ffmpeg
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    venv = Path(args.deface_venv)
    deface_py = venv / "bin" / "python"
    print(f"load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip720.mp4"
        ffmpeg, _ = find_ffmpeg()
        make_face_clip(shared, clip, size=(1280, 720), fps=25.0, frames=args.frames,
                       face_height=140, tone_hz=440.0, ffmpeg=ffmpeg)
        commands = {
            f"paddleface {args.model}": [sys.executable, "-m", "paddleface", "detect", str(clip),
                                         "-m", args.model, "--anonymize", "blur", "--out",
                                         str(tmp / "pf.mp4")],
            "deface (CenterFace)": [str(venv / "bin" / "deface"), str(clip), "-o",
                                    str(tmp / "df.mp4"), "--keep-audio"],
        }
        if "wall" in args.only:
            best = {k: float("inf") for k in commands}
            for _ in range(2):
                for name, cmd in commands.items():
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, capture_output=True,
                                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
                    best[name] = min(best[name], time.perf_counter() - t0)
            print(f"\n1. 1280x720 clip, {args.frames} frames, blur, audio kept (fastest of 2 "
                  "runs, wall time with start-up, default settings of each)")
            for name, s in best.items():
                print(f"   {name:24} {s:6.1f} s  {args.frames / s:5.1f} frames/s")
        if "frame" in args.only:
            from paddleface.video.anonymize import anonymize
            det = FaceDetector(args.model, device="cpu", threads=args.threads)
            frames = []
            cap = cv2.VideoCapture(str(clip))
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                frames.append(image)
            rows = []
            for round_ in range(2):  # interleaved, the faster round kept
                for f in frames[:3]:
                    det.detect(f)
                t0 = time.perf_counter()
                for f in frames:
                    anonymize(f, det.detect(f), "blur", 0.2)
                ours = 1000 * (time.perf_counter() - t0) / len(frames)
                theirs = {}
                for scale in ("full", "640x360"):
                    r = subprocess.run([str(deface_py), __file__, "--deface-speed-worker",
                                        str(clip), str(args.threads), scale],
                                       check=True, capture_output=True, text=True)
                    theirs[scale] = json.loads(r.stdout.strip().splitlines()[-1])["ms"]
                rows.append((ours, theirs["full"], theirs["640x360"]))
            ours, full, small = (min(c) for c in zip(*rows))
            print(f"\n1b. per frame, detection + blur on decoded 1280x720 frames, "
                  f"{args.threads} thread(s), start-up excluded (faster of 2 rounds; load "
                  f"{os.getloadavg()[0]:.1f})")
            print(f"   paddleface {args.model} (long side 640)  {ours:7.1f} ms")
            print(f"   deface CenterFace, full 1280x720       {full:7.1f} ms")
            print(f"   deface CenterFace, --scale 640x360     {small:7.1f} ms")
        if "misses" not in args.only:
            return 0

        truth = wider_truth(shared, args.images)
        listing = tmp / "images.txt"
        listing.write_text("\n".join(truth))
        r = subprocess.run([str(deface_py), __file__, "--deface-worker", str(listing)],
                           check=True, capture_output=True, text=True)
        deface_regions = json.loads(r.stdout.strip().splitlines()[-1])
        det = FaceDetector(args.model, device="cpu")
        counts = {name: np.zeros((len(SIZE_BINS), 2), int) for name in commands}
        for path, boxes in truth.items():
            image = cv2.imread(path)
            h, w = image.shape[:2]
            ours = [face_region(f.box, 0.2, w, h) for f in det.detect(image)]
            for box in boxes:
                height = box[3] - box[1]
                b = [i for i, (lo, hi) in enumerate(SIZE_BINS) if lo <= height < hi]
                if not b:
                    continue
                for name, regions in zip(commands, (ours, deface_regions[path])):
                    counts[name][b[0], 0] += 1
                    counts[name][b[0], 1] += not covered(box, regions, (h, w))
        print(f"\n2. WIDER val faces left visible (< half of the box hidden), {len(truth)} photos")
        print(f"   {'tool':24} " + " ".join(f"{f'{lo}-{hi}px' if hi < 1000 else f'>={lo}px':>16}"
                                            for lo, hi in SIZE_BINS))
        for name, c in counts.items():
            print(f"   {name:24} " + " ".join(f"{f'{m} of {n}':>16}" for n, m in c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
