"""Mistakes found before any work starts: output paths, oversized input sizes, the
converter's problem count, a VOC tree without the training list."""
import subprocess
import sys
from pathlib import Path

import pytest

from paddleface.cli import main

from conftest import subset_label_text

ROOT = Path(__file__).resolve().parents[1]


def detect(capsys, *args):
    code = main(["detect", *map(str, args), "-m", "ulfd-slim-320", "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.fixture
def photo(shared):
    return shared / "images" / "2.jpg"


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if a detector is built: the checks must come before the model."""
    import paddleface.detector as detector

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the output paths were checked")
    monkeypatch.setattr(detector, "FaceDetector", refuse)


@pytest.mark.parametrize("case,expected", [
    ("out-is-file", "--out {tmp}/taken.txt: exists and is a file; a folder for the drawn images"),
    ("out-under-file", "--out {tmp}/taken.txt/drawn: cannot be created because {tmp}/taken.txt "
                       "is a file, not a folder"),
    ("out-unwritable", "--out /proc/paddleface-out: cannot write there"),
    ("json-is-folder", "--json {tmp}: is a folder; a file name was expected, e.g. {tmp}/faces.json"),
    ("json-under-file", "--json {tmp}/taken.txt/faces.json: cannot be created because "
                        "{tmp}/taken.txt is a file"),
    ("json-unwritable", "--json /proc/paddleface-json/faces.json: cannot write there"),
])
def test_bad_output_paths_are_refused_before_detection(capsys, tmp_path, photo, no_model_load,
                                                        case, expected):
    (tmp_path / "taken.txt").write_text("someone's file\n")
    args = {"out-is-file": ["--out", tmp_path / "taken.txt"],
            "out-under-file": ["--out", tmp_path / "taken.txt" / "drawn"],
            "out-unwritable": ["--out", "/proc/paddleface-out"],
            "json-is-folder": ["--json", tmp_path],
            "json-under-file": ["--json", tmp_path / "taken.txt" / "faces.json"],
            "json-unwritable": ["--json", "/proc/paddleface-json/faces.json"]}[case]
    code, out, err = detect(capsys, photo, *args)
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith("error: " + expected.format(tmp=tmp_path)), err
    assert (tmp_path / "taken.txt").read_text() == "someone's file\n"


def test_json_in_a_new_folder_is_created_and_written(capsys, tmp_path, photo):
    target = tmp_path / "new" / "deeper" / "faces.json"
    code, out, err = detect(capsys, photo, "--json", target, "--out", tmp_path / "drawn")
    assert code == 0 and target.is_file() and (tmp_path / "drawn" / "2.jpg").is_file()
    assert not list(target.parent.glob(".*"))  # no scratch or .part files left


@pytest.mark.parametrize("model,size", [("ulfd-rfb-320", "99999x99999"),
                                        ("blazeface-320", "99999x99999"),
                                        ("ulfd-rfb-320", "5000x5000"),
                                        ("blazeface-320", "5000x100")])
def test_input_size_is_under_the_pixel_limit(capsys, photo, model, size):
    code = main(["detect", str(photo), "-m", model, "--input-size", size, "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"input size {size}: the network input would be" in err[0]
    assert "over the limit of 16.8 M pixels" in err[0] and "--max-pixels" in err[0]


def test_input_size_limit_follows_max_pixels(capsys, photo):
    # 400x300 = 0.12 M pixels: refused under a 0.1 M limit, accepted at the default
    code = main(["detect", str(photo), "-m", "ulfd-slim-320", "--input-size", "400x300",
                 "--max-pixels", "100000", "--device", "cpu"])
    assert code == 2 and "over the limit of 0.1 M pixels" in capsys.readouterr().err
    code = main(["detect", str(photo), "-m", "ulfd-slim-320", "--input-size", "400x300",
                 "--device", "cpu"])
    assert code == 0


def run_converter(*args):
    return subprocess.run([sys.executable, str(ROOT / "data" / "wider_face_2_voc_add_landmark.py"),
                           "--quiet", *map(str, args)], capture_output=True, text=True)


def test_converter_counts_each_absent_image_once(shared, tmp_path):
    label = tmp_path / "label.txt"
    text = subset_label_text(shared)
    # three images the label file lists but the image folder lacks
    extra = "".join(f"# 0--Parade/absent_{i}.jpg\n10 10 40 40\n" for i in range(3))
    label.write_text(text + extra)
    r = run_converter("--sets", "val", "--images", f"val={shared / 'widerface/val/images'}",
                      "--label", f"val={label}", "--out", tmp_path / "voc")
    reported = [l for l in r.stderr.splitlines() if "does not exist" in l]
    assert len(reported) == 3
    assert r.returncode == 1
    assert "3 problems (see above)" in r.stderr, r.stderr


def test_training_on_a_val_only_tree_says_what_to_do(train_tool, tmp_path, capsys):
    main_dir = tmp_path / "voc" / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    (main_dir / "test.txt").write_text("")  # what converting only the val set leaves
    code = train_tool.main(["--data-root", str(tmp_path / "voc"),
                            "--output-dir", str(tmp_path / "out"), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "trainval.txt: no such image list" in err[0] and "has test.txt only" in err[0]
    assert "--split test" in err[0]
    assert "wider_face_2_voc_add_landmark.py --sets train" in err[0]


def test_the_training_script_passes_the_sentence_on(tmp_path):
    main_dir = tmp_path / "voc" / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    (main_dir / "test.txt").write_text("")
    r = subprocess.run(["bash", str(ROOT / "train-version-RFB.sh"), "--epochs", "1"],
                       env=dict(__import__("os").environ, DATA_ROOT=str(tmp_path / "voc"),
                                OUTPUT_DIR=str(tmp_path / "out"), PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--split test" in r.stderr and "Traceback" not in r.stderr
