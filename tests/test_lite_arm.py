"""Paddle Lite on ARM64: the armv8 runtime and C++ detector of deploy/lite/build_arm.sh, run
under qemu-aarch64-static on the shared photos and compared with the Python detector. The
detector's C++ pre- and post-processing are also checked on the host, without Lite.

The ARM build is made once per machine (`bash deploy/lite/build_arm.sh PADDLE_LITE_SRC`) into
$PADDLEFACE_ARM_BUILD (default $PADDLEFACE_HOME/arm-build); without it, or without qemu, these
tests skip and say why (pytest -rs). Timings under emulation mean nothing: none are checked.
"""
import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compare_arm", ROOT / "deploy/lite/compare_arm.py")
compare_arm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_arm)

# Read at import, before conftest points PADDLEFACE_HOME at a per-run folder.
ARM_BUILD = compare_arm.arm_build_dir()
try:
    ARM = compare_arm.arm_command(ARM_BUILD)
    WHY_NOT = ""
except RuntimeError as e:
    ARM, WHY_NOT = None, str(e)
needs_arm = pytest.mark.skipif(ARM is None, reason=f"ARM tests skipped: {WHY_NOT}")


@pytest.fixture(scope="module")
def work(tmp_path_factory, shared):
    """Exports shared by the tests; ulfd-rfb-320's with post-training int8 calibrated on 64
    WIDER images of events 0-29 (made once: each export costs a minute or two)."""
    work = tmp_path_factory.mktemp("arm")
    if ARM is not None:
        calib = compare_arm.calibration_list(shared, 64, work / "calib.txt")
        compare_arm.export_lite("ulfd-rfb-320", work / "ulfd-rfb-320", calib)
    return work


def photos(shared):
    return sorted((shared / "images").glob("*.jpg"))


# ULFD (fixed size, uint8 resize, RGB), rfb-lm (long side 640, float resize, BGR),
# blazeface-320 (letterbox with padding offsets)
@pytest.mark.parametrize("model_id", ["ulfd-rfb-320", "rfb-lm", "blazeface-320"])
def test_cpp_processing_matches_python_on_host(shared, tmp_path, host_check, get_detector,
                                               model_id):
    """The C++ input equals paddleface's (OpenCV's resize reproduced), and on the same network
    outputs the C++ decoding + NMS gives paddleface's faces."""
    from paddleface.detector import Face
    from paddleface.engine import deploy_info
    from paddleface.image_io import read_image
    from paddleface.postprocess import postprocess
    det = get_detector(model_id)
    rec = det.record
    (tmp_path / "deploy.json").write_text(json.dumps(deploy_info(rec, [1, 3, -1, -1])))
    # a 1500x2 strip too: too thin for the long-side resize, padded first (pad_short_side)
    import cv2
    strip = tmp_path / "strip.png"
    cv2.imwrite(str(strip), np.random.default_rng(0).integers(0, 256, (2, 1500, 3), np.uint8))
    faces_total = 0
    for p in photos(shared) + [strip]:
        image = read_image(p)
        ppm = compare_arm.write_ppm([p], tmp_path)[p]
        subprocess.run([str(host_check), str(tmp_path / "deploy.json"), str(ppm), "prepare",
                        str(tmp_path / "x.f32")], check=True)
        raw = np.fromfile(tmp_path / "x.f32", np.float32)
        w, h = raw[:2].view(np.int32)
        x = raw[2:].reshape(3, h, w)
        prepared = det.prepare(image)
        assert x.shape == prepared.tensor.shape, p
        # float32 resize: OpenCV (IPP) and the C++ round differently in the last bits
        assert np.abs(x - prepared.tensor).max() <= 1e-4, p
        loc, conf, landms = (o[0] if o is not None else None for o in det.forward(x[None]))
        (np.concatenate([o.ravel() for o in (loc, conf, landms) if o is not None])
         .astype(np.float32).tofile(tmp_path / "o.f32"))
        r = subprocess.run([str(host_check), str(tmp_path / "deploy.json"), str(ppm), "detect",
                            str(tmp_path / "o.f32"), str(len(loc))],
                           capture_output=True, text=True, check=True)
        lines = r.stdout.splitlines()
        boxes, scores, points = postprocess(loc, conf, landms, rec.priors(h, w),
                                            rec.priors.variances, det.protocol,
                                            prepared.to_pixels, prepared.offset)
        ref = compare_arm.as_rows([Face(b, float(s), None if points is None else points[i])
                                   for i, (b, s) in enumerate(zip(boxes, scores))])
        assert len(lines) == len(ref), p
        if len(ref):
            ours = np.array([[float(v) for v in ln.split()] for ln in lines])
            assert ours.shape == ref.shape, p
            assert np.abs(ours - ref).max() <= 1e-3, p  # printed with 6 decimals
        faces_total += len(ref)
    assert faces_total > 300


# One model per family that exports to Lite: ULFD (fixed size), the landmark models (long
# side 640), BlazeFace (letterbox 320).
@needs_arm
@pytest.mark.parametrize("model_id", ["ulfd-rfb-320", "rfb-lm", "blazeface-320"])
def test_arm_fp32_detector_matches_python_detector(shared, work, model_id):
    result = compare_arm.compare(ARM, model_id, photos(shared), work, [""])["model_arm.nb"]
    assert result["images"] == 26 and result["faces_ref"] > 300, result
    assert result["count_mismatch"] == 0 and result["unpaired"] == 0, result
    assert result["box"] <= 1.0 and result["score"] <= 1e-3, result
    if model_id != "ulfd-rfb-320":
        assert result["landmarks"] <= 1.0, result


@needs_arm
def test_arm_masked_face_detector_keeps_the_classes(shared, work):
    """ulfd-mask-320 (three classes, per-class NMS read from deploy.json's labels) on ARM
    against the Python detector on the masked photos: the same faces with the same labels."""
    masked = sorted((shared / "images/masked").iterdir())
    result = compare_arm.compare(ARM, "ulfd-mask-320", masked, work, [""])["model_arm.nb"]
    assert result["images"] == 5 and result["faces_ref"] >= 5, result
    assert result["unpaired"] == 0 and result["label"] == 0, result
    assert result["box"] <= 1.0 and result["score"] <= 1e-3, result


@needs_arm
def test_arm_int8_detector_keeps_the_faces(shared, work):
    """Post-training int8 on ARM against the Python fp32 detector: int8 moves scores and
    boxes, so faces near the 0.6 threshold may come and go, but the clear ones stay (AP:
    `python deploy/lite/compare_arm.py --int8 --ap`, deploy/lite/README.md)."""
    result = compare_arm.compare(ARM, "ulfd-rfb-320", photos(shared), work, ["_int8"])
    int8 = result["model_arm_int8.nb"]
    assert int8["faces_ref"] > 500 and int8["unpaired"] <= 0.1 * int8["faces_ref"], int8
    assert int8["score"] < 0.25, int8


@needs_arm
def test_arm_detector_reports_user_mistakes_in_one_sentence(shared, work, tmp_path):
    export_dir = work / "ulfd-rfb-320"
    ppm = compare_arm.write_ppm([shared / "images/2.jpg"], tmp_path)[shared / "images/2.jpg"]
    not_ppm = tmp_path / "photo.ppm"
    not_ppm.write_bytes((shared / "images/2.jpg").read_bytes())  # a JPEG named .ppm
    no_deploy = tmp_path / "no_deploy"
    no_deploy.mkdir()

    def run(*args):
        r = subprocess.run(ARM + [str(a) for a in args], capture_output=True, text=True)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
        return r.returncode, errors, r.stderr

    code, errors, stderr = run(no_deploy, ppm)
    assert code == 2 and len(errors) == 1 and "deploy.json: missing" in errors[0], stderr
    code, errors, stderr = run(export_dir, ppm, "--model", "model_arm_nothere.nb")
    assert code == 2 and len(errors) == 1 and "no such model file" in errors[0], stderr
    code, errors, stderr = run(export_dir, ppm, "--model", shared / "images/2.jpg")
    assert code == 2 and len(errors) == 1 and "not a Paddle Lite .nb model" in errors[0], stderr
    truncated = tmp_path / "truncated.nb"
    truncated.write_bytes((export_dir / "model_arm.nb").read_bytes()[:5000])
    code, errors, stderr = run(export_dir, ppm, "--model", truncated)
    assert code == 2 and len(errors) == 1 and "Paddle Lite could not load it" in errors[0], stderr
    code, errors, stderr = run(tmp_path / "nowhere", ppm)
    assert code == 2 and len(errors) == 1 and "no such folder" in errors[0], stderr
    # a bad image is reported and skipped; the good one is still detected
    code, errors, stderr = run(export_dir, not_ppm, tmp_path / "missing.ppm", ppm,
                               "--json", tmp_path / "out.json")
    assert code == 1 and len(errors) == 2, stderr
    assert "not a binary PPM/PGM" in errors[0] and "no such file" in errors[1], stderr
    faces = json.loads((tmp_path / "out.json").read_text())["images"][str(ppm)]
    assert len(faces) == 4 and np.all(np.array([f["score"] for f in faces]) > 0.6)
