"""Bad and unusual input: every case gets a clear error or correct handling."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from paddleface.cli import main
from paddleface.errors import PaddleFaceError
from paddleface.image_io import as_bgr, read_image


@pytest.fixture(scope="module")
def crowd(shared):
    return read_image(shared / "images" / "crowd.jpg")


def test_missing_folder_and_non_image(tmp_path):
    with pytest.raises(PaddleFaceError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(PaddleFaceError, match="is a folder"):
        read_image(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PaddleFaceError, match="not a readable image"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PaddleFaceError, match="empty"):
        read_image(tmp_path / "empty.jpg")


def test_truncated_jpeg(shared, tmp_path):
    data = (shared / "images" / "2.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:200])
    with pytest.raises(PaddleFaceError, match="cut.jpg: not a readable image"):
        read_image(tmp_path / "cut.jpg")


def test_grayscale_and_rgba_png_give_the_colour_faces(crowd, get_detector, tmp_path):
    det = get_detector("rfb-lm")
    gray = cv2.cvtColor(crowd, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == crowd.shape and g.dtype == np.uint8
    assert len(det.detect(gray)) >= 10  # a 2-D array is accepted directly
    rgba = cv2.cvtColor(crowd, cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    a = read_image(tmp_path / "a.png")
    assert np.array_equal(a, crowd)
    assert [f.box.tolist() for f in det.detect(rgba)] == [f.box.tolist() for f in det.detect(crowd)]


@pytest.mark.parametrize("model_id", ["ulfd-rfb-320", "rfb-lm"])
def test_tiny_and_huge_images(get_detector, model_id):
    det = get_detector(model_id)
    # a flat grey pixel blown up to the network size holds no face
    assert det.detect(np.full((1, 1, 3), 128, np.uint8)) == []
    big = np.zeros((8000, 8000, 3), np.uint8)
    assert det.detect(big) == []


def test_bad_arrays():
    with pytest.raises(PaddleFaceError, match="H x W x 3"):
        as_bgr(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(PaddleFaceError, match="empty"):
        as_bgr(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(PaddleFaceError, match="uint8"):
        as_bgr(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(PaddleFaceError, match="numpy array"):
        as_bgr("image.jpg")


def test_batch_equals_one_by_one(shared, get_detector):
    det = get_detector("rfb-lm")
    images = [read_image(shared / "images" / n) for n in ("2.jpg", "13.jpg", "crowd.jpg", "2.jpg")]
    batch = det.detect_batch(images)
    for im, faces in zip(images, batch):
        single = det.detect(im)
        assert len(single) == len(faces)
        for a, b in zip(single, faces):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-5


def test_cli_batch_goes_on_and_exits_nonzero(shared, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    out_json = tmp_path / "out.json"
    code = main(["detect", str(shared / "images" / "crowd.jpg"), str(tmp_path / "bad.jpg"),
                 str(tmp_path / "missing.jpg"), "--model", "rfb-lm", "--json", str(out_json),
                 "--out", str(tmp_path / "drawn"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert "bad.jpg: not a readable image" in err and "missing.jpg: no such file" in err
    result = json.loads(out_json.read_text())["images"]
    assert len(result[str(shared / "images" / "crowd.jpg")]["faces"]) == 14
    assert (tmp_path / "drawn" / "crowd.jpg").is_file()


def test_cli_detect_crowd_matches_upstream(shared, tmp_path):
    """The issue's acceptance command, run as a user would (python -m paddleface)."""
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "paddleface", "detect",
                        str(shared / "images" / "crowd.jpg"), "--model", "rfb-lm", "--json",
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    faces = json.loads(out.read_text())["images"][str(shared / "images" / "crowd.jpg")]["faces"]
    ref = json.loads((shared / "reference/fd1mb/RBF_Final/detections.json").read_text())
    ref = np.array(ref["detections"]["crowd.jpg"])
    ref[:, :4] = np.clip(ref[:, :4], 0, [1600, 898, 1600, 898])  # upstream does not clip
    ours = np.array([f["box"] + [f["score"]] + sum(f["landmarks"], []) for f in faces])
    assert ours.shape == ref.shape
    order = np.lexsort((ours[:, 0], -ours[:, 4])), np.lexsort((ref[:, 0], -ref[:, 4]))
    assert np.abs(ours[order[0]][:, :4] - ref[order[1]][:, :4]).max() <= 0.5
    assert np.abs(ours[order[0]][:, 5:] - ref[order[1]][:, 5:]).max() <= 0.5


def test_unknown_model_is_one_sentence(capsys):
    from paddleface.registry import get_record
    with pytest.raises(PaddleFaceError, match="unknown model id 'nope'; known ids"):
        get_record("nope")


def test_models_lists_every_id(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for mid in ("ulfd-rfb-320", "rfb-lm", "retinaface-mnet"):
        assert mid in out
