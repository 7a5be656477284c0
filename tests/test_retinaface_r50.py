"""retinaface-r50: the upstream ResNet-50 RetinaFace on synthetic weights (the 105 MB release
is not reachable here). shared/reference/retinaface/resnet50_synthetic/make_weights.py writes
the .pth once per session; the upstream code's raw outputs for four inputs are the target."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paddleface.cli import main
from paddleface.errors import PaddleFaceError
from paddleface.registry import get_record

ROOT = Path(__file__).resolve().parents[1]
MODEL = "retinaface-r50"
REFERENCE = "reference/retinaface/resnet50_synthetic"
CASES = ["2_640.npz", "crowd_640.npz", "13_640.npz", "crowd_333.npz"]
# loc and landms are a few units in size; conf is a probability
TOLERANCE = {"loc": 1e-4, "conf": 1e-5, "landms": 1e-4}
MEASURED = {}


@pytest.fixture(scope="session")
def r50_weights_dir(shared, tmp_path_factory) -> Path:
    """A $PADDLEFACE_WEIGHTS folder holding the synthetic retinaface/Resnet50_Final.pth."""
    folder = tmp_path_factory.mktemp("r50-weights")
    pth = folder / get_record(MODEL).checkpoint.path
    pth.parent.mkdir(parents=True)
    r = subprocess.run([sys.executable, str(shared / REFERENCE / "make_weights.py"), str(pth)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return folder


@pytest.fixture(scope="session")
def r50_pth(r50_weights_dir) -> Path:
    return r50_weights_dir / get_record(MODEL).checkpoint.path


@pytest.fixture(scope="session")
def r50_pdparams(r50_pth) -> Path:
    """The synthetic .pth imported by `paddleface convert` (into the per-run cache)."""
    from paddleface.weights import cache_path, sha256_of
    assert main(["convert", MODEL, "--src", str(r50_pth)]) == 0
    out = cache_path(get_record(MODEL), sha256_of(r50_pth))
    assert out.is_file()
    return out


def test_the_torch_free_import_equals_torch_and_x2paddle(r50_pth, tmp_path):
    """The release is not reachable, so its synthetic stand-in takes the torch-free check."""
    import paddle
    from paddleface.torch_import import paddle_params_from_pth
    from paddleface.weights import convert_with_x2paddle, read_torch_state_dict
    ours, theirs = tmp_path / "ours.pdparams", tmp_path / "torch.pdparams"
    paddle.save(paddle_params_from_pth(r50_pth), str(ours))
    paddle.save(convert_with_x2paddle(read_torch_state_dict(r50_pth)), str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.fixture(scope="session")
def r50_detectors(r50_pdparams):
    from paddleface.detector import FaceDetector
    made = {}

    def get(engine):
        if engine not in made:
            made[engine] = FaceDetector(MODEL, weights=str(r50_pdparams), device="cpu",
                                        engine=engine, threads=2)
        return made[engine]
    return get


def test_record_is_the_upstream_cfg_re50():
    rec = get_record(MODEL)
    mnet = get_record("retinaface-mnet")
    assert rec.priors == mnet.priors and rec.preprocess == mnet.preprocess
    assert rec.detection == mnet.detection and rec.evaluation == mnet.evaluation
    assert rec.published_ap["origin"] == {"easy": 0.9548, "medium": 0.9404, "hard": 0.8443}
    r = rec.train
    assert (r.batch_size, r.epochs, r.milestones, r.input_size, r.lr, r.loc_weight) == \
        (24, 100, (70, 90), (840, 840), 1e-3, 2.0)
    assert r.lr_step_unit == "iteration" and r.init == "torchvision_resnet"
    net = rec.build()
    # upstream's net.py: leaky = 0 when out_channel > 64, so FPN and SSH use plain ReLU
    import paddle.nn as nn
    assert not [n for n, m in net.named_sublayers() if isinstance(m, nn.LeakyReLU)]
    # v1.5: the stride is on the 3x3 conv of the first bottleneck of layers 2-4
    for i in (2, 3, 4):
        block = getattr(net.body, f"layer{i}")[0]
        assert block.conv1._stride == [1, 1] and block.conv2._stride == [2, 2]


def test_parameter_names_are_the_upstream_keys(shared):
    """Every upstream key (x2paddle's renaming of BatchNorm statistics), every shape."""
    keys = json.loads((shared / REFERENCE / "keys.json").read_text())
    rename = {"running_mean": "_mean", "running_var": "_variance"}
    upstream = {}
    for name, shape in keys:
        if name.endswith("num_batches_tracked"):
            continue
        head, _, last = name.rpartition(".")
        upstream[f"{head}.{rename.get(last, last)}"] = tuple(shape)
    ours = {k: tuple(v.shape) for k, v in get_record(MODEL).build().state_dict().items()}
    assert ours == upstream


@pytest.mark.parametrize("engine", ["dygraph", "inference", "onnxruntime"])
def test_raw_outputs_match_upstream_on_every_engine(shared, r50_detectors, engine):
    from paddleface.preprocess import normalize
    det = r50_detectors(engine)
    assert det.engine.name == engine
    worst = {}
    for case in CASES:
        z = np.load(shared / REFERENCE / case)
        x = normalize(det.record.preprocess, z["input_bgr_uint8"])[None]
        loc, conf, landms = det.forward(x)
        for name, ours in (("loc", loc), ("conf", conf), ("landms", landms)):
            diff = float(np.abs(ours[0] - z[name]).max())
            MEASURED[engine, case, name] = diff
            worst[case, name] = diff
            assert diff <= TOLERANCE[name], (engine, case, name, diff)
    print(f"\n{engine}: " + ", ".join(f"{c[:-4]} {n} {d:.2e}" for (c, n), d in worst.items()))


def test_checkpoints_of_the_other_backbone_are_refused_naming_their_id(shared, r50_pth,
                                                                         tmp_path, capsys):
    mnet = shared / "weights/retinaface/mobilenet0.25_Final.pth"
    from paddleface.weights import convert_checkpoint
    with pytest.raises(PaddleFaceError) as e:
        convert_checkpoint(get_record(MODEL), mnet, tmp_path / "x.pdparams")
    msg = str(e.value)
    assert "not a retinaface-r50 checkpoint" in msg and "\n" not in msg
    assert "its keys and shapes match mnet-lm, retinaface-mnet: pass -m mnet-lm" in msg
    assert not (tmp_path / "x.pdparams").exists()
    # the R50 file given to the mobilenet model, through the command line
    assert main(["detect", str(shared / "images/2.jpg"), "-m", "retinaface-mnet",
                 "--weights", str(r50_pth), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not a retinaface-mnet checkpoint" in err
    assert "its keys and shapes match retinaface-r50: pass -m retinaface-r50" in err
    assert len(err.strip().splitlines()) == 1


def test_detect_eval_and_export(shared, r50_pdparams, r50_detectors, tmp_path, capsys):
    r50_detectors("onnxruntime")  # the ONNX export of these weights is cached by now
    weights = ["--weights", str(r50_pdparams)]
    assert main(["detect", str(shared / "images/2.jpg"), "-m", MODEL, *weights, "--device",
                 "cpu", "--threads", "2", "--json", str(tmp_path / "d.json")]) == 0
    faces = json.loads((tmp_path / "d.json").read_text())["images"]
    faces = next(iter(faces.values()))["faces"]
    assert faces and all(len(f["landmarks"]) == 5 for f in faces)
    images = tmp_path / "images"
    names = sorted((shared / "widerface/val/subset.txt").read_text().split())[:2]
    for name in names:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).symlink_to(shared / "widerface/val/images" / name)
    assert main(["eval", MODEL, *weights, "--images", str(images), "--subset", "--long-side",
                 "320", "--gt", str(shared / "widerface/ground_truth"), "--device", "cpu",
                 "--threads", "2", "--pred-dir", str(tmp_path / "pred")]) == 0
    summary = json.loads((tmp_path / "pred/summary.json").read_text())
    assert summary["model"] == MODEL and set(summary["ap"]) == {"easy", "medium", "hard"}
    for fmt in ("inference", "onnx"):
        out = tmp_path / fmt
        assert main(["export", MODEL, "--format", fmt, "--out", str(out), *weights,
                     "--input-size", "320x240"]) == 0
        info = json.loads((out / "deploy.json").read_text())
        assert info["model"] == MODEL and info["input_shape"] == [None, 3, 240, 320]
        diff = info["export"]["max_abs_diff"]
        assert (max(diff.values()) if isinstance(diff, dict) else diff) <= 1e-4
    capsys.readouterr()
    # Lite: refused with the reason, before any weights are read
    assert main(["export", MODEL, "--format", "lite", "--out", str(tmp_path / "lite")]) == 2
    err = capsys.readouterr().err
    assert "not a mobile model" in err and "--format inference or onnx" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "lite").exists()


def test_serve_runs_it_from_the_weights_folder(shared, r50_weights_dir, r50_pdparams,
                                               r50_detectors, monkeypatch, tmp_path):
    """A user's Resnet50_Final.pth under $PADDLEFACE_WEIGHTS (here the synthetic one): the
    service converts it (the cache already holds it) and answers with its faces."""
    import requests
    from paddleface.serve.process import ServiceProcess
    expected = r50_detectors("onnxruntime").detect(shared / "images/2.jpg")
    monkeypatch.setenv("PADDLEFACE_WEIGHTS", str(r50_weights_dir))
    svc = ServiceProcess(["--model", MODEL, "--threads", "2", "--no-access-log"],
                         log=tmp_path / "serve.log")
    svc.start()
    try:
        r = requests.post(f"{svc.url}/detect", data=(shared / "images/2.jpg").read_bytes(),
                          headers={"Content-Type": "image/jpeg"}, timeout=300)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == MODEL
        faces = body["images"][0]["faces"]
        assert len(faces) == len(expected) > 0
        boxes = np.array([f["box"] for f in faces])
        assert np.abs(boxes - np.array([f.box for f in expected])).max() <= 1e-2
    finally:
        svc.stop()


def test_models_lists_params_and_gmacs(capsys):
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(MODEL))
    assert "27352k" in row and "33.198@640x480" in row
