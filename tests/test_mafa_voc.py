"""MAFA -> VOC (``paddleface prepare-mafa``), per-class VOC AP (``paddleface eval --voc``) and
training ulfd-mask-320 from a tree with face and masked_face objects.

The MAFA label files are made here in MAFA's format (MATLAB v5 struct arrays, as scipy reads
MAFA's LabelTrainAll.mat / LabelTestAll.mat): ``label_train`` (orgImgName, imgName, label
with 21 numbers per face) and ``LabelTest`` (name, label with 18 numbers per face).
"""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddleface.cli import main
from paddleface.evaluation.voc_ap import (ImageDetections, ImageTruth, average_precision,
                                          evaluate_voc)


def mafa_train_row(x, y, w, h, occ_type, degree, occluder=(0, 10, 20, 15)):
    """21 numbers: face box, eyes, occluder (relative), type, degree, gender, race,
    orientation, glasses."""
    return [x, y, w, h, x + 5, y + 5, x + w - 5, y + 5, *occluder, occ_type, degree, 1, 1, 3,
            -1, -1, -1, -1]


def mafa_test_row(x, y, w, h, face_type, occ_type, degree, occluder=(0, 10, 20, 15)):
    """18 numbers: face box, face type, occluder (relative), type, degree, gender, race,
    orientation, glasses."""
    return [x, y, w, h, face_type, *occluder, occ_type, degree, 1, 1, 3, -1, -1, -1, -1]


def write_mafa_mat(path: Path, split: str, images):
    """``images``: (file name, rows) pairs -> a MAFA label file of ``split``."""
    from scipy.io import savemat
    if split == "train":
        dtype = [("orgImgName", object), ("imgName", object), ("label", object)]
        recs = [(f"org_{n}", n, np.array(rows, np.int16).reshape(-1, 21)) for n, rows in images]
        key = "label_train"
    else:
        dtype = [("name", object), ("label", object)]
        recs = [(n, np.array(rows, np.int16).reshape(-1, 18)) for n, rows in images]
        key = "LabelTest"
    arr = np.empty((1, len(recs)), dtype=dtype)
    for i, r in enumerate(recs):
        arr[0, i] = r
    savemat(str(path), {key: arr})


def write_photo(path: Path, w=200, h=150, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    cv2.imwrite(str(path), img)


def objects(xml: Path):
    root = ET.parse(str(xml)).getroot()
    out = []
    for o in root.iter("object"):
        bb, occ = o.find("bndbox"), o.find("occluder")
        out.append((o.findtext("name"),
                    [int(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")],
                    [int(occ.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]))
    return out


@pytest.fixture
def mafa(tmp_path):
    """A MAFA folder: train-images (a, b, c listed; c missing), test-images (d), labels."""
    root = tmp_path / "MAFA"
    for i, n in enumerate(("train_00000001.jpg", "train_00000002.jpg")):
        write_photo(root / "train-images" / n, seed=i)
    write_photo(root / "test-images" / "test_00000001.jpg", seed=5)
    write_mafa_mat(root / "LabelTrainAll.mat", "train", [
        ("train_00000001.jpg", [mafa_train_row(10, 20, 60, 70, 1, 3),      # masked_face
                                mafa_train_row(100, 20, 40, 40, 2, 2),     # degree 2: dropped
                                mafa_train_row(120, 70, 50, 50, 3, 4)]),   # human body
        ("train_00000002.jpg", [mafa_train_row(5, 5, 50, 50, 2, 1)]),      # nothing kept
        ("train_00000003.jpg", [mafa_train_row(5, 5, 50, 50, 2, 3)]),      # image missing
    ])
    write_mafa_mat(root / "LabelTestAll.mat", "test", [
        ("test_00000001.jpg", [mafa_test_row(30, 30, 50, 60, 1, 2, 3),     # masked_face
                               mafa_test_row(100, 10, 40, 40, 2, 1, 3),    # unmasked: dropped
                               mafa_test_row(90, 80, 40, 40, 1, 3, 3)]),   # human body: dropped
    ])
    return root


def test_prepare_mafa_converts_as_mafa2voc_and_merges_into_the_wider_tree(
        mafa, small_tree, tmp_path, capsys):
    import shutil
    tree = tmp_path / "voc"
    shutil.copytree(small_tree, tree)
    wider_test = (tree / "ImageSets/Main/test.txt").read_text().split()
    args = ["prepare-mafa", "--mafa-root", str(mafa), "--train-mat",
            str(mafa / "LabelTrainAll.mat"), "--test-mat", str(mafa / "LabelTestAll.mat"),
            "--out", str(tree), "--quiet"]
    assert main(args) == 1  # train_00000003.jpg is missing: reported, the rest converted
    err = capsys.readouterr().err
    assert "train_00000003.jpg does not exist" in err
    assert (tree / "ImageSets/Main/trainval.txt").read_text().split() == ["train_00000001"]
    test_ids = (tree / "ImageSets/Main/test.txt").read_text().split()
    assert test_ids == wider_test + ["test_00000001"]  # WIDER's ids first, kept
    # boxes: xmax = x + w; the occluder is relative to the face in MAFA, absolute here
    assert objects(tree / "Annotations/train_00000001.xml") == [
        ("masked_face", [10, 20, 70, 90], [10, 30, 30, 45])]
    assert objects(tree / "Annotations/test_00000001.xml") == [
        ("masked_face", [30, 30, 80, 90], [30, 40, 50, 55])]
    assert (tree / "JPEGImages/test_00000001.jpg").read_bytes() == \
        (mafa / "test-images/test_00000001.jpg").read_bytes()
    from paddleface.datasets.voc import validate_voc
    assert validate_voc(tree) == []
    # a rerun converts nothing again and lists every id once; the flag adds the human body
    assert main(args + ["--human-body-as-face"]) == 1
    out = capsys.readouterr().out
    assert "0 images converted, 1 already there" in out
    assert (tree / "ImageSets/Main/test.txt").read_text().split() == test_ids
    (tree / "Annotations/train_00000001.xml").unlink()
    assert main(args + ["--human-body-as-face"]) == 1
    assert [o[0] for o in objects(tree / "Annotations/train_00000001.xml")] == [
        "masked_face", "face"]
    # the training reader maps names to the record's classes
    from paddleface.datasets.voc import VOCFaceDataset
    ds = VOCFaceDataset(tree, "trainval", class_names=("face", "masked_face"))
    assert ds.annotations[0].labels.tolist() == [2, 1]
    assert len(VOCFaceDataset(tree, "trainval").annotations[0].boxes) == 1  # face only


def test_prepare_mafa_names_a_wrong_label_file(mafa, tmp_path, capsys):
    assert main(["prepare-mafa", "--mafa-root", str(mafa), "--train-mat",
                 str(mafa / "LabelTestAll.mat"), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "LabelTestAll.mat: no 'label_train' variable" in err and "test labels" in err
    (tmp_path / "x.mat").write_text("not a mat")
    assert main(["prepare-mafa", "--test-mat", str(tmp_path / "x.mat"), "--mafa-root",
                 str(mafa), "--out", str(tmp_path / "v")]) == 2
    assert "x.mat: not a readable MATLAB .mat file" in capsys.readouterr().err


def box(x, y, s=10.0):
    return [x, y, x + s, y + s]


def test_voc_ap_by_hand():
    """Class 0: 4 boxes in 2 images (one more is difficult). Ranked detections: TP 0.9,
    FP 0.8 (no box there), TP 0.7, FP 0.6 (the 0.9 box again), TP 0.5, and 0.4 on the
    difficult box (counts neither way); one box is never found.
    Precision/recall: 1/.25, .5/.25, .667/.5, .5/.5, .6/.75.
    All-point: .25 * 1 + .25 * 2/3 + .25 * .6 = 0.566667.
    11-point: recall 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; .6, .7 -> .6; .8, .9, 1 -> 0:
    (3 + 2 + 1.2) / 11 = 0.563636.
    Class 1: the detections are the ground truth (AP 1)."""
    truths = [ImageTruth(np.array([box(0, 0), box(50, 0), box(0, 50), box(80, 80)]),
                         np.array([0, 0, 1, 0]), np.array([False, False, False, True])),
              ImageTruth(np.array([box(0, 0), box(50, 50)]), np.array([0, 0]),
                         np.array([False, False]))]
    dets = [ImageDetections(np.array([box(0, 1), box(30, 30), box(0, 0), box(81, 80),
                                      box(0, 50)]),
                            np.array([0.9, 0.8, 0.6, 0.4, 0.95]), np.array([0, 0, 0, 0, 1])),
            ImageDetections(np.array([box(0, 0), box(50, 51)]), np.array([0.7, 0.5]),
                            np.array([0, 0]))]
    face, masked = evaluate_voc(truths, dets, ("face", "masked_face"))
    assert face.ground_truth == 4 and face.true_positives == 3 and face.detections == 6
    assert face.ap == pytest.approx(0.25 + 0.25 * 2 / 3 + 0.25 * 0.6, abs=1e-9)
    assert masked.ap == 1.0
    eleven = evaluate_voc(truths, dets, ("face", "masked_face"), metric="11-point")[0]
    assert eleven.ap == pytest.approx(6.2 / 11, abs=1e-9)
    # IoU exactly at the threshold is not a match (VOC: greater than 0.5)
    half = ImageTruth(np.array([[0.0, 0, 10, 10]]), np.array([0]), np.array([False]))
    d = ImageDetections(np.array([[0.0, 0, 10, 20]]), np.array([0.9]), np.array([0]))
    assert evaluate_voc([half], [d], ("face",))[0].ap == 0.0
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == 1.0


def test_eval_voc_on_a_converted_split_with_known_truth(shared, tmp_path, capsys):
    """The upstream's own detections on the five masked photos, written as MAFA train labels
    (masked faces as occluder type 1, bare faces as human-body occlusions, kept as 'face' by
    --human-body-as-face), converted, then evaluated: every ground-truth box is found before
    any false positive, so both classes have AP 1."""
    ref = json.loads((shared / "reference/ulfd/masked_face/detections.json").read_text())
    ref = ref["detections"]["RFB-320-masked_face-v2"]
    images, n_face, n_masked = [], 0, 0
    for p in sorted((shared / "images/masked").iterdir()):
        h, w = cv2.imread(str(p)).shape[:2]
        rows = []
        for x1, y1, x2, y2, label, score in ref[p.name]:
            x1, y1 = max(0, round(x1)), max(0, round(y1))
            x2, y2 = min(w, round(x2)), min(h, round(y2))
            rows.append(mafa_train_row(x1, y1, x2 - x1, y2 - y1, 1 if label == 2 else 3, 3))
            n_masked += label == 2
            n_face += label == 1
        images.append((p.name, rows))
    write_mafa_mat(tmp_path / "train.mat", "train", images)
    tree = tmp_path / "voc"
    assert main(["prepare-mafa", "--train-mat", str(tmp_path / "train.mat"), "--train-images",
                 str(shared / "images/masked"), "--out", str(tree), "--human-body-as-face",
                 "--quiet"]) == 0
    assert n_face > 5 and n_masked > 50
    assert main(["eval", "ulfd-mask-320", "--voc", str(tree), "--split", "trainval",
                 "--engine", "dygraph", "--pred-dir", str(tmp_path / "pred")]) == 0
    summary = json.loads((tmp_path / "pred/summary.json").read_text())
    assert summary["metric"] == "all-point" and summary["images"] == 5
    assert summary["classes"]["face"]["ground_truth"] == n_face
    assert summary["classes"]["masked_face"]["ground_truth"] == n_masked
    assert summary["classes"]["face"]["ap"] == 1.0
    assert summary["classes"]["masked_face"]["ap"] == 1.0
    out = capsys.readouterr().out
    assert "masked_face  AP 1.0000" in out
    # the one-class model sees only faces: it cannot tell masked ones apart
    assert main(["eval", "ulfd-rfb-320", "--voc", str(tree), "--split", "trainval",
                 "--engine", "dygraph", "--pred-dir", str(tmp_path / "pred1")]) == 0
    one = json.loads((tmp_path / "pred1/summary.json").read_text())
    assert list(one["classes"]) == ["face"]

    # training reads the same tree with both classes
    import paddle

    from paddleface.datasets.voc import VOCFaceDataset
    from paddleface.detector import load_network
    from paddleface.registry import get_record
    from paddleface.training.step import compute_loss
    from paddleface.training.trainer import TrainConfig, Trainer, ValSet
    rec = get_record("ulfd-mask-320")
    net, _ = load_network(rec)

    def conf_loss(class_names):
        vs = ValSet(VOCFaceDataset(tree, "trainval", class_names=class_names), rec, (320, 240))
        items = [vs[i] for i in range(len(vs))]
        batch = [paddle.to_tensor(np.stack([it[k] for it in items])) for k in range(4)]
        with paddle.no_grad():
            return float(compute_loss(net, rec, batch)[1]["conf"])
    right, swapped = conf_loss(rec.labels), conf_loss(tuple(reversed(rec.labels)))
    assert right < 0.5 * swapped, (right, swapped)  # the upstream weights agree with the mapping
    result = Trainer(TrainConfig(model="ulfd-mask-320", data_root=str(tree), split="trainval",
                                 output_dir=str(tmp_path / "t"), batch_size=2, max_iters=2,
                                 pretrained="upstream", val_every=0, save_every=0,
                                 workers=0)).train()
    assert result["steps"] == 2 and np.isfinite(result["history"][0]["loss"])
