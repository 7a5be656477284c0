"""Folder jobs (detect --workers/--shard) and the int8 CPU path (precision="int8")."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from paddleface.batch.manifest import result_path
from paddleface.batch.shard import parse_shard, select_shard, shard_of
from paddleface.cli import main
from paddleface.errors import PaddleFaceError
from paddleface.registry import REGISTRY, get_record


def test_shards_split_a_list_deterministically_and_stay_put_when_files_are_added():
    rels = [Path(f"event{e}/img{i}.jpg") for e in range(5) for i in range(40)]
    items = [(str(r), r) for r in rels]
    parts = [select_shard(items, k, 3) for k in (1, 2, 3)]
    assert sorted(r for p in parts for _, r in p) == sorted(rels)  # each file exactly once
    assert all(len(p) > 40 for p in parts)  # roughly even
    assert select_shard(items[::-1], 2, 3) == parts[1][::-1]  # the listing order does not matter
    grown = items + [(f"new{i}.jpg", Path(f"new{i}.jpg")) for i in range(50)]
    assert set(parts[0]) <= set(select_shard(grown, 1, 3))
    assert shard_of(Path("a/b.jpg"), 4) == shard_of(Path("a/b.jpg"), 4)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(PaddleFaceError, match="K/N"):
            parse_shard(bad)


@pytest.fixture(scope="module")
def photos(shared, tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    for name in ("1.jpg", "2.jpg", "13.jpg", "crowd.jpg"):
        shutil.copy(shared / "images" / name, d / name)
    (d / "sub").mkdir()
    shutil.copy(shared / "images" / "3.jpg", d / "sub" / "3.jpg")
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def faces_of(out: Path, rel: str):
    return json.loads(result_path(out, Path(rel)).read_text())["faces"]


def test_workers_give_the_faces_of_detect_and_a_rerun_resumes(photos, tmp_path, get_detector,
                                                              capsys):
    out = tmp_path / "out"
    args = ["detect", str(photos), "-m", "ulfd-rfb-320", "--device", "cpu", "--out", str(out)]
    assert main(args + ["--workers", "2", "--json", str(tmp_path / "all.json")]) == 1
    text = capsys.readouterr()
    assert "broken.jpg" in text.err  # reported; the rest went on
    assert "6 images: 5 detected, 0 already done, 1 failed" in text.out
    det = get_detector("ulfd-rfb-320")
    for rel in ("1.jpg", "2.jpg", "13.jpg", "crowd.jpg", "sub/3.jpg"):
        want = [f.to_dict() for f in det.detect(str(photos / rel))]
        assert faces_of(out, rel) == want, rel
    merged = json.loads((tmp_path / "all.json").read_text())
    assert len(merged["images"]) == 5 and merged["settings"]["model"] == "ulfd-rfb-320"
    assert merged["settings"]["engine"] == det.engine.name == "onnxruntime"  # engine="auto"
    # a rerun skips what is done; a lost result is made again
    result_path(out, Path("13.jpg")).unlink()
    assert main(args + ["--workers", "2"]) == 1
    assert "6 images: 1 detected, 4 already done, 1 failed" in capsys.readouterr().out
    assert faces_of(out, "13.jpg") == [f.to_dict() for f in det.detect(str(photos / "13.jpg"))]
    # other settings into the same folder would mix results: refused in one sentence
    assert main(args + ["--workers", "1", "--threshold", "0.9"]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "score_threshold" in err and "Traceback" not in err


def test_shards_of_a_folder_cover_it_once(photos, tmp_path, capsys):
    out = tmp_path / "out"
    done = []
    for k in (1, 2):
        main(["detect", str(photos), "-m", "ulfd-rfb-320", "--device", "cpu", "--out", str(out),
              "--shard", f"{k}/2"])
        done.append(sorted(p.name for p in (out / "faces").rglob("*.json")))
    assert done[0] and len(done[0]) < len(done[1])  # shard 1 alone, then both shards
    assert len(done[1]) == 5  # every readable photo once
    assert main(["detect", str(photos), "-m", "ulfd-rfb-320", "--shard", "3/2"]) == 2
    assert main(["detect", str(photos), "-m", "ulfd-rfb-320", "--shard", "1/2"]) == 2  # no --out
    assert "--out" in capsys.readouterr().err


INT8_IDS = [i for i, r in REGISTRY.items() if r.int8_cpu]


def test_int8_is_refused_where_it_is_not_offered_or_without_photos(shared):
    from paddleface.detector import FaceDetector
    slow = next(i for i, r in REGISTRY.items() if not r.int8_cpu and r.checkpoint)
    with pytest.raises(PaddleFaceError, match="not offered"):
        FaceDetector(slow, device="cpu", precision="int8", calibration=shared / "images")
    with pytest.raises(PaddleFaceError, match="precision must be"):
        FaceDetector("ulfd-rfb-320", device="cpu", precision="int4")
    if INT8_IDS:
        with pytest.raises(PaddleFaceError, match="calibrat"):
            FaceDetector(INT8_IDS[0], device="cpu", precision="int8")


@pytest.mark.skipif(not INT8_IDS, reason="no model offers int8 (none was faster here)")
def test_int8_finds_the_faces_fp32_finds(shared, get_detector):
    from paddleface.detector import FaceDetector
    model = INT8_IDS[0]
    calib = [p for p in sorted((shared / "images").glob("*.jpg")) if p.name != "crowd.jpg"][:12]
    det8 = FaceDetector(model, device="cpu", precision="int8", calibration=calib, threads=1)
    assert det8.engine.name == "onnxruntime" and "int8" in str(det8.engine.path)
    det = get_detector(model)
    for name in ("crowd.jpg", "2.jpg"):
        a = np.array([f.box for f in det.detect(str(shared / "images" / name))])
        b = np.array([f.box for f in det8.detect(str(shared / "images" / name))])
        assert abs(len(a) - len(b)) <= max(2, 0.1 * len(a))
        # every fp32 face has an int8 face within a few pixels
        near = [np.abs(b - box).max(axis=1).min() < 0.15 * (box[2] - box[0]) + 3 for box in a]
        assert np.mean(near) >= 0.9, name


@pytest.mark.skipif(not INT8_IDS, reason="no model offers int8 (none was faster here)")
def test_eval_and_export_in_int8_keep_their_own_folder(shared, tmp_path, monkeypatch, capsys):
    model = INT8_IDS[0]
    images = tmp_path / "val"
    images.mkdir()
    event = sorted((shared / "widerface/val/images").iterdir())[0]
    (images / event.name).symlink_to(event)
    calib = tmp_path / "calib.txt"
    calib.write_text("\n".join(str(p) for p in sorted((shared / "images").glob("*.jpg"))[:8]))
    monkeypatch.chdir(tmp_path)
    base = ["eval", model, "--images", str(images), "--gt", str(shared / "widerface/ground_truth"),
            "--subset", "--device", "cpu", "--threads", "1"]
    assert main(base) == 0
    assert main(base + ["--precision", "int8", "--calib-images", str(calib)]) == 0
    folders = sorted(p.name for p in (tmp_path / "output/eval" / model).iterdir())
    assert len(folders) == 2 and any(f.startswith("onnxruntime-int8-") for f in folders)
    int8_dir = next(tmp_path.glob(f"output/eval/{model}/onnxruntime-int8-*"))
    assert json.loads((int8_dir / "manifest.json").read_text())["precision"] == "int8"
    assert main(base + ["--precision", "int8"]) == 2  # no photos named
    assert "calibrat" in capsys.readouterr().err
    out = tmp_path / "exported"
    assert main(["export", model, "--format", "onnx", "--out", str(out), "--precision", "int8",
                 "--calib-images", str(calib)]) == 0
    info = json.loads((out / "deploy.json").read_text())["export"]
    assert "model_int8.onnx" in info["files"] and (out / "model_int8.onnx").is_file()
    assert info["int8_onnx_bytes"] < (out / "model.onnx").stat().st_size / 2
    assert main(["export", model, "--format", "inference", "--out", str(tmp_path / "x"),
                 "--precision", "int8", "--calib-images", str(calib)]) == 2
