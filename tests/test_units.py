"""Priors, box coding and NMS against hand-computed cases and upstream conventions."""
import numpy as np

from paddleface.box_coder import decode_boxes, decode_landmarks, encode_boxes, encode_landmarks
from paddleface.nms import hard_nms
from paddleface.registry import REGISTRY


def test_prior_counts_match_the_networks():
    assert REGISTRY["ulfd-rfb-320"].priors(240, 320).shape == (4420, 4)
    assert REGISTRY["ulfd-rfb-640"].priors(480, 640).shape == (17640, 4)
    assert REGISTRY["rfb-lm"].priors(302, 640).shape == (11190, 4)
    assert REGISTRY["mnet-lm"].priors(302, 640).shape == (8000, 4)
    assert REGISTRY["retinaface-mnet"].priors(640, 640).shape == (16800, 4)


def test_ulfd_priors_follow_the_feature_map_and_are_clamped():
    p = REGISTRY["ulfd-rfb-320"].priors(240, 320)
    # level 2 at 320x240 is an 10x8 map: centres at (i + 0.5) / 8 vertically, not * 32 / 240
    level2 = p[40 * 30 * 3 + 20 * 15 * 2:][: 10 * 8 * 2]
    assert np.allclose(np.unique(level2[:, 1]), (np.arange(8) + 0.5) / 8)
    assert p.max() <= 1.0 and np.isclose(p[:, 3].max(), 1.0)  # 256 / 240 clamped


def test_retinaface_priors():
    p = REGISTRY["retinaface-mnet"].priors(100, 200)
    assert np.allclose(p[0], [4 / 200, 4 / 100, 16 / 200, 16 / 100])
    assert np.allclose(p[1], [4 / 200, 4 / 100, 32 / 200, 32 / 100])
    assert np.allclose(p[2, :2], [12 / 200, 4 / 100])


def test_box_and_landmark_coding_roundtrip():
    rng = np.random.default_rng(0)
    priors = np.concatenate([rng.uniform(0.2, 0.8, (50, 2)), rng.uniform(0.05, 0.3, (50, 2))], 1)
    loc = rng.normal(0, 1, (50, 4)).astype(np.float32)
    boxes = decode_boxes(loc, priors, (0.1, 0.2))
    assert np.allclose(encode_boxes(boxes, priors, (0.1, 0.2)), loc, atol=1e-5)
    lm = rng.normal(0, 1, (50, 10))
    pts = decode_landmarks(lm, priors, (0.1, 0.2))
    assert pts.shape == (50, 5, 2)
    assert np.allclose(encode_landmarks(pts, priors, (0.1, 0.2)), lm)


def test_nms_semantics():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert hard_nms(boxes, scores, 0.4, offset=1).tolist() == [3, 2]
    # threshold is "greater than drops": IoU exactly at the threshold survives
    two = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU 50/150 = 1/3
    assert hard_nms(two, np.array([1, .5], np.float32), 1 / 3).tolist() == [0, 1]
    assert hard_nms(two, np.array([1, .5], np.float32), 0.3).tolist() == [0]
    assert hard_nms(boxes, scores, 0.4, keep=1).tolist() == [3]
    assert hard_nms(boxes, scores, 0.99, candidates=2).tolist() == [3, 0]
    assert hard_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_matrix_nms_passes_equal_the_per_box_loop(monkeypatch):
    import paddleface.nms as nms
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(300):
        n = int(rng.integers(1, 200))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (n, 2))], 1).astype(np.float32)
        scores = np.round(rng.uniform(size=n), 1).astype(np.float32)  # ties too
        cases.append((boxes, scores, float(rng.choice([0.1, 0.3, 0.5])), int(rng.choice([-1, 5]))))
    # a chain where each box suppresses only the next: longer than the passes allow
    chain = np.array([[6 * i, 0, 6 * i + 10, 10] for i in range(30)], np.float32)
    cases.append((chain, np.linspace(1, 0.1, 30).astype(np.float32), 0.2, -1))
    fast = [hard_nms(b, s, t, keep=k, offset=1.0) for b, s, t, k in cases]
    assert fast[-1].tolist() == list(range(0, 30, 2))
    monkeypatch.setattr(nms, "greedy_from_matrix", lambda suppress: None)  # the loop only
    for (b, s, t, k), kept in zip(cases, fast):
        assert hard_nms(b, s, t, keep=k, offset=1.0).tolist() == kept.tolist()
