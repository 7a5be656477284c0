"""The official WIDER FACE evaluation (Easy / Medium / Hard AP), vectorised numpy.

Follows the official protocol of the Matlab toolkit and its Python port (WiderFace-Evaluation):
IoU >= 0.5 with the +1 pixel convention, scores min-max normalised over all predictions,
1000 score thresholds, the ``gt_list`` of each setting marking the faces that count (the
others are ignored: a detection of one is neither a hit nor a false positive), VOC AP.

Prediction files: ``<event>/<image name>.txt`` holding the image name, the number of boxes,
then one ``x y w h score`` line per box (pixels, in the order written: highest score first).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..errors import PaddleFaceError

SETTINGS = ("easy", "medium", "hard")
THRESH_NUM = 1000


@dataclass
class GroundTruth:
    """Per image ``event/name`` (no extension): boxes (G, 4) x y w h and, per setting, the
    0-based indices of the faces that count."""

    boxes: Dict[str, np.ndarray]
    keep: Dict[str, Dict[str, np.ndarray]]  # setting -> image -> indices
    order: List[str]  # images in the official order


def load_ground_truth(gt_dir) -> GroundTruth:
    """Read ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat`` from ``gt_dir``."""
    from scipy.io import loadmat
    gt_dir = Path(gt_dir)
    files = {"all": gt_dir / "wider_face_val.mat"}
    files.update({s: gt_dir / f"wider_{s}_val.mat" for s in SETTINGS})
    for f in files.values():
        if not f.is_file():
            raise PaddleFaceError(f"{f}: missing; --gt must be the folder of the official "
                                  "wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    try:
        mats = {k: loadmat(str(f)) for k, f in files.items()}
    except Exception as e:
        raise PaddleFaceError(f"{gt_dir}: the ground-truth .mat files cannot be read ({e})") from None
    allm = mats["all"]
    boxes: Dict[str, np.ndarray] = {}
    keep: Dict[str, Dict[str, np.ndarray]] = {s: {} for s in SETTINGS}
    order: List[str] = []
    for i, event in enumerate(allm["event_list"]):
        event_name = str(event[0][0])
        images = allm["file_list"][i][0]
        for j, img in enumerate(images):
            key = f"{event_name}/{img[0][0]}"
            order.append(key)
            boxes[key] = allm["face_bbx_list"][i][0][j][0].astype(np.float64)
            for s in SETTINGS:
                idx = mats[s]["gt_list"][i][0][j][0]
                keep[s][key] = (np.asarray(idx, dtype=np.int64).reshape(-1) - 1)
    return GroundTruth(boxes, keep, order)


def read_prediction_file(path: Path) -> np.ndarray:
    """(K, 5) x y w h score, in file order; a clear error naming the line when malformed."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise PaddleFaceError(f"{path}:1: a prediction file needs the image name and a count")
    try:
        count = int(lines[1].strip())
    except ValueError:
        raise PaddleFaceError(f"{path}:2: the number of boxes was expected, "
                              f"got {lines[1].strip()!r}") from None
    rows = []
    for n, line in enumerate(lines[2:2 + count], start=3):
        vals = line.split()
        try:
            if len(vals) < 5:
                raise ValueError
            rows.append([float(v) for v in vals[:5]])
        except ValueError:
            raise PaddleFaceError(f"{path}:{n}: 'x y w h score' was expected, got {line!r}") from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def read_predictions(pred_dir) -> Dict[str, np.ndarray]:
    """Every ``<event>/<name>.txt`` below ``pred_dir`` -> {"event/name": (K, 5)}."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise PaddleFaceError(f"{pred_dir}: no such prediction folder")
    return {f"{p.parent.name}/{p.stem}": read_prediction_file(p)
            for p in sorted(pred_dir.glob("*/*.txt"))}


def normalize_scores(preds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Min-max normalise the scores over all predictions (the official ``norm_score``)."""
    scores = [p[:, 4] for p in preds.values() if len(p)]
    lo = min([1.0] + [float(s.min()) for s in scores])
    hi = max([0.0] + [float(s.max()) for s in scores])
    diff = hi - lo
    out = {}
    for k, p in preds.items():
        q = p.copy()
        if len(q):
            q[:, 4] = (q[:, 4] - lo) / diff if diff > 0 else 0.0
        out[k] = q
    return out


def iou_plus1(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(K, 4) x1 y1 x2 y2 vs (G, 4) -> (K, G) IoU with areas (x2 - x1 + 1)(y2 - y1 + 1)."""
    iw = np.minimum(pred[:, None, 2], gt[None, :, 2]) - np.maximum(pred[:, None, 0], gt[None, :, 0]) + 1
    ih = np.minimum(pred[:, None, 3], gt[None, :, 3]) - np.maximum(pred[:, None, 1], gt[None, :, 1]) + 1
    valid = (iw > 0) & (ih > 0)
    inter = np.where(valid, iw * ih, 0.0)
    pa = (pred[:, 2] - pred[:, 0] + 1) * (pred[:, 3] - pred[:, 1] + 1)
    ga = (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)
    union = pa[:, None] + ga[None, :] - inter
    return np.where(valid, inter / np.where(valid, union, 1.0), 0.0)


def image_pr(pred: np.ndarray, gt: np.ndarray, counted: np.ndarray,
             iou_thresh: float = 0.5) -> np.ndarray:
    """(THRESH_NUM, 2) proposals and recalled faces of one image at each threshold.

    Each prediction is matched to its best-overlapping face; a match (IoU >= iou_thresh) with
    a face that does not count removes the prediction from the proposals; the first match of
    a counted face recalls it. This is the official ``image_eval`` + ``img_pr_info``.
    """
    p = pred[:, :4].copy()
    p[:, 2:] += p[:, :2]
    g = gt.copy()
    g[:, 2:] += g[:, :2]
    overlaps = iou_plus1(p, g)
    best = overlaps.argmax(1)
    matched = overlaps[np.arange(len(p)), best] >= iou_thresh
    is_counted = np.zeros(len(g), dtype=bool)
    is_counted[counted] = True
    proposal = ~(matched & ~is_counted[best])
    # a counted face is recalled from its first matching prediction on
    hits = matched & is_counted[best]
    first = np.full(len(g), len(p), dtype=np.int64)
    np.minimum.at(first, best[hits], np.flatnonzero(hits))
    recalled_at = np.cumsum(np.bincount(first[first < len(p)], minlength=len(p))[:len(p)])
    # for threshold t: the last prediction (in file order) whose score >= t
    thresholds = 1.0 - (np.arange(THRESH_NUM) + 1) / THRESH_NUM
    suffix_max = np.maximum.accumulate(pred[::-1, 4])[::-1]  # non-increasing
    last = np.searchsorted(-suffix_max, -thresholds, side="right") - 1
    out = np.zeros((THRESH_NUM, 2))
    ok = last >= 0
    cum_prop = np.cumsum(proposal)
    out[ok, 0] = cum_prop[last[ok]]
    out[ok, 1] = recalled_at[last[ok]]
    return out


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class EvalResult:
    ap: Dict[str, float]
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]]  # setting -> (recall, precision)
    images: int
    faces: Dict[str, int]


def evaluate(preds: Dict[str, np.ndarray], gt: GroundTruth, subset: bool = False,
             iou_thresh: float = 0.5) -> EvalResult:
    """AP per setting. ``subset``: only images with a prediction file count (their faces too);
    otherwise a missing prediction file is an error."""
    images = [k for k in gt.order if k in preds] if subset else gt.order
    if not subset:
        missing = [k for k in gt.order if k not in preds]
        if missing:
            raise PaddleFaceError(f"{len(missing)} val images have no prediction file (first: "
                                  f"{missing[0]}.txt); predict them all or pass --subset")
    if not images:
        raise PaddleFaceError("no prediction file matches a WIDER FACE val image")
    preds = normalize_scores({k: preds[k] for k in images})
    ap, curves, faces = {}, {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in SETTINGS:
            pr = np.zeros((THRESH_NUM, 2))
            count = 0
            for k in images:
                counted = gt.keep[s][k]
                count += len(counted)
                if len(gt.boxes[k]) == 0 or len(preds[k]) == 0:
                    continue
                pr += image_pr(preds[k], gt.boxes[k], counted, iou_thresh)
            precision = pr[:, 1] / pr[:, 0]
            recall = pr[:, 1] / max(count, 1)
            ap[s] = voc_ap(recall, precision)
            curves[s] = (recall, precision)
            faces[s] = count
    return EvalResult(ap, curves, len(images), faces)
