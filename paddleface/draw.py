"""Drawing detections on an image (boxes, scores, class labels and the five landmarks)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# left eye, right eye, nose, left mouth corner, right mouth corner (BGR)
LANDMARK_COLORS = ((0, 0, 255), (0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 0, 0))
# box colour per class (BGR): green faces, orange masked faces; other labels cycle the rest
LABEL_COLORS = {"face": (0, 255, 0), "masked_face": (0, 165, 255)}
OTHER_COLORS = ((255, 128, 0), (255, 0, 255), (0, 255, 255))


def label_color(label: str):
    """The BGR box colour of a class label."""
    if label in LABEL_COLORS:
        return LABEL_COLORS[label]
    return OTHER_COLORS[sum(label.encode()) % len(OTHER_COLORS)]


def draw_faces(image: np.ndarray, faces: Sequence) -> np.ndarray:
    """A copy of the BGR ``image`` with each face's box, score and landmarks drawn; the box
    colour says the class (:data:`LABEL_COLORS`), and a label other than "face" is written
    before the score."""
    out = image.copy()
    thick = max(1, round(max(out.shape[:2]) / 500))
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        name = getattr(f, "label", "face")
        cv2.rectangle(out, (x1, y1), (x2, y2), label_color(name), thick)
        label = f"{f.score:.2f}" if name == "face" else f"{name} {f.score:.2f}"
        scale = 0.4 * thick
        tracked = getattr(f, "track_id", None) is not None
        if tracked:  # its id first, black on a tag of the box colour (readable on any face)
            label = f"#{f.track_id} {label}"
        (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        # above the box, or inside it when the box touches the top edge (else it is cut off)
        y = y1 - 3 if y1 - 3 - text_h >= 0 else y1 + text_h + 3
        if tracked:
            cv2.rectangle(out, (x1, y - text_h - 2), (x1 + text_w + 2, y + 3), label_color(name), -1)
        cv2.putText(out, label, (x1, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0) if tracked else (255, 255, 255), thick)
        if f.landmarks is not None:
            for (x, y), color in zip(f.landmarks, LANDMARK_COLORS):
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, color, -1)
    return out
