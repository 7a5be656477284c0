"""Exporting a registry model for deployment, each export checked on the spot.

Formats: ``inference`` (a static graph for paddle.inference), ``onnx`` (through paddle2onnx,
checked with onnxruntime; dynamic batch, and dynamic H and W unless fixed), ``lite`` (Paddle Lite .nb files made by the Python 3.10 /
paddle 2.6.2 toolchain of deploy/lite/setup.sh) and ``web`` (the ONNX export plus a static page
that detects in the browser with onnxruntime-web: :mod:`paddleface.web`). Every export directory holds
``deploy.json`` (model id, input shape, preprocessing, anchors, thresholds) and the maximum
absolute difference of its outputs from the dygraph model on a built-in synthetic picture
(or a photo the user names).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .detector import load_network
from .engine import InferenceEngine, deploy_info, input_spec_shape, save_static
from .errors import PaddleFaceError
from .image_io import IMAGE_SUFFIXES, read_image
from .onnx_export import export_onnx, output_names
from .preprocess import normalize
from .registry import ModelRecord

ROOT = Path(__file__).resolve().parents[1]
MAX_DIFF = 1e-4


def lite_python() -> Path:
    """The interpreter of the Lite toolchain: $PADDLEFACE_LITE_PYTHON, $PADDLEFACE_PY310 or
    .venv-lite/bin/python (made by ``bash deploy/lite/setup.sh``)."""
    for env in ("PADDLEFACE_LITE_PYTHON", "PADDLEFACE_PY310"):
        if os.environ.get(env):
            return Path(os.environ[env])
    default = ROOT / ".venv-lite" / "bin" / "python"
    if default.is_file():
        return default
    raise PaddleFaceError("the Paddle Lite toolchain is not set up: run `bash deploy/lite/setup.sh` "
                          "(a Python 3.10 venv with paddlepaddle 2.6.2 and paddlelite 2.13rc0, "
                          "made at .venv-lite) or set PADDLEFACE_PY310 to the python of "
                          "such a venv")


def synthetic_photo(width: int = 640, height: int = 480) -> np.ndarray:
    """A fixed BGR test picture (gradients, skin-toned ellipses with eyes, seeded noise): every
    export checks itself on it when no photo is named, so no test data is needed."""
    import cv2
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([90 + 80 * xx / width, 120 + 60 * yy / height,
                    150 + 50 * np.sin(xx / 37.0) * np.cos(yy / 23.0)], axis=-1)
    for cx, cy, r in ((0.3, 0.45, 0.12), (0.7, 0.5, 0.08), (0.5, 0.75, 0.05)):
        c, rad = (int(cx * width), int(cy * height)), int(r * min(width, height) * 1.6)
        cv2.ellipse(img, c, (int(rad * 0.8), rad), 0, 0, 360, (120, 160, 215), -1)
        for dx in (-0.3, 0.3):
            cv2.circle(img, (c[0] + int(dx * rad), c[1] - int(0.2 * rad)), max(1, rad // 8),
                       (40, 40, 40), -1)
    noise = np.random.default_rng(0).normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def check_input(record: ModelRecord, size: Tuple[int, int], image: Optional[str]) -> np.ndarray:
    """(1, 3, H, W) network input from ``image`` (default: :func:`synthetic_photo`) resized
    to ``size`` (width, height)."""
    import cv2
    photo = read_image(image) if image else synthetic_photo()
    img = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    return normalize(record.preprocess, img)[None]


def _max_diff(ours: List[np.ndarray], ref) -> float:
    ref = [r for r in ref if r is not None]
    if len(ours) != len(ref):
        raise PaddleFaceError(f"the export has {len(ours)} outputs, the model {len(ref)}")
    return max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(ours, ref))


def export_model(record: ModelRecord, fmt: str, out_dir, weights: Optional[str] = None,
                 input_size: Optional[Tuple[int, int]] = None, check_image: Optional[str] = None,
                 int8: bool = False, calib_images: Optional[str] = None,
                 precision: str = "fp32") -> Dict:
    """Export and check; returns the report also written into ``out_dir/deploy.json``.

    Lite: ``int8`` adds opt's int8 weight quantization, ``calib_images`` (a folder or a
    .txt list of photos) post-training int8 quantization calibrated on those photos.
    ONNX: ``precision`` "int8" adds ``model_int8.onnx`` (ONNX Runtime static QDQ quantisation
    calibrated on ``calib_images``)."""
    import paddle
    from .quantize import check_precision
    # the user's mistakes first, before weights are loaded or converted
    if precision != "fp32":
        if fmt != "onnx":
            raise PaddleFaceError("--precision int8 applies to --format onnx (Lite: --int8, "
                                  "--calib-images)")
        check_precision(record, precision)
        if not calib_images:
            raise PaddleFaceError("--precision int8 calibrates on photos you name: give "
                                  "--calib-images DIR|LIST.txt")
    elif (int8 or calib_images) and fmt != "lite":
        raise PaddleFaceError("--int8 and --calib-images apply to --format lite only "
                              "(or to onnx with --precision int8)")
    if fmt == "lite" and record.lite_refusal:
        raise PaddleFaceError(record.lite_refusal)
    calib = calibration_images(calib_images) if calib_images else None
    if fmt == "web":  # the runtime files (npm ci once), or why they cannot be had
        from .web import runtime_dir
        runtime_dir()
    out = Path(out_dir)
    net, wpath = load_network(record, weights)
    fixed = record.preprocess.resize == "fixed"
    size = tuple(input_size) if input_size else (record.preprocess.size if fixed else (640, 480))
    x = check_input(record, size, check_image)
    with paddle.no_grad():
        ref = [None if t is None else t.numpy() for t in net(paddle.to_tensor(x))]
    out.mkdir(parents=True, exist_ok=True)
    shape = input_spec_shape(record, input_size)
    report: Dict = {"format": fmt, "weights": str(wpath)}
    if fmt == "inference":
        prefix = save_static(net, record, out, input_size)
        report["max_abs_diff"] = {}
        for onednn in (True, False):
            eng = InferenceEngine(prefix, "cpu", onednn=onednn,
                                  skip_passes=record.onednn_skip_passes)
            report["max_abs_diff"][f"onednn_{'on' if onednn else 'off'}"] = _max_diff(
                [o for o in eng(x) if o is not None], ref)
        report["files"] = sorted(p.name for p in out.iterdir())
    elif fmt in ("onnx", "web"):
        report.update(_export_onnx(net, record, out, input_size, x, ref))
        if precision == "int8":
            from .quantize import quantize_onnx
            q = quantize_onnx(record, out / "model.onnx", out / "model_int8.onnx", calib,
                              input_size)
            report["files"].append(q.name)
            report["int8_onnx_bytes"] = q.stat().st_size
            report["int8_calibration_images"] = len(calib)
        if fmt == "web":
            from .web import write_page
            report.update(write_page(out))
            report["files"] = report.pop("web_files")
    elif fmt == "lite":
        report.update(_export_lite(record, wpath, out, size, x, ref, int8, calib))
        shape = [1, 3, size[1], size[0]]
    else:
        raise PaddleFaceError(f"--format must be inference, lite, onnx or web, not {fmt!r}")
    info = deploy_info(record, shape)
    info["export"] = report
    (out / "deploy.json").write_text(json.dumps(info, indent=1))
    worst = report["max_abs_diff"]
    worst = max(worst.values()) if isinstance(worst, dict) else worst
    if not worst <= MAX_DIFF:  # NaN fails too
        raise PaddleFaceError(f"{out}: the exported model differs from the dygraph model by "
                              f"{worst:.3g} (more than {MAX_DIFF}); the export is not usable")
    return info


def _export_onnx(net, record, out: Path, input_size, x, ref) -> Dict:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise PaddleFaceError(f"ONNX export needs onnxruntime for its check ({e})") from None
    from .engine import OnnxRuntimeEngine, check_batches, compare_with_dygraph
    path = export_onnx(net, record, out / "model.onnx", input_size)
    eng = OnnxRuntimeEngine(path)
    # the photo, and the batch and size changes the graph allows
    diffs = [_max_diff([o for o in eng(x) if o is not None], ref),
             compare_with_dygraph(net, record, eng, check_batches(record, input_size))]
    diff = float("nan") if np.isnan(diffs).any() else max(diffs)
    return {"max_abs_diff": diff, "files": ["model.onnx"], "onnx_bytes": path.stat().st_size,
            "outputs": list(output_names(record))}


def run_lite(nb: Path, x: np.ndarray, outputs: int, repeat: int = 1) -> Tuple[List[np.ndarray], float]:
    """Run a .nb file with Lite's Python predictor in the toolchain interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", x)
        r = subprocess.run([str(lite_python()), str(ROOT / "deploy/lite/lite_tool.py"), "run",
                            str(nb), str(Path(tmp) / "x.npy"), str(Path(tmp) / "o.npz"),
                            "--outputs", str(outputs), "--repeat", str(repeat)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise PaddleFaceError(f"{nb}: Paddle Lite could not run it: {r.stderr.strip()[-500:]}")
        z = np.load(Path(tmp) / "o.npz")
        return [z[f"out{i}"] for i in range(outputs)], float(z["median_ms"])


def calibration_images(source: str) -> List[Path]:
    """Photos named by a folder (searched recursively) or a .txt file with one path per line."""
    src = Path(source)
    if src.is_dir():
        files = sorted(f for f in src.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    elif src.is_file() and src.suffix == ".txt":
        lines = [ln.strip() for ln in src.read_text().splitlines() if ln.strip()]
        files = [Path(ln) if Path(ln).is_absolute() else src.parent / ln for ln in lines]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise PaddleFaceError(f"{src}: {len(missing)} listed photos do not exist, "
                                  f"the first is {missing[0]}")
    else:
        raise PaddleFaceError(f"--calib-images {source}: expected a folder of photos or a .txt list")
    if not files:
        raise PaddleFaceError(f"--calib-images {source}: no .jpg/.png photos found")
    return files


def _write_calibration(files: List[Path], size, dest: Path) -> None:
    """The photos resized to the export size (uint8 BGR, as the deploy code feeds them)."""
    import cv2
    np.savez(dest, **{f"c{i}": cv2.resize(read_image(str(f)), size, interpolation=cv2.INTER_LINEAR)
                      for i, f in enumerate(files)})


def _export_lite(record, wpath: Path, out: Path, size, x, ref, int8: bool,
                 calib: Optional[List[Path]]) -> Dict:
    py = lite_python()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(py), str(ROOT / "deploy/lite/lite_tool.py"), "export", record.id, str(wpath),
               str(out), f"{size[0]}x{size[1]}"] + (["--int8"] if int8 else [])
        if calib:
            _write_calibration(calib, size, Path(tmp) / "calib.npz")
            cmd += ["--calib", str(Path(tmp) / "calib.npz")]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if r.returncode != 0:
        raise PaddleFaceError(f"Paddle Lite export failed: {r.stderr.strip()[-800:]}")
    tool = json.loads(r.stdout.strip().splitlines()[-1])
    sizes = tool["nb_bytes"]
    n_out = 3 if record.landmarks else 2
    outs, _ = run_lite(out / "model_x86.nb", x, n_out)
    report = {"max_abs_diff": _max_diff(outs, ref), "nb_bytes": sizes,
              "files": sorted(f"{k}.nb" for k in sizes), "arm_tested": False,
              "calibration_images": tool.get("calibration_images", 0),
              "folded_bias_reshapes": tool["folded_bias_reshapes"]}
    # int8 outputs differ from fp32 by design: reported, judged by AP (bench/lite_int8.py)
    for variant in ("model_x86_int8_weights", "model_x86_int8"):
        if variant in sizes:
            outs8, _ = run_lite(out / f"{variant}.nb", x, n_out)
            report[f"{variant}_max_abs_diff"] = _max_diff(outs8, ref)
    for leftover in ("model.pdiparams.info",):
        (out / leftover).unlink(missing_ok=True)
    shutil.rmtree(out / "__pycache__", ignore_errors=True)
    return report
