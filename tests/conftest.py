"""Shared fixtures. Test data comes from $PADDLEFACE_SHARED (../shared in CI)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from paddleface.registry import REGISTRY

# where each id's upstream reference outputs live under shared/reference
REFERENCE_DIRS = {
    "ulfd-slim-320": "ulfd/version-slim-320", "ulfd-slim-640": "ulfd/version-slim-640",
    "ulfd-rfb-320": "ulfd/version-RFB-320", "ulfd-rfb-640": "ulfd/version-RFB-640",
    "slim-lm": "fd1mb/slim_Final", "rfb-lm": "fd1mb/RBF_Final",
    "mnet-lm": "fd1mb/mobilenet0.25_Final", "retinaface-mnet": "retinaface/mobilenet0.25_Final",
    "blazeface-320": "blazeface/Blaze_Final_320", "blazeface-640": "blazeface/Blaze_Final_640",
}
assert set(REFERENCE_DIRS) <= set(REGISTRY)


def shared_dir() -> Path:
    env = os.environ.get("PADDLEFACE_SHARED")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    if not (path / "reference").is_dir():
        pytest.fail(f"test data not found at {path}: set PADDLEFACE_SHARED to the shared folder")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session", autouse=True)
def _weights_env(tmp_path_factory):
    """Weights come from shared/weights; converted files go to a per-run cache."""
    os.environ.setdefault("PADDLEFACE_WEIGHTS", str(shared_dir() / "weights"))
    os.environ["PADDLEFACE_HOME"] = str(tmp_path_factory.mktemp("paddleface-home"))
    yield


_detectors = {}


@pytest.fixture(scope="session")
def get_detector():
    """Detectors are built once per id for the whole run."""
    from paddleface.detector import FaceDetector

    def get(model_id, engine="auto"):
        if (model_id, engine) not in _detectors:
            _detectors[model_id, engine] = FaceDetector(model_id, device="cpu", engine=engine)
        return _detectors[model_id, engine]
    return get


def load_reference(shared: Path, model_id: str) -> dict:
    return json.loads((shared / "reference" / REFERENCE_DIRS[model_id] / "detections.json").read_text())


def reference_npz(shared: Path, model_id: str):
    return sorted((shared / "reference" / REFERENCE_DIRS[model_id]).glob("*.npz"))


def npz_input(z) -> np.ndarray:
    """The stored network input image as BGR uint8 (ULFD stores it as RGB)."""
    if "resized_rgb" in z.files:
        return z["resized_rgb"][..., ::-1]
    return z["letterboxed_bgr"] if "letterboxed_bgr" in z.files else z["resized_bgr"]


def subset_label_text(shared: Path, keep=lambda name: True) -> str:
    """val/label.txt filtered to the images of val/subset.txt (and ``keep``)."""
    subset = set((shared / "widerface/val/subset.txt").read_text().split())
    out, on = [], False
    for line in (shared / "widerface/val/label.txt").read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
            on = name in subset and keep(name)
        if on:
            out.append(line)
    return "\n".join(out) + "\n"


def build_voc(shared: Path, dest: Path, keep=lambda name: True) -> Path:
    """A VOC tree (test split) from the shared val images, made by the converter script."""
    import subprocess
    import sys
    dest.mkdir(parents=True, exist_ok=True)
    label = dest / "label.txt"
    label.write_text(subset_label_text(shared, keep))
    r = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "data" /
                                            "wider_face_2_voc_add_landmark.py"), "--quiet",
                        "--sets", "val", "--images", f"val={shared / 'widerface/val/images'}",
                        "--label", f"val={label}", "--out", str(dest / "voc")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return dest / "voc"


def event_number(name: str) -> int:
    return int(name.split("--")[0])


@pytest.fixture(scope="session")
def voc_subset(shared, tmp_path_factory) -> Path:
    """The 486 converted subset images (test split)."""
    return build_voc(shared, tmp_path_factory.mktemp("voc-subset"))


@pytest.fixture(scope="session")
def small_tree(shared, tmp_path_factory):
    """A VOC tree (test split) of the first 16 subset images."""
    names = sorted((shared / "widerface/val/subset.txt").read_text().split())[:16]
    return build_voc(shared, tmp_path_factory.mktemp("small"), keep=lambda n: n in names)


def interrupt_when_ready(args, ready, wait: float, what: str):
    """Start ``args`` in its own process group, send SIGINT to the group (as a terminal's
    Ctrl-C does) once ``ready()`` is true or ``wait`` seconds passed, and return
    (stderr, seconds from the signal to the exit, return code); fail if it hangs."""
    import os
    import signal
    import subprocess
    import time
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + wait
    while not ready() and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.time()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{what} hung after Ctrl-C")
    return err, time.time() - sent, proc.returncode


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def train_tool():
    """tools/train.py imported as a module (the script users run)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_tool", ROOT / "tools/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host_check(tmp_path_factory):
    """deploy/lite/cpp/host_check.cc compiled for this machine (the flags of build_arm.sh)."""
    import shutil
    import subprocess
    if shutil.which("g++") is None:
        pytest.skip("no host g++ to compile deploy/lite/cpp/host_check.cc")
    cpp = ROOT / "deploy/lite/cpp"
    exe = tmp_path_factory.mktemp("host") / "host_check"
    r = subprocess.run(["g++", "-std=c++14", "-O2", "-ffp-contract=off", "-Wall", "-Wextra",
                        "-Werror", f"-I{cpp}", *(str(cpp / f) for f in (
                            "host_check.cc", "face_detector.cc", "deploy_config.cc",
                            "image_io.cc")), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe
