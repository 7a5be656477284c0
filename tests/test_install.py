"""What a fresh installation meets: a missing paddle or torch, library noise, the extras."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_without(blocked, code, **env):
    """Run ``code`` in a fresh interpreter where importing any of ``blocked`` fails, as in an
    environment where those packages were never installed."""
    prelude = textwrap.dedent(f"""
        import sys
        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {set(blocked)!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, NotInstalled())
    """)
    full_env = {k: v for k, v in os.environ.items() if k != "GLOG_minloglevel"}
    full_env.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env)


def test_missing_paddle_is_one_sentence_naming_both_packages(shared):
    r = run_without(["paddle"], f"""
        from paddleface.cli import main
        sys.exit(main(["detect", {str(shared / 'images/2.jpg')!r}]))
    """)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: PaddlePaddle is not installed: pip install paddlepaddle (CPU) or "
        "paddlepaddle-gpu (CUDA), or install this package as paddleface[cpu] / paddleface[gpu]"]
    r = run_without(["paddle"], """
        try:
            from paddleface import FaceDetector
        except ImportError as e:
            print(e)
    """)
    assert "pip install paddlepaddle (CPU) or paddlepaddle-gpu (CUDA)" in r.stdout


def test_detect_needs_no_torch_once_weights_are_converted(shared, tmp_path):
    from paddleface.detector import FaceDetector
    home = tmp_path / "home"
    old = os.environ["PADDLEFACE_HOME"]
    os.environ["PADDLEFACE_HOME"] = str(home)
    try:
        FaceDetector("ulfd-slim-320", device="cpu")  # converts (with torch) into the cache
    finally:
        os.environ["PADDLEFACE_HOME"] = old
    code = f"""
        from paddleface.cli import main
        code = main(["detect", {str(shared / 'images/2.jpg')!r}, "-m", "ulfd-slim-320",
                     "--device", "cpu"])
        assert "torch" not in sys.modules and "x2paddle" not in sys.modules
        sys.exit(code)
    """
    r = run_without(["torch", "x2paddle"], code, PADDLEFACE_HOME=str(home))
    assert r.returncode == 0 and r.stdout.strip().endswith("4 faces"), r.stderr
    # without a converted copy the import itself needs no torch either: test_torch_free.py


def test_the_python_api_prints_no_library_noise(tmp_path):
    """From a fresh cache: converting, exporting the static graph, detecting."""
    r = run_without([], """
        import numpy as np
        from paddleface import FaceDetector
        det = FaceDetector("rfb-lm", device="cpu")
        det.detect(np.zeros((120, 160, 3), np.uint8))
        FaceDetector("rfb-lm", device="cpu", engine="dygraph").detect(np.zeros((50, 50, 3), np.uint8))
    """, PADDLEFACE_HOME=str(tmp_path / "home"))
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr


def test_extras_install_paddle_for_cpu_or_gpu():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(d.startswith("paddlepaddle==") for d in extras["cpu"])
    assert any(d.startswith("paddlepaddle-gpu==") for d in extras["gpu"])
    assert not any(d.startswith(("paddlepaddle", "torch")) for d in project["dependencies"])
    # every third-party module the evaluation imports is installed by `pip install .`
    assert {"scipy", "matplotlib"} <= set(project["dependencies"])
