"""data/wider_face_2_voc_add_landmark.py on real val images and on a hand-written train label."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddleface.datasets.voc import VOCFaceDataset, parse_annotation, validate_voc

from conftest import interrupt_when_ready, subset_label_text

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data" / "wider_face_2_voc_add_landmark.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "--quiet", *map(str, args)],
                          capture_output=True, text=True)


def subset_label(shared, dest: Path) -> Path:
    """val/label.txt filtered to the images of val/subset.txt."""
    dest.write_text(subset_label_text(shared))
    return dest


@pytest.fixture(scope="module")
def val_tree(shared, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("voc")
    label = subset_label(shared, tmp / "label.txt")
    r = run("--sets", "val", "--images", f"val={shared / 'widerface/val/images'}",
            "--label", f"val={label}", "--out", tmp / "voc")
    assert r.returncode == 0, r.stderr
    return tmp / "voc", label, r.stdout


def faces_of(label: Path):
    faces, name = {}, None
    for line in label.read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
            faces[name] = []
        else:
            faces[name].append([int(float(v)) for v in line.split()[:4]])
    return faces


def test_val_subset_conversion(shared, val_tree):
    voc, label, stdout = val_tree
    faces = faces_of(label)
    assert len(faces) == 487
    ids = (voc / "ImageSets/Main/test.txt").read_text().split()
    kept = {n: [f for f in fs if f[2] >= 10 and f[3] >= 10] for n, fs in faces.items()}
    expected_ids = [n.replace("/", "_")[:-4] for n, k in kept.items() if k]
    assert ids == expected_ids  # label order; images left with no face are not written
    assert "without faces" in stdout
    checked_copy = checked_paint = 0
    for name, fs in faces.items():
        vid = name.replace("/", "_")[:-4]
        if not kept[name]:
            assert not (voc / "JPEGImages" / f"{vid}.jpg").exists()
            continue
        ann = parse_annotation(voc / "Annotations" / f"{vid}.xml")
        want = np.array([[x, y, x + w, y + h] for x, y, w, h in kept[name]], np.float32)
        assert np.array_equal(ann.boxes, want)
        src = (shared / "widerface/val/images" / name).read_bytes()
        out = (voc / "JPEGImages" / f"{vid}.jpg").read_bytes()
        small = [f for f in fs if 0 < f[2] < 10 or 0 < f[3] < 10]
        small = [f for f in small if f[2] > 0 and f[3] > 0]
        if not small:
            assert out == src  # copied byte for byte
            checked_copy += 1
        elif checked_paint < 25:
            img = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
            # every small face is painted, not only the last one (the upstream bug)
            for x, y, w, h in small:
                patch = img[max(y, 0):y + h, max(x, 0):x + w].reshape(-1, 3).astype(float)
                if patch.size and w >= 4 and h >= 4:
                    assert np.abs(np.median(patch, 0) - (104, 117, 123)).max() < 12, (name, x, y)
            checked_paint += 1
    assert checked_copy > 100 and checked_paint > 10
    assert validate_voc(voc) == []
    ds = VOCFaceDataset(voc, "test")
    image, ann = ds[0]
    assert image.shape[:2] == (ann.height, ann.width) and not ann.has_lm.any()


def test_rerun_resumes(shared, val_tree, tmp_path):
    voc, label, _ = val_tree
    victim = sorted((voc / "Annotations").glob("*.xml"))[3]
    victim.unlink()
    r = run("--sets", "val", "--images", f"val={shared / 'widerface/val/images'}",
            "--label", f"val={label}", "--out", voc)
    assert r.returncode == 0, r.stderr
    assert "485 already done" in r.stdout and victim.is_file()
    assert not list(voc.rglob("*.part"))


TRAIN_LABEL = """\
# ev/a.jpg
10 20 40 50 20.0 30.0 0.0 40.0 30.0 0.0 30.0 40.0 0.0 22.0 55.0 0.0 38.0 55.0 1.0 0.82
60 20 30 30 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
100 100 6 6 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
150 100 8 40 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
5 5 0 20 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
1 2 3
# ev/b.jpg
30 30 50 50 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
30 30 50 abc -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
# ev/missing.jpg
10 10 30 30 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
# ev/corrupt.jpg
10 10 30 30 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
# ev/small.jpg
10 10 5 5 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
"""


@pytest.fixture
def train_input(tmp_path):
    images = tmp_path / "images" / "ev"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n in ("a", "b", "small"):
        cv2.imwrite(str(images / f"{n}.jpg"), rng.integers(0, 255, (240, 320, 3), np.uint8))
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    label = tmp_path / "label.txt"
    label.write_text(TRAIN_LABEL)
    return tmp_path, label


def test_train_labels_landmarks_and_bad_lines(train_input):
    tmp, label = train_input
    args = ["--sets", "train", "--images", f"train={tmp / 'images'}", "--label",
            f"train={label}", "--out", tmp / "voc"]
    r = run(*args)
    assert r.returncode == 1
    err = r.stderr
    assert "label.txt:7: 20 numbers were expected, got 3" in err
    assert "label.txt:10: not a number" in err
    assert "label.txt:11: image ev/missing.jpg does not exist" in err
    assert "label.txt:13: image ev/corrupt.jpg is corrupt" in err
    voc = tmp / "voc"
    assert (voc / "ImageSets/Main/trainval.txt").read_text().split() == ["ev_a", "ev_b"]
    ann = parse_annotation(voc / "Annotations/ev_a.xml")
    assert ann.boxes.tolist() == [[10, 20, 50, 70], [60, 20, 90, 50]]  # small and w=0 dropped
    assert ann.has_lm.tolist() == [True, False]
    assert ann.landmarks[0].tolist() == [[20, 30], [40, 30], [30, 40], [22, 55], [38, 55]]
    xml = (voc / "Annotations/ev_a.xml").read_text()
    assert "<visible>1</visible>" in xml and "<blur>0.82</blur>" in xml
    img = cv2.imread(str(voc / "JPEGImages/ev_a.jpg"))
    for x, y, w, h in ((100, 100, 6, 6), (150, 100, 8, 40)):  # both small faces painted
        assert np.abs(np.median(img[y:y + h, x:x + w].reshape(-1, 3), 0) - (104, 117, 123)).max() < 12
    assert not (voc / "JPEGImages/ev_small.jpg").exists()
    # --skip-bad accepts the same problems (still reported) and the rerun resumes
    r = run(*args, "--skip-bad")
    assert r.returncode == 0 and "label.txt:7:" in r.stderr and "2 already done" in r.stdout
    ds = VOCFaceDataset(voc)
    assert len(ds) == 2 and validate_voc(voc) == []


def test_validate_reports_a_broken_tree(train_input):
    tmp, label = train_input
    run("--sets", "train", "--images", f"train={tmp / 'images'}", "--label", f"train={label}",
        "--out", tmp / "voc", "--skip-bad")
    (tmp / "voc/JPEGImages/ev_b.jpg").unlink()
    (tmp / "voc/Annotations/ev_a.xml").write_text("<annotation><size>")
    problems = validate_voc(tmp / "voc")
    assert any("ev_b.jpg is missing" in p for p in problems)
    assert any("ev_a.xml: not a readable VOC XML" in p for p in problems)


def test_missing_inputs_fail_cleanly(tmp_path):
    r = run("--sets", "val", "--wider-dir", tmp_path, "--labels-dir", tmp_path, "--out", tmp_path / "o")
    assert r.returncode == 2 and "no such label file" in r.stderr


def test_only_val_present_suggests_sets_val(shared, tmp_path):
    (tmp_path / "labels/val").mkdir(parents=True)
    subset_label(shared, tmp_path / "labels/val/label.txt")
    r = run("--wider-dir", tmp_path, "--labels-dir", tmp_path / "labels", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "train/label.txt: no such label file" in r.stderr and "--sets val" in r.stderr


def test_ctrl_c_with_two_workers_stops_at_once_and_resumes(shared, tmp_path):
    """SIGINT to the process group, as a terminal sends it: one line, no partial files."""
    label = subset_label(shared, tmp_path / "label.txt")
    out = tmp_path / "voc"
    args = [sys.executable, str(SCRIPT), "--quiet", "--sets", "val", "--workers", "2",
            "--images", f"val={shared / 'widerface/val/images'}", "--label", f"val={label}",
            "--out", str(out)]
    err, seconds, code = interrupt_when_ready(
        args, lambda: bool(list(out.glob("Annotations/*.xml"))), 60, "the converter")
    assert seconds < 2.0
    assert code == 130
    assert err.strip().splitlines() == ["interrupted; rerun to resume"], err
    assert not list(out.rglob(".*.part"))
    assert not (out / "ImageSets/Main/test.txt").exists()  # the list is the last write
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import re
    assert re.search(r"\b[1-9]\d* already done", r.stdout), r.stdout
    assert not validate_voc(out, check_images=False)
