"""Run a detector over WIDER FACE images and write the WIDER prediction files.

Images are decoded and preprocessed in background threads (OpenCV releases the GIL) so the
network never waits; images whose prediction file exists are skipped (resumable); every
file is written atomically.

A prediction folder holds ``manifest.json``: the model, weights (path, sha256), protocol,
long side and engine that made its files. Predictions are reused only under the same
manifest (:func:`claim_prediction_dir`), so a resumed evaluation never mixes in, or reports,
the predictions of other weights.
"""
from __future__ import annotations

import json
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ..errors import PaddleFaceError
from ..image_io import read_image
from ..registry import ModelRecord


def format_boxes(boxes: np.ndarray, scores: np.ndarray, box_format: str) -> List[str]:
    """WIDER lines ``x y w h score`` as the model's upstream evaluation script writes them."""
    lines = []
    if box_format == "floor_ceil":  # ULFD
        for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist()):
            lines.append(f"{math.floor(x1)} {math.floor(y1)} {math.ceil(x2 - x1)} "
                         f"{math.ceil(y2 - y1)} {min(s, 1.0):.3f}")
    elif box_format in ("int_plus1", "int"):  # Pytorch_Retinaface (+1) / BlazeFace (no +1)
        extra = 1 if box_format == "int_plus1" else 0
        for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist()):
            ix1, iy1, ix2, iy2 = int(x1), int(y1), int(x2), int(y2)
            lines.append(f"{ix1} {iy1} {ix2 - ix1 + extra} {iy2 - iy1 + extra} {s:.10f}")
    else:
        raise ValueError(f"unknown box format {box_format!r}")
    return lines


def write_prediction(path: Path, name: str, lines: List[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(f"{name}\n{len(lines)}\n" + "".join(l + "\n" for l in lines))
        os.replace(tmp, path)
    finally:  # Ctrl-C between the two leaves no half file behind
        tmp.unlink(missing_ok=True)


MANIFEST = "manifest.json"
# what must be equal for predictions to be reused (the weights path may differ: same bytes)
MANIFEST_KEYS = ("model", "weights_sha256", "protocol", "long_side", "engine")


def prediction_manifest(det, setting: str, weights_source: Optional[str] = None) -> dict:
    """What made a folder's predictions: model, weights, protocol, long side, engine.
    ``weights_source``: the file the user named (a .pth is loaded from its converted copy)."""
    from dataclasses import asdict

    from ..weights import sha256_of
    weights = det.weights_path
    manifest = {
        "model": det.record.id,
        "weights": str(weights_source or weights) if weights else None,
        "weights_sha256": sha256_of(Path(weights_source or weights)) if weights else None,
        "protocol": {"detection": asdict(det.protocol), "preprocess": asdict(det.preprocess),
                     "box_format": det.record.evaluation.box_format},
        "long_side": setting,
        "engine": det.engine.name,
    }
    if getattr(det, "precision", "fp32") != "fp32":  # fp32 folders keep their manifests
        manifest["precision"] = det.precision
    return json.loads(json.dumps(manifest))  # tuples as lists, as read back from the file


def read_manifest(pred_dir: Path) -> Optional[dict]:
    path = pred_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise PaddleFaceError(f"{path}: not valid JSON; delete it together with the "
                              "predictions beside it (or pass --redo)") from None


def prediction_files(pred_dir: Path) -> List[Path]:
    return sorted(pred_dir.glob("*/*.txt")) if pred_dir.is_dir() else []


def _differences(old: dict, new: dict) -> List[str]:
    out = []
    for key in MANIFEST_KEYS:
        if old.get(key) == new.get(key):
            continue
        if key == "weights_sha256":
            out.append(f"other weights ({old.get('weights')}, sha256 {str(old.get(key))[:12]}; "
                       f"now {new.get('weights')}, sha256 {str(new.get(key))[:12]})")
        elif key == "protocol":
            out.append("another detection protocol")
        else:
            out.append(f"another {key.replace('_', ' ')} ({old.get(key)}; now {new.get(key)})")
    return out


def claim_prediction_dir(pred_dir: Path, manifest: dict, redo: bool = False) -> str:
    """Make ``pred_dir`` hold only predictions of ``manifest``; returns what was done.

    Existing predictions are reused when their manifest matches; otherwise the call refuses
    in one sentence saying what differs, or with ``redo`` deletes them (only the prediction
    files and the manifest) so that everything is predicted again.
    """
    files = prediction_files(pred_dir)
    try:
        old = read_manifest(pred_dir)
    except PaddleFaceError:
        if not redo:
            raise
        old = {}
    note = ""
    if files or old:
        if old is None:
            problem = (f"{pred_dir} holds {len(files)} predictions but no {MANIFEST} saying "
                       "which weights, protocol, long side and engine made them")
        else:
            diff = _differences(old, manifest)
            problem = (f"{pred_dir} holds predictions made with " + "; ".join(diff)
                       if diff else "")
        if not problem:
            note = f"reusing {len(files)} predictions in {pred_dir} (same manifest)" if files else ""
        elif redo:
            for f in files:
                f.unlink()
            note = f"{problem}: deleted them (--redo); predicting again"
        else:
            raise PaddleFaceError(f"{problem}; pass --redo to delete them and predict again, "
                                  "or another --pred-dir")
    pred_dir.mkdir(parents=True, exist_ok=True)
    tmp = pred_dir / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, pred_dir / MANIFEST)
    return note


def list_images(images_dir: Path, subset_file: Optional[Path] = None) -> List[str]:
    """``event/name.jpg`` of every image below ``images_dir`` (or those in ``subset_file``)."""
    if not images_dir.is_dir():
        raise PaddleFaceError(f"{images_dir}: no such image folder (WIDER_val/images expected)")
    if subset_file:
        return [l.strip() for l in subset_file.read_text().splitlines() if l.strip()]
    return sorted(str(p.relative_to(images_dir)) for p in images_dir.glob("*/*.jpg"))


def prefetch(pool, fn, items, depth: int):
    """``map(fn, items)`` in order, with at most ``depth`` results computed ahead (memory stays
    flat however many images there are)."""
    queue: deque = deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(fn, item))
        if len(queue) >= depth:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            queue.append(pool.submit(fn, nxt))
        yield result


def eval_detector(record: ModelRecord, long_side, **kwargs):
    """A FaceDetector set up with the record's evaluation protocol."""
    from ..detector import FaceDetector
    ev = record.evaluation
    if record.preprocess.resize == "long_side":
        if ev.long_sides and long_side not in ev.long_sides:
            raise PaddleFaceError(f"{record.id}: --long-side must be one of "
                                  f"{[s or 'origin' for s in ev.long_sides]}")
        kwargs["long_side"] = long_side
    return FaceDetector(record, protocol=ev.detection, preprocess=ev.preprocess, **kwargs)


def predict_widerface(det, images_dir: Path, pred_dir: Path, names: Iterable[str],
                      workers: int = 2, batch_size: int = 8, progress: bool = True
                      ) -> Tuple[int, int, List[str]]:
    """Predict every image of ``names`` that has no prediction file yet.

    Returns (predicted, skipped, errors).
    """
    from tqdm import tqdm
    todo, skipped = [], 0
    for name in names:
        out = pred_dir / (str(Path(name).with_suffix("")) + ".txt")
        if out.is_file():
            skipped += 1
        else:
            todo.append((name, out))
    errors: List[str] = []
    box_format = det.record.evaluation.box_format

    def load(item):
        name, out = item
        try:
            return name, out, det.prepare(read_image(images_dir / name)), None
        except PaddleFaceError as e:
            return name, out, None, str(e)

    bar = tqdm(total=len(todo), desc=f"{det.record.id} predict", unit="img", disable=not progress)
    pending: List = []

    def flush():
        if not pending:
            return
        # the protocol writes the boxes as decoded: unclipped
        results = det._detect_prepared([p for _, _, p in pending], clip=False)
        for (name, out, _), faces in zip(pending, results):
            boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
            scores = np.array([f.score for f in faces], dtype=np.float64)
            write_prediction(out, Path(name).stem, format_boxes(boxes, scores, box_format))
        bar.update(len(pending))
        pending.clear()

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for name, out, prepared, err in prefetch(pool, load, todo, 2 * batch_size + workers):
                if err:
                    errors.append(err)
                    bar.update(1)
                    continue
                if pending and pending[0][2].tensor.shape != prepared.tensor.shape:
                    flush()
                pending.append((name, out, prepared))
                if len(pending) >= batch_size:
                    flush()
            flush()
    finally:  # closed before an interrupted run prints its one line
        bar.close()
    return len(todo) - len(errors), skipped, errors

