"""The ports are the upstream networks: raw outputs and final detections match PyTorch."""
import numpy as np
import pytest

from paddleface.box_coder import decode_boxes
from paddleface.image_io import read_image
from paddleface.preprocess import normalize
from paddleface.registry import REGISTRY

from conftest import REFERENCE_DIRS, load_reference, npz_input, reference_npz, shared_dir

NPZ_CASES = [(mid, p.name) for mid in REFERENCE_DIRS for p in reference_npz(shared_dir(), mid)]


@pytest.mark.parametrize("engine", ["dygraph", "inference"])
@pytest.mark.parametrize("model_id,npz", NPZ_CASES)
def test_raw_outputs_match_upstream(shared, get_detector, model_id, npz, engine):
    record = REGISTRY[model_id]
    z = np.load(shared / "reference" / REFERENCE_DIRS[model_id] / npz)
    image = npz_input(z)
    loc, conf, landms = get_detector(model_id, engine).forward(normalize(record.preprocess, image)[None])
    h, w = image.shape[:2]
    if "scores" in z.files:  # ULFD stores softmax scores and decoded corner-form boxes
        assert np.abs(conf[0] - z["scores"]).max() < 1e-4
        boxes = decode_boxes(loc[0], record.priors(h, w), record.priors.variances)
        assert np.abs(boxes - z["boxes"]).max() < 1e-4
    else:
        assert np.abs(conf[0] - z["conf"]).max() < 1e-4
        assert np.abs(loc[0] - z["loc"]).max() < 1e-3
        assert np.abs(landms[0] - z["landms"]).max() < 1e-3


def _match(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """For each reference row, the index of our row with the nearest box (one-to-one)."""
    d = np.abs(ours[:, None, :4] - ref[None, :, :4]).max(-1)
    taken, out = set(), []
    for j in range(len(ref)):
        for i in np.argsort(d[:, j]):
            if i not in taken:
                taken.add(i)
                out.append(i)
                break
    return np.array(out, dtype=int)


WITH_DETECTIONS = [m for m in REFERENCE_DIRS
                   if (shared_dir() / "reference" / REFERENCE_DIRS[m] / "detections.json").is_file()]


@pytest.mark.parametrize("model_id", WITH_DETECTIONS)
def test_detections_match_upstream(shared, get_detector, model_id):
    det = get_detector(model_id)
    reference = load_reference(shared, model_id)["detections"]
    width = 15 if det.record.landmarks else 5
    assert len(reference) == 26
    for name, rows in reference.items():
        ref = np.asarray(rows, dtype=np.float64).reshape(-1, width)
        image = read_image(shared / "images" / name)
        h, w = image.shape[:2]
        # upstream leaves boxes that cross the border unclipped; the detector clips them
        ref[:, :4] = np.clip(ref[:, :4], 0, [w, h, w, h])
        faces = det.detect(image)
        assert len(faces) == len(ref), f"{model_id} {name}: {len(faces)} faces, upstream {len(ref)}"
        if not len(ref):
            continue
        ours = np.array([np.concatenate([f.box, [f.score],
                                         f.landmarks.ravel() if f.landmarks is not None else []])
                         for f in faces])
        ours = ours[_match(ours, ref)]
        assert np.abs(ours[:, :4] - ref[:, :4]).max() <= 0.5, f"{model_id} {name}: boxes"
        # the reference stores 5 decimals: allow that rounding on top of 1e-4
        assert np.abs(ours[:, 4] - ref[:, 4]).max() <= 1e-4 + 5e-6, f"{model_id} {name}: scores"
        if width == 15:
            assert np.abs(ours[:, 5:] - ref[:, 5:]).max() <= 0.5, f"{model_id} {name}: landmarks"


@pytest.mark.parametrize("model_id", list(REGISTRY))
def test_record_params_and_flops_are_measured(model_id):
    from paddleface.profile import count_macs, count_params
    record = REGISTRY[model_id]
    net = record.build()
    assert count_params(net) == record.params
    assert count_macs(net, record.flops_input) == record.flops


def test_blazeface_letterbox_matches_upstream_input(shared):
    """The demo's letterbox (long side to 320/640, short side padded to a multiple of 16)."""
    from paddleface.preprocess import resize_for
    for side in (320, 640):
        rec = REGISTRY[f"blazeface-{side}"]
        for name in ("2", "crowd", "13"):
            z = np.load(shared / "reference" / REFERENCE_DIRS[rec.id] / f"{name}.npz")
            lb, _, _, _ = resize_for(rec.preprocess, read_image(shared / "images" / f"{name}.jpg"))
            assert lb.shape == z["letterboxed_bgr"].shape
            assert np.abs(np.round(lb) - z["letterboxed_bgr"]).max() <= 1


def test_blazeface_detections_land_on_faces(shared, get_detector):
    """No upstream detections are stored for BlazeFace: its boxes must agree with rfb-lm's."""
    img = read_image(shared / "images" / "crowd.jpg")
    blaze = get_detector("blazeface-640").detect(img)
    rfb = get_detector("rfb-lm").detect(img)
    assert len(blaze) >= 8
    from paddleface.training.matching import iou_matrix
    iou = iou_matrix(np.array([f.box for f in blaze]), np.array([f.box for f in rfb]))
    # (BlazeFace at its demo threshold 0.3 also reports the many small faces of the crowd)
    assert (iou.max(0) > 0.5).mean() >= 0.8
    assert all(f.landmarks is not None and f.landmarks.shape == (5, 2) for f in blaze)
