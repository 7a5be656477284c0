"""``paddleface eval ID --voc ROOT``: per-class VOC AP on a VOC test split (the masked-face
models, which have no WIDER protocol: face and masked_face, IoU 0.5)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

from ..errors import PaddleFaceError
from .voc_ap import ImageDetections, ImageTruth, ap_rows, evaluate_voc


def run_voc_eval(args) -> int:
    from tqdm import tqdm

    from ..datasets.voc import VOCFaceDataset
    from ..detector import FaceDetector
    from ..registry import get_record
    from ..weights import atomic_write
    record = get_record(args.id)
    if not (0.0 < args.iou < 1.0):
        raise PaddleFaceError(f"--iou must be between 0 and 1, got {args.iou}")
    voc = VOCFaceDataset(args.voc, args.split, class_names=record.labels)
    if not len(voc):
        raise PaddleFaceError(f"{args.voc}/ImageSets/Main/{args.split}.txt lists no images")
    # the record's evaluation protocol: a low threshold, so the ranking covers the whole curve
    det = FaceDetector(record, weights=args.weights, device=args.device, engine=args.engine,
                       threads=args.threads, protocol=record.evaluation.detection)
    truths: List[ImageTruth] = []
    dets: List[ImageDetections] = []
    failed = 0
    t0 = time.time()
    for i in tqdm(range(len(voc)), desc=f"{record.id} on {args.split}", unit="img",
                  file=sys.stderr, disable=not sys.stderr.isatty()):
        try:
            faces = det.detect(voc.image_path(i))
        except PaddleFaceError as e:
            print(f"error: {e}; left out of the AP", file=sys.stderr)
            failed += 1
            continue
        ann = voc.annotations[i]
        truths.append(ImageTruth(ann.boxes, ann.labels - 1, ann.difficult))
        dets.append(ImageDetections(
            np.array([f.box for f in faces], np.float64).reshape(-1, 4),
            np.array([f.score for f in faces], np.float64),
            np.array([record.labels.index(f.label) for f in faces], np.int64)))
    results = evaluate_voc(truths, dets, record.labels, args.iou, args.metric)
    dt = time.time() - t0
    print(f"{record.id}: VOC AP ({args.metric}, IoU > {args.iou}) on {args.voc} "
          f"{args.split} ({len(truths)} images, {dt:.1f} s)")
    width = max(len(n) for n in record.labels)
    for r in results:
        ap = "  n/a " if np.isnan(r.ap) else f"{r.ap:.4f}"  # no ground truth of that class
        print(f"  {r.name.ljust(width)}  AP {ap}  ({r.ground_truth} boxes, "
              f"{r.detections} detections, {r.true_positives} true positives)")
    aps = [r.ap for r in results if not np.isnan(r.ap)]
    if aps:
        print(f"  {'mean'.ljust(width)}  AP {float(np.mean(aps)):.4f}")
    out = (Path(args.pred_dir) if args.pred_dir
           else Path("output/eval") / record.id / f"voc-{args.split}")
    summary = {"model": record.id, "voc_root": str(args.voc), "split": args.split,
               "images": len(truths), "failed_images": failed, "iou_threshold": args.iou,
               "metric": args.metric, "engine": det.engine.name,
               "weights": str(det.weights_path) if det.weights_path else None,
               "protocol": {k: getattr(record.evaluation.detection, k) for k in
                            ("score_threshold", "candidates", "nms_iou", "keep")},
               "classes": ap_rows(results),
               "mean_ap": float(np.mean(aps)) if aps else None}
    atomic_write(out / "summary.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    print(f"wrote {out / 'summary.json'}")
    return 1 if failed else 0
