"""Our ULFD training augmentation against the output distribution of the upstream
``TrainAugmentation`` (shared/reference/train/augment_ulfd_rfb320.npz).

The reference is 10 passes of the upstream transform over the trainval images of the outcome
split (events 0-29 of the WIDER val subset, 238 images with faces, image index = position in
the sorted id list). Here a few passes of ``augment(..., "ulfd", ...)`` over the same images
are compared with it by two-sample Kolmogorov-Smirnov tests, one per statistic:

- per sample: the per-channel mean and std of the network input (RGB, (x - 127) / 128, as
  upstream), its min and max, the number of boxes, and the mean horizontal shift of the
  box centres from their annotated positions (0 unmirrored, 1 - 2 x-centre mirrored: the
  statistic the mirror moves; the image statistics do not see it);
- per box: width and height in [0, 1].

Each needs p > 0.01. Removing the photometric distortion or the mirror must make some
test fail: the second test checks that, so this one keeps its power.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import pytest

from paddleface.datasets.voc import VOCFaceDataset
from paddleface.preprocess import normalize
from paddleface.registry import REGISTRY
from paddleface.training import augment as aug
from paddleface.training.trainer import read_faces

from conftest import event_number

PASSES = 5  # 1190 samples; ~2 s of CPU
P_MIN = 0.01


@pytest.fixture(scope="module")
def reference(shared):
    return np.load(shared / "reference/train/augment_ulfd_rfb320.npz")


@pytest.fixture(scope="module")
def split_faces(voc_subset, reference):
    """The 238 trainval images of the outcome split in the reference's index order (sorted
    ids), read as the trainer reads them (VOC coordinates minus ULFD's offset of 1)."""
    record = REGISTRY["ulfd-rfb-320"]
    test_ids = VOCFaceDataset(voc_subset, "test").ids
    ids = sorted(i for i in test_ids if event_number(i) < 30)
    voc = VOCFaceDataset(voc_subset, "test", ids=ids)
    faces = [read_faces(voc, i, record) for i in range(len(voc))]
    first_pass = reference["samples"][:len(faces)]
    assert len(faces) == 238
    assert np.array_equal(first_pass[:, 0], np.arange(238)), "reference order changed"
    assert [len(f.boxes) for f in faces] == first_pass[:, 11].astype(int).tolist()
    return faces


def annotated_boxes(faces) -> List[np.ndarray]:
    """Each image's boxes in [0, 1] corner form before augmentation."""
    return [f.boxes / np.tile(np.array(f.image.shape[1::-1], np.float32), 2) for f in faces]


def centre_shift(index: np.ndarray, boxes: List[np.ndarray], annotated: List[np.ndarray]):
    """Per sample: mean over its boxes of (x-centre after - x-centre annotated)."""
    return np.array([np.mean((b[:, 0] + b[:, 2] - a[:, 0] - a[:, 2]) / 2)
                     for b, a in zip(boxes, (annotated[i] for i in index))])


def statistics(rows: np.ndarray, boxes: List[np.ndarray], annotated) -> Dict[str, np.ndarray]:
    """rows: image index, h, w, mean RGB, std RGB, min, max, boxes (the npz's columns)."""
    flat = np.concatenate(boxes)
    out = {f"{what} {c}": rows[:, first + i] for what, first in (("mean", 3), ("std", 6))
           for i, c in enumerate("RGB")}
    out.update({"min": rows[:, 9], "max": rows[:, 10], "box count": rows[:, 11],
                "box centre shift": centre_shift(rows[:, 0].astype(int), boxes, annotated),
                "box width": flat[:, 2] - flat[:, 0], "box height": flat[:, 3] - flat[:, 1]})
    return out


def reference_statistics(reference, annotated):
    samples = reference["samples"]
    ends = np.cumsum(samples[:, 11].astype(int))
    boxes = np.split(reference["boxes"][:, 1:], ends[:-1])
    return statistics(samples, boxes, annotated)


def our_statistics(faces, annotated, passes: int = PASSES, seed: int = 0):
    record = REGISTRY["ulfd-rfb-320"]
    spec = record.preprocess
    rows, boxes = [], []
    for p in range(passes):
        for i, face in enumerate(faces):
            rng = np.random.default_rng([seed, p, i])
            s = aug.augment(face, record.train.augmentation, spec.size, spec.mean, rng)
            x = normalize(spec, s.image)  # (3, H, W), RGB as the network sees it
            rows.append([i, *x.shape[1:], *x.mean((1, 2)), *x.std((1, 2)), x.min(), x.max(),
                         len(s.boxes)])
            boxes.append(s.boxes)
    return statistics(np.array(rows, np.float64), boxes, annotated)


def ks_pvalues(ours, theirs) -> Dict[str, float]:
    from scipy import stats
    return {k: float(stats.ks_2samp(ours[k], theirs[k]).pvalue) for k in theirs}


def test_ulfd_augmentation_has_the_upstream_distribution(split_faces, reference):
    annotated = annotated_boxes(split_faces)
    p = ks_pvalues(our_statistics(split_faces, annotated),
                   reference_statistics(reference, annotated))
    low = {k: v for k, v in p.items() if not v > P_MIN}
    assert not low, f"KS p <= {P_MIN}: {low} (all: {p})"


@pytest.mark.parametrize("removed, moved", [
    ("ssd_photometric_distort", ["mean R", "std B", "min", "max"]),
    ("mirror", ["box centre shift"])])
def test_the_comparison_sees_a_removed_step(split_faces, reference, monkeypatch, removed, moved):
    """Without the photometric distortion or the mirror the same comparison fails (here: on
    the statistics that step moves), so the test above can fail."""
    identity = {"ssd_photometric_distort": lambda image, rng: image.astype(np.float32),
                "mirror": lambda s, rng, normalised=False: s}
    monkeypatch.setattr(aug, removed, identity[removed])
    annotated = annotated_boxes(split_faces)
    p = ks_pvalues(our_statistics(split_faces, annotated),
                   reference_statistics(reference, annotated))
    assert all(p[k] < P_MIN for k in moved), p
