"""The ONNX Runtime engine against dygraph for every id, engine="auto", output names, the
export cache, and evaluation and deploy/python/infer.py on ONNX Runtime."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from paddleface.cli import main
from paddleface.detector import FaceDetector
from paddleface.engine import DygraphEngine, choose_engine
from paddleface.errors import PaddleFaceError
from paddleface.image_io import read_image
from paddleface.preprocess import prepare
from paddleface.registry import REGISTRY, get_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory):
    """Seeded weights for the ids without published ones (the ONNX cache is keyed by a file)."""
    import paddle
    folder = tmp_path_factory.mktemp("untrained")

    def weights(model_id):
        path = folder / f"{model_id}.pdparams"
        if not path.is_file():
            paddle.seed(0)
            paddle.save(get_record(model_id).build().state_dict(), str(path))
        return str(path)
    return weights


def onnx_detector(model_id, get_detector, untrained_weights):
    if get_record(model_id).checkpoint is None:
        return FaceDetector(model_id, weights=untrained_weights(model_id), device="cpu",
                            engine="onnxruntime")
    return get_detector(model_id, "onnxruntime")


# retinaface-r50's ONNX Runtime engine is checked against the upstream outputs on four inputs
# in test_retinaface_r50.py (its weights are synthetic, made there once per session)
@pytest.mark.parametrize("model_id", [m for m in REGISTRY if m != "retinaface-r50"])
def test_onnxruntime_matches_dygraph_on_batches_and_sizes(shared, get_detector,
                                                          untrained_weights, model_id):
    det = onnx_detector(model_id, get_detector, untrained_weights)
    assert det.engine.name == "onnxruntime"
    dygraph = DygraphEngine(det.net)
    photo = read_image(shared / "images" / "crowd.jpg")
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    # a batch of two different images of one size; the any-size models also at an odd size
    sides = [-1] if det.record.preprocess.resize == "fixed" else [320, 257]
    for side in sides:
        batch = np.stack([prepare(det.preprocess, im, long_side=side).tensor
                          for im in (photo, mirrored)])
        ours, ref = det.forward(batch), dygraph(batch)
        assert len(ours) == len(ref) and (ours[2] is None) == (not det.record.landmarks)
        for a, b in zip(ours, ref):
            if b is not None:
                assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4, model_id


def test_onnx_graph_names_match_deploy_json(get_detector):
    det = get_detector("rfb-lm", "onnxruntime")
    onnx_path = det.engine.path
    info = json.loads((onnx_path.parent / "deploy.json").read_text())
    assert [o.name for o in det.engine.session.get_outputs()] == info["outputs"] \
        == ["loc", "conf", "landms"]
    (inp,) = det.engine.session.get_inputs()
    assert inp.name == "image" and isinstance(inp.shape[0], str)  # dynamic batch
    assert all(isinstance(d, str) for d in (inp.shape[2], inp.shape[3]))  # any size
    assert info["export"]["max_abs_diff"] <= 1e-4
    fixed = get_detector("ulfd-slim-320", "onnxruntime").engine.session
    assert [o.name for o in fixed.get_outputs()] == ["loc", "conf"]
    assert fixed.get_inputs()[0].shape[1:] == [3, 240, 320]


def test_detect_batch_on_onnxruntime_equals_detect(shared, get_detector):
    det = get_detector("ulfd-rfb-320", "onnxruntime")
    images = [read_image(shared / "images" / n) for n in ("crowd.jpg", "2.jpg", "13.jpg")]
    one_by_one = [det.detect(im) for im in images]
    for batch, single in zip(det.detect_batch(images, batch_size=3), one_by_one):
        assert len(batch) == len(single)
        assert all(np.abs(a.box - b.box).max() < 1e-3 for a, b in zip(batch, single))


def test_auto_picks_per_record_and_device(monkeypatch):
    rec = get_record("ulfd-rfb-320")
    engine, why = choose_engine(rec, "cpu")
    assert engine == "onnxruntime" and "fastest" in why
    assert choose_engine(rec, "gpu")[0] == "inference"
    assert choose_engine(rec, "cpu", weights_from_file=False)[0] == "dygraph"
    # the record's measured order decides
    assert choose_engine(replace(rec, cpu_engines=("inference", "onnxruntime")), "cpu")[0] \
        == "inference"
    import paddleface.engine as engine_module
    monkeypatch.setattr(engine_module, "missing_packages",
                        lambda e: ["onnxruntime"] if e == "onnxruntime" else [])
    engine, why = choose_engine(rec, "cpu")
    assert engine == "inference" and "onnxruntime is not installed" in why


def test_engine_choice_is_shown_and_mistakes_are_one_sentence(shared, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "CPU engine" in out.splitlines()[0]
    assert "engine=auto on CPU runs onnxruntime for every id" in out
    assert main(["detect", str(shared / "images/2.jpg"), "-m", "ulfd-slim-320", "--verbose",
                 "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "ulfd-slim-320: engine onnxruntime, 1 thread: ONNX Runtime is installed" in err
    net = get_record("ulfd-slim-320").build()
    with pytest.raises(PaddleFaceError, match="a network given in memory runs with"):
        FaceDetector("ulfd-slim-320", network=net, device="cpu", engine="onnxruntime")
    assert FaceDetector("ulfd-slim-320", network=net, device="cpu").engine.name == "dygraph"
    with pytest.raises(PaddleFaceError, match="engine must be one of"):
        FaceDetector("ulfd-slim-320", device="cpu", engine="tensorrt")


def test_onnx_cache_is_built_once_and_a_bad_export_is_refused(tmp_path, monkeypatch):
    import paddleface.engine as engine_module
    import paddleface.onnx_export as onnx_export
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(engine_module, "compare_with_dygraph", lambda *a: float("nan"))
    with pytest.raises(PaddleFaceError, match="differs from the dygraph network by nan"):
        FaceDetector("ulfd-slim-320", device="cpu", engine="onnxruntime")
    assert not list((tmp_path / "home" / "onnx").iterdir())  # nothing half-built is kept
    monkeypatch.undo()
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    FaceDetector("ulfd-slim-320", device="cpu", engine="onnxruntime")

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")
    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    assert FaceDetector("ulfd-slim-320", device="cpu").engine.name == "onnxruntime"


@pytest.mark.parametrize("model_id,side", [("ulfd-rfb-320", None), ("rfb-lm", 320)])
def test_eval_on_onnxruntime_gives_the_inference_ap(shared, tmp_path, model_id, side):
    images = tmp_path / "images"
    names = sorted((shared / "widerface/val/subset.txt").read_text().split())[:24]
    for name in names:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).symlink_to(shared / "widerface/val/images" / name)
    ap = {}
    for engine in ("inference", "onnxruntime"):
        out = tmp_path / engine
        assert main(["eval", model_id, "--images", str(images), "--subset", "--engine", engine,
                     "--gt", str(shared / "widerface/ground_truth"), "--device", "cpu",
                     "--pred-dir", str(out / "pred")] + (["--long-side", str(side)] if side else [])) == 0
        ap[engine] = json.loads((out / "pred" / "summary.json").read_text())["ap"]
    assert ap["inference"]["easy"] > 0.2
    for s in ("easy", "medium", "hard"):
        assert abs(ap["onnxruntime"][s] - ap["inference"][s]) <= 1e-3, (s, ap)


def test_deploy_infer_runs_the_onnx_export(shared, tmp_path):
    out = tmp_path / "exp"
    assert main(["export", "rfb-lm", "--format", "onnx", "--out", str(out)]) == 0
    info = json.loads((out / "deploy.json").read_text())
    assert info["input_shape"] == [None, 3, None, None] and info["export"]["outputs"] == info["outputs"]
    r = subprocess.run([sys.executable, str(ROOT / "deploy/python/infer.py"), "--model-dir",
                        str(out), str(shared / "images/crowd.jpg"), "--engine", "onnxruntime",
                        "--json", str(tmp_path / "d.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    faces = json.loads((tmp_path / "d.json").read_text())["images"][str(shared / "images/crowd.jpg")]["faces"]
    ref = json.loads((shared / "reference/fd1mb/RBF_Final/detections.json").read_text())
    ref = np.array(ref["detections"]["crowd.jpg"])
    ref[:, :4] = np.clip(ref[:, :4], 0, [1600, 898, 1600, 898])  # detect clips to the image
    ours = np.array([f["box"] for f in faces])
    assert ours.shape == ref[:, :4].shape
    assert np.abs(np.sort(ours, 0) - np.sort(ref[:, :4], 0)).max() <= 0.5
    r = subprocess.run([sys.executable, str(ROOT / "deploy/python/infer.py"), "--model-dir",
                        str(out), str(shared / "images/crowd.jpg"), "--engine", "inference"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no model.pdiparams for --engine inference" in r.stderr


def test_an_any_size_model_exports_at_a_pinned_size(shared, tmp_path):
    out = tmp_path / "pinned"
    assert main(["export", "rfb-lm", "--format", "onnx", "--out", str(out),
                 "--input-size", "320x240"]) == 0
    info = json.loads((out / "deploy.json").read_text())
    assert info["input_shape"] == [None, 3, 240, 320] and info["export"]["max_abs_diff"] <= 1e-4
