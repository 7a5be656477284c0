"""The VOC face tree written by data/wider_face_2_voc_add_landmark.py, read for training.

Boxes are corner form ``x1 y1 x2 y2`` in pixels (xmax = x + w, as written); landmarks are
(5, 2) pixels, -1 where a face has none (``has_lm`` False). Objects are read when their
``name`` is one of the class names asked for (a record's ``labels``: ``face``, or ``face``
and ``masked_face``); ``labels`` holds each box's class, 1-based in that tuple (0 is the
background), as ULFD's VOCDataset maps ``class_names`` after BACKGROUND.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import PaddleFaceError
from ..image_io import read_image


@dataclass
class FaceAnnotation:
    boxes: np.ndarray  # (N, 4) float32
    landmarks: np.ndarray  # (N, 5, 2) float32, -1 where absent
    has_lm: np.ndarray  # (N,) bool
    width: int
    height: int
    labels: Optional[np.ndarray] = None  # (N,) int64, 1-based index into the class names
    difficult: Optional[np.ndarray] = None  # (N,) bool, VOC's <difficult>1</difficult>


FACE_ONLY = ("face",)


def parse_annotation(path: Path, class_names: Sequence[str] = FACE_ONLY) -> FaceAnnotation:
    """Read one XML, keeping the objects named in ``class_names``; a one-sentence error
    names the file and what is wrong."""
    wanted = {name.lower(): k + 1 for k, name in enumerate(class_names)}
    try:
        root = ET.parse(str(path)).getroot()
    except (ET.ParseError, OSError) as e:
        raise PaddleFaceError(f"{path}: not a readable VOC XML ({e})") from None
    try:
        size = root.find("size")
        width, height = int(size.findtext("width")), int(size.findtext("height"))
        boxes, lms, has, labels, difficult = [], [], [], [], []
        for obj in root.iter("object"):
            label = wanted.get((obj.findtext("name") or "").strip().lower())
            if label is None:
                continue
            labels.append(label)
            difficult.append((obj.findtext("difficult") or "0").strip() == "1")
            bb = obj.find("bndbox")
            boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            lm = obj.find("lm")
            if lm is not None and (obj.findtext("has_lm") or "1").strip() != "0":
                lms.append([[float(lm.findtext(f"x{i}")), float(lm.findtext(f"y{i}"))]
                            for i in range(1, 6)])
                has.append(True)
            else:
                lms.append([[-1.0, -1.0]] * 5)
                has.append(False)
    except (AttributeError, TypeError, ValueError) as e:
        raise PaddleFaceError(f"{path}: a size, bndbox or lm field is missing or not a number "
                              f"({e})") from None
    return FaceAnnotation(np.asarray(boxes, np.float32).reshape(-1, 4),
                          np.asarray(lms, np.float32).reshape(-1, 5, 2),
                          np.asarray(has, bool), width, height, np.asarray(labels, np.int64),
                          np.asarray(difficult, bool))


# the converter's list names: WIDER train -> trainval.txt, WIDER val -> test.txt
LIST_SOURCES = {"trainval": "train", "test": "val"}


def missing_list_message(root: Path, split: str) -> str:
    """Why ``root/ImageSets/Main/<split>.txt`` is missing and what to do, in one sentence:
    the lists the tree does have (train on one with ``--split``) and the converter call
    that writes the missing one."""
    list_file = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    present = sorted(p.stem for p in list_file.parent.glob("*.txt")) if list_file.parent.is_dir() else []
    convert = (f"convert the WIDER {LIST_SOURCES[split]} set into it (python "
               f"data/wider_face_2_voc_add_landmark.py --sets {LIST_SOURCES[split]} --out {root})"
               if split in LIST_SOURCES else "")
    if present:
        lists = ", ".join(f"{p}.txt" for p in present)
        return (f"{list_file}: no such image list; {root} has {lists} only: train on it with "
                f"--split {present[0]}" + (f", or {convert}" if convert else ""))
    return (f"{list_file}: no such image list (is {root} a VOC tree made by "
            f"data/wider_face_2_voc_add_landmark.py?)" + (f"; {convert}" if convert else ""))


class VOCFaceDataset:
    """``root/ImageSets/Main/<split>.txt`` ids -> (image BGR uint8, FaceAnnotation) with the
    objects of ``class_names`` (default: ``face`` only)."""

    def __init__(self, root, split: str = "trainval", ids: Optional[List[str]] = None,
                 class_names: Sequence[str] = FACE_ONLY):
        self.root = Path(root)
        self.class_names = tuple(class_names)
        list_file = self.root / "ImageSets" / "Main" / f"{split}.txt"
        if ids is None:
            if not list_file.is_file():
                raise PaddleFaceError(missing_list_message(self.root, split))
            ids = [l.strip() for l in list_file.read_text().splitlines() if l.strip()]
        self.ids = ids
        # annotations are small: parse them once (the trainer reads each many times)
        self.annotations = [parse_annotation(self.root / "Annotations" / f"{i}.xml",
                                             self.class_names) for i in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, index: int) -> Path:
        return self.root / "JPEGImages" / f"{self.ids[index]}.jpg"

    def __getitem__(self, index: int):
        return read_image(self.image_path(index)), self.annotations[index]


def validate_voc(root, split: Optional[str] = None, check_images: bool = True,
                 class_names: Sequence[str] = ("face", "masked_face")) -> List[str]:
    """Problems of a converted tree (empty list = valid): lists, XML, boxes, images. Objects
    of ``class_names`` count as faces (a WIDER tree merged with MAFA has both)."""
    import cv2
    root = Path(root)
    problems: List[str] = []
    main = root / "ImageSets" / "Main"
    lists = [main / f"{split}.txt"] if split else sorted(main.glob("*.txt"))
    if not lists or not all(l.is_file() for l in lists):
        return [f"{main}: no image list ({split or '*'}.txt) found"]
    for lst in lists:
        for n, vid in enumerate(lst.read_text().splitlines(), start=1):
            vid = vid.strip()
            if not vid:
                continue
            xml, jpg = root / "Annotations" / f"{vid}.xml", root / "JPEGImages" / f"{vid}.jpg"
            if not xml.is_file():
                problems.append(f"{lst.name}:{n}: {xml.name} is missing")
                continue
            if not jpg.is_file():
                problems.append(f"{lst.name}:{n}: {jpg.name} is missing")
                continue
            try:
                ann = parse_annotation(xml, class_names)
            except PaddleFaceError as e:
                problems.append(str(e))
                continue
            if len(ann.boxes) == 0:
                problems.append(f"{xml}: no face objects")
            b = ann.boxes
            if len(b) and ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any():
                problems.append(f"{xml}: a box with xmax <= xmin or ymax <= ymin")
            if check_images:
                img = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
                if img is None:
                    problems.append(f"{jpg}: not a readable image")
                elif img.shape[:2] != (ann.height, ann.width):
                    problems.append(f"{xml}: size {ann.width}x{ann.height} but the image is "
                                    f"{img.shape[1]}x{img.shape[0]}")
    return problems
