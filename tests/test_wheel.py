"""The wheel does everything the repository does: built from a copy of the sources, installed
into a new virtual environment outside the repository, and run from a folder outside it.

The new venv sees the test venv's site-packages through a path entry (a ``.pth`` line), so the
heavy dependencies (paddle, onnxruntime, ...) are not installed twice. A plain path entry does
not process the ``.pth`` files of that folder, so the test venv's editable paddleface is not
visible there: ``paddleface`` must come from the wheel, and the test checks that it does.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, cwd, env, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    assert ROOT not in tmp.parents
    src = tmp / "src"
    # the committed sources only: no build/, output/ or egg-info of the working tree
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for f in files:
        if f and (ROOT / f).is_file() and not f.startswith(("tests/", "bench/", "docs/")):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", tmp / "dist", src], tmp, env)
    wheel = next((tmp / "dist").glob("paddleface-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", venv], tmp, env)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "zz_reuse_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --no-index: every dependency must already be satisfied, nothing is downloaded
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-index",
         f"{wheel}[cpu,export,train]"], tmp, env)
    env = dict(env, PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", OMP_NUM_THREADS="1")
    return {"tmp": tmp, "wheel": wheel, "venv": venv, "env": env}


def test_wheel_holds_the_package_data(wheel_venv):
    names = zipfile.ZipFile(wheel_venv["wheel"]).namelist()
    assert "paddleface/serve/page.html" in names
    in_tree = {str(p.relative_to(ROOT)) for p in (ROOT / "paddleface").rglob("*")
               if p.is_file() and p.suffix in (".html", ".js", ".css", ".json", ".svg", ".png")}
    assert in_tree <= set(names), f"not in the wheel: {sorted(in_tree - set(names))}"


def test_installed_wheel_detects_evaluates_trains_and_exports(wheel_venv, shared):
    tmp, env, venv = wheel_venv["tmp"], wheel_venv["env"], wheel_venv["venv"]
    work = tmp / "work"
    work.mkdir()
    py = venv / "bin" / "python"
    where = run([py, "-c", "import paddleface; print(paddleface.__file__)"], work, env).strip()
    assert Path(where).is_relative_to(venv), f"paddleface imported from {where}, not the wheel"
    from paddleface import __version__
    assert run(["paddleface", "--version"], work, env).strip() == f"paddleface {__version__}"

    run(["paddleface", "detect", shared / "images/2.jpg", "--model", "ulfd-rfb-320",
         "--json", "faces.json", "--threads", "1"], work, env)
    assert '"faces"' in (work / "faces.json").read_text()

    # eval --subset and prepare-wider on the images of two events
    images, labels = work / "images", []
    keep = False
    for line in (shared / "widerface/val/label.txt").read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
            keep = name.split("/")[0] in ("0--Parade", "1--Handshaking") and \
                (shared / "widerface/val/images" / name).is_file()
            if keep:
                (images / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shared / "widerface/val/images" / name, images / name)
        if keep:
            labels.append(line)
    (work / "label.txt").write_text("\n".join(labels) + "\n")
    out = run(["paddleface", "eval", "ulfd-rfb-320", "--images", images, "--gt",
               shared / "widerface/ground_truth", "--subset", "--threads", "1"], work, env)
    assert "easy" in out and "over 16 images" in out, out

    run(["paddleface", "prepare-wider", "--quiet", "--sets", "val", "--images", f"val={images}",
         "--label", f"val={work / 'label.txt'}", "--out", "voc"], work, env)
    run(["paddleface", "validate-voc", "voc", "--no-images"], work, env)
    run(["paddleface", "train", "--model", "ulfd-rfb-320", "--data-root", "voc", "--split",
         "test", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--output-dir", "run"], work, env)
    assert (work / "run/last.pdparams").is_file()
    run(["paddleface", "export", "ulfd-rfb-320", "--format", "onnx", "--weights",
         "run/last.pdparams", "--out", "onnx"], work, env)
    assert (work / "onnx/model.onnx").is_file() and (work / "onnx/deploy.json").is_file()
