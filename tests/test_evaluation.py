"""The WIDER FACE evaluator on hand-built cases, and every id against the upstream AP."""
import json

import numpy as np
import pytest

from paddleface.evaluation.predict import format_boxes
from paddleface.evaluation.widerface import GroundTruth, evaluate, read_prediction_file
from paddleface.errors import PaddleFaceError

from conftest import interrupt_when_ready


def gt_of(boxes_per_image, counted=None):
    """A GroundTruth where every face counts in every setting unless ``counted`` says otherwise."""
    boxes = {k: np.asarray(v, dtype=float).reshape(-1, 4) for k, v in boxes_per_image.items()}
    keep = {}
    for s in ("easy", "medium", "hard"):
        keep[s] = {k: np.asarray((counted or {}).get(s, {}).get(k, range(len(b))), dtype=np.int64)
                   for k, b in boxes.items()}
    return GroundTruth(boxes, keep, list(boxes))


def preds_of(d):
    return {k: np.asarray(v, dtype=float).reshape(-1, 5) for k, v in d.items()}


def test_perfect_predictions_give_ap_1():
    gt = gt_of({"e/a": [[10, 10, 50, 50], [100, 100, 40, 40]], "e/b": [[0, 0, 20, 30]]})
    preds = preds_of({"e/a": [[10, 10, 50, 50, .9], [100, 100, 40, 40, .8]],
                      "e/b": [[0, 0, 20, 30, .7]]})
    assert evaluate(preds, gt).ap == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})


def test_a_duplicate_lowers_precision():
    gt = gt_of({"e/a": [[10, 10, 50, 50], [100, 100, 40, 40]]})
    clean = preds_of({"e/a": [[10, 10, 50, 50, .9], [100, 100, 40, 40, .5]]})
    dup = preds_of({"e/a": [[10, 10, 50, 50, .9], [11, 11, 50, 50, .8], [100, 100, 40, 40, .5]]})
    a, b = evaluate(clean, gt).ap["easy"], evaluate(dup, gt).ap["easy"]
    assert a == pytest.approx(1.0) and b < a
    # the duplicate ranks between the two true faces: precision at full recall is 2/3
    assert b == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3, abs=1e-3)


def test_a_face_outside_the_setting_is_ignored():
    # face 1 is small and only counts in "hard"; detecting it costs nothing in "easy"
    gt = gt_of({"e/a": [[10, 10, 50, 50], [200, 200, 8, 8]]},
               counted={"easy": {"e/a": [0]}, "medium": {"e/a": [0]}})
    preds = preds_of({"e/a": [[200, 200, 8, 8, .95], [10, 10, 50, 50, .9]]})
    ap = evaluate(preds, gt).ap
    assert ap["easy"] == pytest.approx(1.0) and ap["hard"] == pytest.approx(1.0)
    missed = preds_of({"e/a": [[10, 10, 50, 50, .9], [300, 300, 5, 5, .1]]})
    assert evaluate(missed, gt).ap["hard"] == pytest.approx(0.5)


def test_an_empty_image_and_iou_threshold():
    gt = gt_of({"e/a": [[10, 10, 50, 50]], "e/empty": []})
    preds = preds_of({"e/a": [[10, 10, 50, 50, .9]], "e/empty": [[0, 0, 10, 10, .95]]})
    # as in the official toolkit, an image without faces is skipped: its detections are not
    # false positives (and it adds no faces)
    r = evaluate(preds, gt)
    assert r.ap["easy"] == pytest.approx(1.0) and r.faces["easy"] == 1
    # IoU below 0.5 (+1 convention) is a miss
    off = preds_of({"e/a": [[40, 10, 50, 50, .9]], "e/empty": []})
    assert evaluate(off, gt).ap["easy"] == pytest.approx(0.0)


def test_subset_and_missing_predictions():
    gt = gt_of({"e/a": [[10, 10, 50, 50]], "e/b": [[0, 0, 20, 20]]})
    preds = preds_of({"e/a": [[10, 10, 50, 50, .9]]})
    with pytest.raises(PaddleFaceError, match="no prediction file"):
        evaluate(preds, gt)
    r = evaluate(preds, gt, subset=True)
    assert r.images == 1 and r.ap["easy"] == pytest.approx(1.0)


def test_prediction_file_errors(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("x\n2\n1 2 3 4 0.5\n1 2 three 4 0.5\n")
    with pytest.raises(PaddleFaceError, match="x.txt:4: 'x y w h score' was expected"):
        read_prediction_file(f)
    f.write_text("x\nmany\n")
    with pytest.raises(PaddleFaceError, match="x.txt:2"):
        read_prediction_file(f)


def test_box_formats():
    boxes = np.array([[10.7, 20.2, 30.1, 40.9]])
    assert format_boxes(boxes, np.array([1.2]), "floor_ceil") == ["10 20 20 21 1.000"]
    assert format_boxes(boxes, np.array([0.5]), "int_plus1") == ["10 20 21 21 0.5000000000"]
    assert format_boxes(boxes, np.array([0.5]), "int") == ["10 20 20 20 0.5000000000"]


# every id at one protocol on the 488-image subset (retinaface-mnet@origin: bench/eval_speed.py)
CASES = [("ulfd-slim-320", None), ("ulfd-slim-640", None), ("ulfd-rfb-320", None),
         ("ulfd-rfb-640", None), ("slim-lm", 640), ("rfb-lm", 640), ("rfb-lm", 320),
         ("mnet-lm", 640), ("retinaface-mnet", 640), ("blazeface-320", None),
         ("blazeface-640", None)]


@pytest.mark.parametrize("model_id,side", CASES)
def test_subset_ap_matches_upstream(shared, tmp_path, model_id, side, capsys):
    from paddleface.cli import main
    upstream = json.loads((shared / "widerface" / "upstream_ap.json").read_text())
    key = model_id if side is None else f"{model_id}@{side}"
    if model_id.startswith("blazeface"):
        key = f"{model_id}@{model_id.split('-')[1]}"
    args = ["eval", model_id, "--images", str(shared / "widerface/val/images"),
            "--gt", str(shared / "widerface/ground_truth"), "--subset", "--device", "cpu",
            "--pred-dir", str(tmp_path / "pred")]
    if side:
        args += ["--long-side", str(side)]
    assert main(args) == 0
    summary = json.loads((tmp_path / "pred/summary.json").read_text())
    assert summary["images"] == 488
    for s in ("easy", "medium", "hard"):
        assert abs(summary["ap"][s] - upstream[key]["ap"][s]) <= 0.002, (key, s, summary["ap"])
    assert (tmp_path / "pred/pr_curves.png").stat().st_size > 10_000
    # a second run resumes: nothing is predicted again
    capsys.readouterr()
    assert main(args) == 0
    assert "predicted" not in capsys.readouterr().out


@pytest.fixture(scope="module")
def two_events(shared, tmp_path_factory):
    """16 val images (the first two events of the subset), for quick end-to-end runs."""
    root = tmp_path_factory.mktemp("two-events")
    for event in sorted((shared / "widerface/val/images").iterdir())[:2]:
        (root / event.name).symlink_to(event)
    return root


def eval_args(shared, images, model_id, *extra):
    return ["eval", model_id, "--images", str(images), "--gt", str(shared / "widerface/ground_truth"),
            "--subset", "--device", "cpu", *map(str, extra)]


def test_predictions_of_other_weights_are_refused_or_redone(shared, two_events, tmp_path, capsys):
    """A resumed evaluation must never report the AP of predictions made by other weights."""
    from paddleface.cli import main
    from paddleface.weights import sha256_of
    pred = tmp_path / "pred"
    assert main(eval_args(shared, two_events, "ulfd-rfb-320", "--pred-dir", pred)) == 0
    first = json.loads((pred / "summary.json").read_text())
    assert first["engine"] == "onnxruntime" and len(first["weights"]["sha256"]) == 64
    assert first["protocol"]["box_format"] == "floor_ceil"
    other = shared / "weights/ulfd/version-RFB-640.pth"  # same architecture, other weights
    capsys.readouterr()
    assert main(eval_args(shared, two_events, "ulfd-rfb-320", "--pred-dir", pred,
                          "--weights", other)) == 2
    err = capsys.readouterr().err
    assert "other weights" in err and "--redo" in err and len(err.strip().splitlines()) == 1
    assert json.loads((pred / "summary.json").read_text()) == first  # nothing reported
    assert main(eval_args(shared, two_events, "ulfd-rfb-320", "--pred-dir", pred,
                          "--weights", other, "--redo")) == 0
    out = capsys.readouterr().out
    assert "deleted them (--redo)" in out and "predicted 16 images" in out
    second = json.loads((pred / "summary.json").read_text())
    assert second["weights"] == {"path": str(other), "sha256": sha256_of(other)}
    assert second["ap"] != first["ap"]
    # the same weights again: reused, and said so
    assert main(eval_args(shared, two_events, "ulfd-rfb-320", "--pred-dir", pred,
                          "--weights", other)) == 0
    out = capsys.readouterr().out
    assert "reusing 16 predictions" in out and "predicted" not in out


def test_default_prediction_folder_depends_on_the_weights(shared, two_events, tmp_path,
                                                          monkeypatch):
    from paddleface.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(eval_args(shared, two_events, "ulfd-rfb-320")) == 0
    assert main(eval_args(shared, two_events, "ulfd-rfb-320",
                          "--weights", shared / "weights/ulfd/version-RFB-640.pth")) == 0
    summaries = sorted((tmp_path / "output/eval/ulfd-rfb-320").glob("*/summary.json"))
    assert len(summaries) == 2
    assert len({json.loads(p.read_text())["weights"]["sha256"] for p in summaries}) == 2


def test_sibling_evaluations_keep_their_own_summary(shared, two_events, tmp_path):
    from paddleface.cli import main
    for model_id in ("ulfd-slim-320", "ulfd-rfb-320"):
        assert main(eval_args(shared, two_events, model_id, "--pred-dir",
                              tmp_path / model_id)) == 0
    for model_id in ("ulfd-slim-320", "ulfd-rfb-320"):
        assert json.loads((tmp_path / model_id / "summary.json").read_text())["model"] == model_id
        assert (tmp_path / model_id / "pr_curves.png").is_file()
    assert not (tmp_path / "summary.json").exists()


def test_ctrl_c_stops_eval_with_one_line_and_it_resumes(shared, tmp_path):
    import subprocess
    import sys
    pred = tmp_path / "pred"
    args = [sys.executable, "-m", "paddleface", *eval_args(
        shared, shared / "widerface/val/images", "ulfd-rfb-320", "--pred-dir", pred)]
    err, seconds, code = interrupt_when_ready(
        args, lambda: len(list(pred.glob("*/*.txt"))) >= 10, 120, "eval")
    assert seconds < 2.0 and code == 130
    lines = [l for l in err.splitlines() if "predict:" not in l and l.strip()]  # progress bar
    assert lines == ["interrupted; rerun to resume"], err
    assert not list(pred.rglob(".*.part")) and not (pred / "summary.json").exists()
    done = len(list(pred.glob("*/*.txt")))
    assert 0 < done < 488
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"reusing {done} predictions" in r.stdout and f"{done} already done" in r.stdout


def test_long_side_on_a_fixed_size_model_is_refused(shared, capsys):
    from paddleface.cli import main
    assert main(eval_args(shared, shared / "widerface/val/images", "ulfd-rfb-320",
                          "--long-side", "640")) == 2
    assert "evaluated at its fixed size 320x240" in capsys.readouterr().err
