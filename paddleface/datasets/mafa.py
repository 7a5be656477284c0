"""MAFA (masked faces) labels -> VOC, merged into a WIDER FACE VOC tree.

What ULFD's ``masked_face/mafa2voc.py`` does, as its README describes the training data of
the masked-face models (WIDER FACE ``face`` + MAFA ``masked_face``):

- MAFA's labels are MATLAB files: ``LabelTrainAll.mat`` holds ``label_train``, one struct per
  image with ``orgImgName``, ``imgName`` and ``label``, one row of 21 numbers per face:
  ``x y w h``, two eye points, the occluder box ``x y w h`` relative to the face, occluder
  type (1 simple, 2 complex, 3 human body), occlusion degree (number of occluded face parts),
  gender, race, orientation, glasses box. ``LabelTestAll.mat`` holds ``LabelTest`` with
  ``name`` and ``label``, 18 numbers per face: ``x y w h``, face type (1 masked, 2 unmasked,
  3 invalid), occluder box, occluder type, degree, gender, race, orientation, glasses box.
- Kept as ``masked_face``: faces with at least 3 occluded parts whose occluder is not a human
  body (test: also face type 1). The upstream README's training set also holds the
  human-body occlusions (degree >= 3) as ``face`` ("MAFA human body"): ``human_body_as_face``.
- One XML per image with at least one kept face, ``xmax = x + w`` (the WIDER converter's
  convention), the occluder box kept beside the face box; the image copied byte for byte as
  ``JPEGImages/<name without extension>.jpg``; the ids appended to
  ``ImageSets/Main/trainval.txt`` (train) or ``test.txt`` (test) of the tree.

Unlike the upstream script, the XML carries the image size (our VOC reader needs it), writes
are atomic, a rerun skips converted images and lists each id once, and a missing image is
reported and skipped instead of stopping the run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple
from xml.sax.saxutils import escape

import numpy as np

from ..errors import PaddleFaceError
from .voc_writer import remove_partial_files

MASKED, HUMAN_BODY = 1, 3  # test face type 1 = masked; occluder type 3 = human body
MIN_DEGREE = 3  # the upstream keeps faces with at least 3 occluded parts


@dataclass
class MafaFace:
    box: Tuple[int, int, int, int]  # x y w h, pixels
    occluder: Tuple[int, int, int, int]  # x y w h relative to the face's x, y
    label: str  # "masked_face" or "face"


@dataclass
class MafaImage:
    name: str  # image file name inside the split's image folder
    faces: List[MafaFace] = field(default_factory=list)


def _text(value) -> str:
    """A MATLAB string as scipy returns it (an array holding one str) -> str."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        value = value.flat[0]
    return str(value)


def load_mat(path: Path, split: str) -> List[Tuple[str, np.ndarray]]:
    """(image name, (N, 21 or 18) label rows) per image of a MAFA label file."""
    from scipy.io import loadmat
    key = {"train": "label_train", "test": "LabelTest"}[split]
    if not path.is_file():
        raise PaddleFaceError(f"{path}: no such MAFA label file")
    try:
        mat = loadmat(str(path))
    except NotImplementedError:  # scipy's message for HDF5-based v7.3 files
        raise PaddleFaceError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; "
                              "MAFA's LabelTrainAll.mat / LabelTestAll.mat are v5 files: "
                              "was this one re-saved?") from None
    except Exception as e:  # scipy raises ValueError/TypeError for files that are not .mat
        raise PaddleFaceError(f"{path}: not a readable MATLAB .mat file ({e})") from None
    if key not in mat:
        other = "test" if split == "train" else "train"
        hint = (f" (it holds '{'LabelTest' if split == 'train' else 'label_train'}': "
                f"pass it as the {other} labels)"
                if ("LabelTest" if split == "train" else "label_train") in mat else "")
        raise PaddleFaceError(f"{path}: no '{key}' variable, so not MAFA's {split} labels"
                              f"{hint}")
    records = np.asarray(mat[key]).ravel()
    columns = 21 if split == "train" else 18
    # train: (orgImgName, imgName, label); test: (name, label) -- by field name when present
    name_field = "imgName" if split == "train" else "name"
    out = []
    for i, rec in enumerate(records):
        fields = rec.dtype.names or ()
        name = _text(rec[name_field] if name_field in fields else rec[1 if split == "train" else 0])
        rows = rec["label"] if "label" in fields else rec[2 if split == "train" else 1]
        rows = np.asarray(rows, dtype=np.float64)
        if rows.size and (rows.ndim != 2 or rows.shape[1] != columns):
            raise PaddleFaceError(f"{path}: image {i + 1} ({name}): label rows of "
                                  f"{rows.shape[-1]} numbers, {columns} expected for the "
                                  f"{split} split")
        out.append((name, rows.reshape(-1, columns)))
    return out


def select_faces(rows: np.ndarray, split: str, human_body_as_face: bool = False) -> List[MafaFace]:
    """The faces the upstream converter keeps, with their VOC class."""
    faces = []
    for r in rows.astype(np.int64):
        if split == "train":
            occ_type, degree = r[12], r[13]
            if degree < MIN_DEGREE:
                continue
        else:
            occ_type, degree = r[9], r[10]
            if r[4] != MASKED or degree < MIN_DEGREE:
                continue
        if occ_type == HUMAN_BODY:
            if not (human_body_as_face and split == "train"):
                continue
            label = "face"
        else:
            label = "masked_face"
        occ = r[8:12] if split == "train" else r[5:9]
        faces.append(MafaFace(tuple(int(v) for v in r[:4]), tuple(int(v) for v in occ), label))
    return faces


def annotation_xml(filename: str, width: int, height: int, faces: List[MafaFace]) -> str:
    """The VOC XML of one MAFA image (mafa2voc.py's objects, plus the image size)."""
    out = ["<annotation>", "<folder>MAFA</folder>", f"<filename>{escape(filename)}</filename>",
           f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
           "<segmented>0</segmented>"]
    for f in faces:
        x, y, w, h = f.box
        ox, oy, ow, oh = f.occluder
        out.append(f"<object><name>{f.label}</name><pose>Unspecified</pose>"
                   "<truncated>1</truncated><difficult>0</difficult><has_lm>0</has_lm>")
        out.append(f"<bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + w}</xmax>"
                   f"<ymax>{y + h}</ymax></bndbox>")
        out.append(f"<occluder><xmin>{x + ox}</xmin><ymin>{y + oy}</ymin>"
                   f"<xmax>{x + ox + ow}</xmax><ymax>{y + oy + oh}</ymax></occluder>")
        out.append("</object>")
    out.append("</annotation>")
    return "\n".join(out) + "\n"


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class MafaSummary:
    split: str
    images: int = 0  # images in the label file
    converted: int = 0
    skipped: int = 0  # converted by an earlier run
    without_faces: int = 0  # no face the filter keeps
    failed: int = 0
    masked_faces: int = 0
    faces: int = 0
    errors: List[str] = field(default_factory=list)


def convert_split(label_file: Path, images_dir: Path, out_dir: Path, split: str,
                  human_body_as_face: bool = False, max_images: Optional[int] = None,
                  progress: bool = True) -> MafaSummary:
    """Convert one MAFA split into the VOC tree ``out_dir`` and append its ids to
    ``ImageSets/Main/trainval.txt`` (train) or ``test.txt`` (test).

    ``max_images``: stop after this many converted images (the upstream stops at 15542
    for its balanced WIDER + MAFA training set)."""
    import cv2
    from tqdm import tqdm
    if not images_dir.is_dir():
        raise PaddleFaceError(f"{images_dir}: no such image folder (MAFA's "
                              f"{'train' if split == 'train' else 'test'}-images)")
    samples = load_mat(label_file, split)
    summary = MafaSummary(split, images=len(samples))
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    ids: List[str] = []
    try:
        for name, rows in tqdm(samples, desc=f"MAFA {split} -> VOC", unit="img",
                               disable=not progress):
            if max_images is not None and len(ids) >= max_images:
                break
            faces = select_faces(rows, split, human_body_as_face)
            if not faces:
                summary.without_faces += 1
                continue
            vid = os.path.splitext(name)[0]
            xml_path = out_dir / "Annotations" / f"{vid}.xml"
            jpg_path = out_dir / "JPEGImages" / f"{vid}.jpg"
            if xml_path.is_file() and jpg_path.is_file():
                summary.skipped += 1
            else:
                src = images_dir / name
                data = src.read_bytes() if src.is_file() else b""
                img = (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                       if data else None)
                if img is None:
                    why = "is not a readable image" if data else "does not exist"
                    summary.failed += 1
                    summary.errors.append(f"{label_file.name}: image {name} {why} "
                                          f"in {images_dir}")
                    continue
                if not name.lower().endswith((".jpg", ".jpeg")):  # keep VOC's .jpg promise
                    data = cv2.imencode(".jpg", img)[1].tobytes()
                _atomic_bytes(jpg_path, data)
                xml = annotation_xml(f"{vid}.jpg", img.shape[1], img.shape[0], faces)
                _atomic_bytes(xml_path, xml.encode())
                summary.converted += 1
            ids.append(vid)
            summary.faces += len(faces)
            summary.masked_faces += sum(f.label == "masked_face" for f in faces)
    except KeyboardInterrupt:
        remove_partial_files(out_dir)  # what was written is whole; a rerun skips it
        raise
    list_name = "trainval.txt" if split == "train" else "test.txt"
    merge_ids(out_dir / "ImageSets" / "Main" / list_name, ids)
    return summary


def merge_ids(list_file: Path, new_ids: List[str]) -> None:
    """Append ``new_ids`` to a VOC image list, each id once, the existing order kept."""
    old = list_file.read_text().split() if list_file.is_file() else []
    seen = set(old)
    merged = old + [i for i in new_ids if not (i in seen or seen.add(i))]
    _atomic_bytes(list_file, "".join(i + "\n" for i in merged).encode())

