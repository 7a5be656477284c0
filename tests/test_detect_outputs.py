"""What `paddleface detect` and the detector hand back: files, JSON, video, crops, limits."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from paddleface.cli import main
from paddleface.errors import PaddleFaceError
from paddleface.image_io import read_image


@pytest.fixture(scope="module")
def crowd(shared):
    return read_image(shared / "images" / "crowd.jpg")


def write_video(path, frames, fps):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                        (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(f)
    w.release()


def test_outputs_keep_relative_paths_and_the_video_frame_rate(shared, crowd, tmp_path):
    src = tmp_path / "a"
    (src / "sub").mkdir(parents=True)
    two = read_image(shared / "images" / "2.jpg")
    cv2.imwrite(str(src / "2.jpg"), two)
    cv2.imwrite(str(src / "2.png"), two)
    cv2.imwrite(str(src / "sub" / "2.jpg"), crowd)
    small = [cv2.resize(crowd, (320, 180))] * 4
    write_video(src / "clip.mp4", small, 10)
    write_video(src / "clip.avi", small, 12)
    out, js = tmp_path / "out", tmp_path / "faces.json"
    assert main(["detect", str(src), "-m", "ulfd-slim-320", "--out", str(out), "--json", str(js),
                 "--device", "cpu"]) == 0
    for name in ("2.jpg", "2.png", "sub/2.jpg", "clip.mp4", "clip.avi.mp4"):
        assert (out / name).is_file(), name
    images = json.loads(js.read_text())["images"]
    assert set(images) == {str(src / n) for n in ("2.jpg", "2.png", "sub/2.jpg", "clip.mp4",
                                                   "clip.avi")}
    assert images[str(src / "sub/2.jpg")]["drawn"] == str(out / "sub/2.jpg")
    assert len(images[str(src / "sub/2.jpg")]["faces"]) != len(images[str(src / "2.jpg")]["faces"])
    video = images[str(src / "clip.avi")]
    assert video["fps"] == pytest.approx(12) and len(video["frames"]) == 4
    assert [f["time"] for f in video["frames"]] == pytest.approx([0, 1 / 12, 2 / 12, 3 / 12], abs=1e-4)
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    cap.release()


def test_broken_video_is_one_line_without_ffmpeg_noise(shared, tmp_path):
    data = (shared / "images" / "2.jpg").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + data[:3000])
    r = subprocess.run([sys.executable, "-m", "paddleface", "detect", str(tmp_path / "cut.mp4"),
                        "-m", "ulfd-slim-320", "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'cut.mp4'}: not a readable video",
                                             "1 of 1 inputs failed"], r.stderr


def test_boxes_are_clipped_to_the_image_but_not_for_evaluation(shared, get_detector):
    det = get_detector("rfb-lm")
    image = read_image(shared / "images" / "17.jpg")  # faces cut by the bottom edge
    h, w = image.shape[:2]
    raw = np.array([f.box for f in det.detect_raw(image)])
    assert raw[:, 3].max() > h  # upstream decodes past the edge
    boxes = np.array([f.box for f in det.detect(image)])
    assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= w and boxes[:, [1, 3]].max() <= h
    assert len(boxes) == len(raw)


@pytest.mark.parametrize("model_id", ["rfb-lm", "retinaface-mnet", "blazeface-320", "ulfd-rfb-320"])
def test_degenerate_images_are_handled(get_detector, model_id):
    det = get_detector(model_id)
    for shape in ((2, 3000, 3), (3000, 2, 3), (1, 5000, 3)):
        assert det.detect(np.full(shape, 128, np.uint8)) == []


def test_degenerate_image_does_not_stop_the_batch(shared, tmp_path):
    cv2.imwrite(str(tmp_path / "thin.png"), np.full((2, 3000, 3), 128, np.uint8))
    js = tmp_path / "d.json"
    assert main(["detect", str(tmp_path / "thin.png"), str(shared / "images/2.jpg"), "-m",
                 "blazeface-320", "--json", str(js), "--device", "cpu"]) == 0
    images = json.loads(js.read_text())["images"]
    assert images[str(tmp_path / "thin.png")] == {"width": 3000, "height": 2, "faces": []}


def test_pixel_limit_with_a_clear_message_and_an_override(shared, get_detector, capsys):
    from paddleface.detector import FaceDetector
    det = FaceDetector("rfb-lm", device="cpu", long_side=None)  # origin: no resize
    with pytest.raises(PaddleFaceError, match=r"8000x8000 \(64 M pixels.*--max-pixels"):
        det.detect(np.zeros((8000, 8000, 3), np.uint8))
    image = str(shared / "images/2.jpg")  # 1024x484
    assert main(["detect", image, "--long-side", "origin", "--max-pixels", "400000",
                 "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"error: {image}: the network input would be 1024x484" in err
    assert "over the limit of 0.4 M pixels" in err
    assert main(["detect", image, "--long-side", "origin", "--max-pixels", "600000",
                 "--device", "cpu"]) == 0


def test_settings_are_checked_and_recorded(shared, tmp_path, capsys):
    image = str(shared / "images/crowd.jpg")
    for bad in (["--threshold", "1.5"], ["--nms-iou", "-0.1"], ["--top-k", "0"]):
        with pytest.raises(SystemExit):
            main(["detect", image, *bad])
        assert "between 0 and 1" in capsys.readouterr().err or bad[0] == "--top-k"
    assert main(["detect", image, "-m", "rfb-lm", "--input-size", "320x240"]) == 2
    assert "takes images of any size" in capsys.readouterr().err
    assert main(["detect", image, "-m", "ulfd-rfb-320", "--long-side", "320"]) == 2
    assert "resizes every image to 320x240" in capsys.readouterr().err
    js = tmp_path / "d.json"
    assert main(["detect", image, "-m", "rfb-lm", "--keep-top-k", "3", "--nms-iou", "0.3",
                 "--top-k", "100", "--threshold", "0.5", "--json", str(js), "--device", "cpu"]) == 0
    d = json.loads(js.read_text())
    assert {k: d[k] for k in ("model", "engine", "score_threshold", "nms_iou", "top_k",
                              "keep_top_k", "long_side")} == {
        "model": "rfb-lm", "engine": "onnxruntime", "score_threshold": 0.5, "nms_iou": 0.3,
        "top_k": 100, "keep_top_k": 3, "long_side": 640}
    assert d["weights"].endswith(".pdparams")
    entry = d["images"][image]
    assert (entry["width"], entry["height"]) == (1600, 898) and len(entry["faces"]) == 3


def test_one_face_is_singular(shared, capsys):
    assert main(["detect", str(shared / "images/5.jpg"), "-m", "rfb-lm", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip().endswith(": 1 face")


def test_detect_takes_paths(shared, get_detector):
    det = get_detector("rfb-lm")
    path = shared / "images/2.jpg"
    by_array = det.detect(read_image(path))
    for result in (det.detect(path), det.detect(str(path)), det.detect_batch([path])[0],
                   det.detect_batch(str(path))[0]):
        assert [f.box.tolist() for f in result] == [f.box.tolist() for f in by_array]
    with pytest.raises(PaddleFaceError, match="no such file"):
        det.detect(shared / "images/nope.jpg")


def test_aligned_crops_put_the_landmarks_on_the_template(shared, tmp_path):
    from paddleface.align import ARCFACE_112, similarity_transform
    js, crops = tmp_path / "d.json", tmp_path / "crops"
    image = shared / "images/2.jpg"
    assert main(["detect", str(image), "-m", "rfb-lm", "--save-crops", str(crops), "--json",
                 str(js), "--device", "cpu"]) == 0
    entry = json.loads(js.read_text())["images"][str(image)]
    assert entry["crops"] == [str(crops / f"2.jpg_{k}.jpg") for k in range(len(entry["faces"]))]
    for face, crop in zip(entry["faces"], entry["crops"]):
        assert cv2.imread(crop).shape == (112, 112, 3)
        m = similarity_transform(np.array(face["landmarks"]), ARCFACE_112)
        pts = np.array(face["landmarks"]) @ m[:, :2].T + m[:, 2]
        assert np.abs(pts - ARCFACE_112).max() < 6  # a similarity fits 5 real points closely
    assert main(["detect", str(image), "-m", "ulfd-rfb-320", "--save-crops", str(crops)]) == 2


def test_similarity_transform_recovers_a_known_one():
    from paddleface.align import ARCFACE_112, similarity_transform
    a = np.deg2rad(20)
    rot = 1.7 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = (ARCFACE_112 - [5, 9]) @ np.linalg.inv(rot).T
    m = similarity_transform(src, ARCFACE_112)
    assert np.allclose(src @ m[:, :2].T + m[:, 2], ARCFACE_112, atol=1e-9)


def test_score_label_of_a_face_at_the_top_edge_is_drawn():
    from paddleface.detector import Face
    from paddleface.draw import draw_faces
    image = np.zeros((200, 200, 3), np.uint8)
    drawn = draw_faces(image, [Face(np.array([50.0, 0.0, 150.0, 120.0]), 0.97)])
    assert (drawn > 200).all(-1).sum() > 20  # the white "0.97"


def test_version_and_a_closed_pipe(tmp_path):
    from paddleface import __version__
    r = subprocess.run([sys.executable, "-m", "paddleface", "--version"], capture_output=True,
                       text=True)
    assert r.stdout.strip() == f"paddleface {__version__}"
    r = subprocess.run(f"{sys.executable} -m paddleface models | head -n 1", shell=True,
                       capture_output=True, text=True)
    assert r.stdout.startswith("id") and r.stderr == ""


def test_inputs_sharing_a_name_get_unique_output_names(tmp_path):
    from paddleface.image_io import expand_inputs
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "2.jpg").write_bytes(b"")
    files, errors = expand_inputs([str(tmp_path / "x/2.jpg"), str(tmp_path / "y/2.jpg"),
                                   str(tmp_path / "x/2.jpg"), str(tmp_path / "x")])
    assert errors == []
    assert [(p.parent.name, str(rel)) for p, rel in files] == [("x", "2.jpg"), ("y", "2-1.jpg")]
