"""Face ids that stay the same from frame to frame: ByteTrack-style association.

Each frame's detections are split by score. Step 1 matches the confident ones to every live
track (tracked and recently lost) by IoU with the track's predicted box, weighted by the
detection score (ByteTrack's fused cost); step 2 gives the remaining tracked tracks a chance
to take low-score detections (a face turning away or partly hidden); step 3 lets tentative
tracks take what is left; unmatched confident detections start tentative tracks, which get an
id on their second hit. The motion model is a constant-velocity Kalman filter over the box
centre and size. Two things differ from ByteTrack, both for faces that leave the picture: a
lost track whose prediction runs off the image stops at the border (a face that leaves and
comes back re-enters where it left), and lost tracks are kept ``max_lost_s`` seconds.

Boxes are x1 y1 x2 y2 in pixels. A face's landmarks are those of the detection its track took
(they follow their face); ``smoothing`` in [0, 1) averages boxes and landmarks over time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) x1 y1 x2 y2 -> (N, M) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _to_state(box: np.ndarray) -> np.ndarray:
    """x1 y1 x2 y2 -> cx cy w h."""
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                     box[2] - box[0], box[3] - box[1]], dtype=np.float64)


def _to_box(s: np.ndarray) -> np.ndarray:
    return np.array([s[0] - s[2] / 2, s[1] - s[3] / 2, s[0] + s[2] / 2, s[1] + s[3] / 2])


class BoxKalman:
    """Constant velocity over (cx, cy, w, h); noise proportional to the box height (as SORT
    and ByteTrack: 1/20 of the height for positions, 1/160 for velocities)."""

    F = np.eye(8)
    F[:4, 4:] = np.eye(4)
    H = np.eye(4, 8)

    def __init__(self, box: np.ndarray):
        z = _to_state(box)
        self.x = np.concatenate([z, np.zeros(4)])
        h = max(z[3], 1.0)
        std = np.array([h / 10, h / 10, h / 10, h / 10, h / 16, h / 16, h / 16, h / 16])
        self.P = np.diag(std ** 2)

    def predict(self) -> None:
        h = max(self.x[3], 1.0)
        q = np.array([h / 20] * 4 + [h / 160] * 4) ** 2
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + np.diag(q)
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)

    def update(self, box: np.ndarray) -> None:
        h = max(self.x[3], 1.0)
        R = np.diag(np.array([h / 20] * 4) ** 2)
        S = self.H @ self.P @ self.H.T + R
        K = self.P @ self.H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (_to_state(box) - self.H @ self.x)
        self.P = (np.eye(8) - K @ self.H) @ self.P

    def box(self) -> np.ndarray:
        return _to_box(self.x[:4])


@dataclass
class _Track:
    kf: BoxKalman
    hits: int = 1
    lost: int = 0  # frames since the last match
    id: Optional[int] = None  # given on confirmation
    size: Optional[np.ndarray] = None  # (w, h) of the last box not cut by the image border
    box: Optional[np.ndarray] = None  # smoothed box (smoothing > 0)
    landmarks: Optional[np.ndarray] = None


class FaceTracker:
    """Give faces ids: ``update(faces, image_size) -> faces`` with ``track_id`` set (None for a
    face whose track is not yet confirmed).

    Args:
        fps: frames per second of the source (turns ``max_lost_s`` into frames).
        high_score: detections at or above start and lead tracks (ByteTrack's track_thresh).
        low_score: detections between this and ``high_score`` only extend existing tracks.
        match_iou: least IoU (times score) for step 1; ``low_match_iou`` for step 2.
        max_lost_s: seconds a lost track waits for its face to come back.
        min_hits: matches before a track gets an id (1: at once).
        smoothing: 0 (off) to <1: weight of the previous smoothed box/landmarks.
    """

    def __init__(self, fps: float = 25.0, high_score: float = 0.5, low_score: float = 0.1,
                 match_iou: float = 0.2, low_match_iou: float = 0.5, max_lost_s: float = 3.0,
                 min_hits: int = 2, smoothing: float = 0.0):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.high_score, self.low_score = high_score, low_score
        self.match_iou, self.low_match_iou = match_iou, low_match_iou
        self.max_lost = max(1, round(max_lost_s * fps))
        self.min_hits = min_hits
        self.smoothing = smoothing
        self.tracks: List[_Track] = []
        self._next_id = 1
        self._frames = 0

    # ---------------------------------------------------------------- association
    @staticmethod
    def _match(tracks: Sequence[_Track], boxes: np.ndarray, scores: np.ndarray, det_idx,
               least: float, fuse_score: bool) -> Tuple[List[Tuple[int, int]], list, list]:
        """Hungarian matching on (IoU x score); pairs below ``least`` stay unmatched.
        Returns (pairs of (track position, detection index), unmatched track positions,
        unmatched detection indices)."""
        det_idx = list(det_idx)
        if not tracks or not det_idx:
            return [], list(range(len(tracks))), det_idx
        pred = np.stack([t.kf.box() for t in tracks])
        sim = iou_matrix(pred, boxes[det_idx])
        if fuse_score:
            sim = sim * scores[det_idx][None, :]
        rows, cols = linear_sum_assignment(-sim)
        pairs = [(r, det_idx[c]) for r, c in zip(rows, cols) if sim[r, c] >= least]
        taken_t = {r for r, _ in pairs}
        taken_d = {d for _, d in pairs}
        return (pairs, [r for r in range(len(tracks)) if r not in taken_t],
                [d for d in det_idx if d not in taken_d])

    def update(self, faces: Sequence, image_size: Tuple[int, int]) -> list:
        """``faces``: objects with ``box`` (4,), ``score``, ``landmarks`` ((5, 2) or None), such
        as :class:`paddleface.detector.Face`; ``image_size``: (width, height). Returns copies
        in the same order with ``track_id`` set (and smoothed box/landmarks if smoothing)."""
        self._frames += 1
        width, height = image_size
        for t in self.tracks:
            t.kf.predict()
            if t.lost:
                self._park_at_border(t, width, height)
        boxes = (np.stack([np.asarray(f.box, dtype=np.float64) for f in faces])
                 if len(faces) else np.zeros((0, 4)))
        scores = np.array([float(f.score) for f in faces])
        high = [i for i, s in enumerate(scores) if s >= self.high_score]
        low = [i for i, s in enumerate(scores) if self.low_score <= s < self.high_score]

        confirmed = [t for t in self.tracks if t.id is not None]
        tentative = [t for t in self.tracks if t.id is None]
        owner = {}  # detection index -> track
        pairs, rest_t, rest_d = self._match(confirmed, boxes, scores, high, self.match_iou, True)
        owner.update({d: confirmed[r] for r, d in pairs})
        active_rest = [confirmed[r] for r in rest_t if confirmed[r].lost == 0]
        pairs, _, _ = self._match(active_rest, boxes, scores, low, self.low_match_iou, False)
        owner.update({d: active_rest[r] for r, d in pairs})
        pairs, _, rest_d = self._match(tentative, boxes, scores, rest_d, self.match_iou, True)
        owner.update({d: tentative[r] for r, d in pairs})

        matched = set(map(id, owner.values()))
        for d, t in owner.items():
            t.kf.update(boxes[d])
            if self._inside(boxes[d], width, height):
                t.size = _to_state(boxes[d])[2:]
            t.hits += 1
            t.lost = 0
            if t.id is None and (t.hits >= self.min_hits or self._frames == 1):
                t.id, self._next_id = self._next_id, self._next_id + 1
        survivors = []
        for t in self.tracks:
            if id(t) in matched:
                survivors.append(t)
            elif t.id is not None and t.lost < self.max_lost:
                t.lost += 1
                t.kf.x[6:8] = 0.0  # a lost face keeps its size (as ByteTrack)
                survivors.append(t)
            # an unmatched tentative track, or one lost too long, ends here
        for d in rest_d:
            t = _Track(BoxKalman(boxes[d]))
            if self._inside(boxes[d], width, height):
                t.size = _to_state(boxes[d])[2:]
            if self.min_hits <= 1 or self._frames == 1:
                t.id, self._next_id = self._next_id, self._next_id + 1
            owner[d] = t
            survivors.append(t)
        self.tracks = survivors

        out = []
        for i, f in enumerate(faces):
            t = owner.get(i)
            if t is None:
                out.append(replace(f, track_id=None))
                continue
            box, landmarks = np.asarray(f.box, dtype=np.float64), f.landmarks
            if self.smoothing and t.id is not None:
                a = self.smoothing
                t.box = box if t.box is None else a * t.box + (1 - a) * box
                box = t.box
                if landmarks is not None:
                    lm = np.asarray(landmarks, dtype=np.float64)
                    t.landmarks = lm if t.landmarks is None else a * t.landmarks + (1 - a) * lm
                    landmarks = t.landmarks
            out.append(replace(f, box=box, landmarks=landmarks, track_id=t.id))
        return out

    @staticmethod
    def _inside(box: np.ndarray, width: int, height: int, border: float = 2.0) -> bool:
        return (box[0] > border and box[1] > border and box[2] < width - border
                and box[3] < height - border)

    @staticmethod
    def _park_at_border(t: _Track, width: int, height: int) -> None:
        """A lost track predicted out of the picture stays at the border, a quarter of its box
        inside, with no velocity and its size from before the border cut it: its face left
        there and will come back there."""
        x = t.kf.x
        if t.size is not None:
            w, h = t.size
        else:
            w, h = x[2], x[3]
        cx = min(max(x[0], w / 4), width - w / 4)
        cy = min(max(x[1], h / 4), height - h / 4)
        if (cx, cy) != (x[0], x[1]):
            x[:4] = cx, cy, w, h
            x[4:] = 0.0
