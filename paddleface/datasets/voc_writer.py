"""WIDER FACE + RetinaFace labels -> a VOC tree (Annotations, JPEGImages, ImageSets/Main).

Behaviour of Linzaer's ``data/wider_face_2_voc_add_landmark.py`` with its faults fixed:
the image is read once, all faces smaller than ``min_size`` are painted with the mean pixel
(104, 117, 123) on one copy (upstream painted only the last one), an image with nothing
painted is copied byte for byte, writes are atomic and a rerun resumes.
"""
from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple
from xml.sax.saxutils import escape

import numpy as np

from .retinaface_labels import ImageLabel

MEAN_BGR = (104, 117, 123)


def voc_name(name: str) -> str:
    """``event/file.jpg`` -> ``event_file.jpg``."""
    return name.replace("/", "_")


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _num(v: float) -> str:
    """Integers without '.0' (boxes), other values as Python prints them (landmarks)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def annotation_xml(filename: str, width: int, height: int, faces, with_landmarks: bool) -> str:
    """The VOC XML of one image (the upstream layout, readable by ULFD's VOCDataset)."""
    out = ["<annotation>", "<folder>widerface</folder>", f"<filename>{escape(filename)}</filename>",
           "<source><database>wider face Database</database>"
           "<annotation>PASCAL VOC2007</annotation><image>flickr</image></source>",
           f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
           "<segmented>0</segmented>"]
    for f in faces:
        x, y, w, h = (int(v) for v in f.box)
        out.append("<object><name>face</name><pose>Unspecified</pose><truncated>1</truncated>"
                   "<difficult>0</difficult>")
        out.append(f"<bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + w}</xmax>"
                   f"<ymax>{y + h}</ymax></bndbox>")
        if with_landmarks:
            if f.landmarks is not None:
                pts = "".join(f"<x{i + 1}>{_num(px)}</x{i + 1}><y{i + 1}>{_num(py)}</y{i + 1}>"
                              for i, (px, py) in enumerate(f.landmarks))
                out.append(f"<lm>{pts}<visible>{int(f.flag)}</visible>"
                           f"<blur>{_num(f.blur)}</blur></lm>")
                out.append("<has_lm>1</has_lm>")
            else:
                out.append("<has_lm>0</has_lm>")
        out.append("</object>")
    out.append("</annotation>")
    return "\n".join(out) + "\n"


@dataclass
class Result:
    name: str  # VOC id (file name without .jpg), or "" when nothing was written
    status: str  # "written", "copied", "skipped" (done before), "empty", "error"
    errors: List[str]


def convert_image(item: Tuple[ImageLabel, str], images_dir: Path, out_dir: Path,
                  min_size: int, with_landmarks: bool, label_name: str) -> Result:
    """Write JPEGImages/<id>.jpg (copied or painted) then Annotations/<id>.xml."""
    import cv2
    label, _ = item
    errors = list(label.errors)
    fname = voc_name(label.name)
    vid = fname[:-4] if fname.lower().endswith(".jpg") else os.path.splitext(fname)[0]
    xml_path = out_dir / "Annotations" / f"{vid}.xml"
    jpg_path = out_dir / "JPEGImages" / f"{vid}.jpg"
    if xml_path.is_file() and jpg_path.is_file():
        return Result(vid, "skipped", errors)
    src = images_dir / label.name
    if not label.name:
        return Result("", "error", errors)
    if not src.is_file():
        return Result("", "error", errors + [f"{label_name}:{label.line}: image {label.name} "
                                             "does not exist"])
    data = src.read_bytes()
    # the image size is needed for the XML: decoding the header alone is not offered by cv2
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return Result("", "error", errors + [f"{label_name}:{label.line}: image {label.name} "
                                             "is corrupt or not an image"])
    H, W = img.shape[:2]
    kept, small = [], []
    for f in label.faces:
        x, y, w, h = (int(v) for v in f.box)
        if w <= 0 or h <= 0:
            continue
        (kept if (w >= min_size and h >= min_size) else small).append(f)
    if not kept:
        return Result("", "empty", errors)
    for f in small:
        x, y, w, h = (int(v) for v in f.box)
        img[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = MEAN_BGR
    jpg_path.parent.mkdir(parents=True, exist_ok=True)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    if small:
        ok, enc = cv2.imencode(".jpg", img)
        _atomic_bytes(jpg_path, enc.tobytes())
    else:
        _atomic_bytes(jpg_path, data)
    _atomic_bytes(xml_path, annotation_xml(f"{vid}.jpg", W, H, kept, with_landmarks).encode())
    return Result(vid, "written" if small else "copied", errors)


def _ignore_sigint() -> None:
    """Pool worker initializer: Ctrl-C reaches the whole process group; only the parent acts
    on it (workers interrupted mid-task print tracebacks and leave the pool waiting forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def remove_partial_files(out_dir: Path) -> None:
    """Delete the temporary ``.NAME.PID.part`` files of writes cut short by a kill."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        for tmp in (out_dir / sub).glob(".*.part"):
            tmp.unlink(missing_ok=True)


@dataclass
class SetSummary:
    set_name: str
    images: int = 0
    written: int = 0
    copied: int = 0
    skipped: int = 0
    empty: int = 0
    failed: int = 0
    errors: int = 0


def convert_set(set_name: str, label_file: Path, images_dir: Path, out_dir: Path,
                list_name: str, min_size: int = 10, workers: int = 2,
                progress: bool = True, report=print) -> SetSummary:
    """Convert one set; ImageSets/Main/<list_name>.txt lists its images in label order."""
    from functools import partial
    from multiprocessing import get_context

    from tqdm import tqdm

    from .retinaface_labels import parse_labels
    with_landmarks = set_name == "train"
    if not label_file.is_file():
        raise FileNotFoundError(f"{label_file}: no such label file")
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: no such image folder")
    summary = SetSummary(set_name)
    ids: List[str] = []
    work = partial(convert_image, images_dir=images_dir, out_dir=out_dir, min_size=min_size,
                   with_landmarks=with_landmarks, label_name=label_file.name)
    items = ((label, set_name) for label in parse_labels(label_file, with_landmarks))
    bar = tqdm(desc=f"{set_name} -> VOC", unit="img", disable=not progress)
    if workers > 1:
        pool = get_context("fork" if os.name == "posix" else "spawn").Pool(
            workers, initializer=_ignore_sigint)
        results = pool.imap(work, items, chunksize=8)
    else:
        pool, results = None, map(work, items)
    interrupted = False
    try:
        for r in results:
            summary.images += 1
            setattr(summary, r.status if r.status != "error" else "failed",
                    getattr(summary, r.status if r.status != "error" else "failed") + 1)
            for e in r.errors:
                report(e)
            summary.errors += len(r.errors)
            if r.name and r.status != "empty":
                ids.append(r.name)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        if pool is not None:
            if interrupted:  # stop now: a rerun redoes whatever the workers had in hand
                pool.terminate()
            else:
                pool.close()
            pool.join()
        if interrupted:
            remove_partial_files(out_dir)
    main_dir = out_dir / "ImageSets" / "Main"
    main_dir.mkdir(parents=True, exist_ok=True)
    _atomic_bytes(main_dir / f"{list_name}.txt", "".join(i + "\n" for i in ids).encode())
    return summary
