"""Paddle Lite on ARM64: the armv8 runtime and C++ detector of deploy/lite/build_arm.sh, run
under qemu-aarch64-static on the shared photos and compared with the Python detector.

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
    code, errors, stderr = run(tmp_path / "nowhere", ppm)
    assert code == 2 and len(errors) == 1 and "no such folder" in errors[0], stderr
    # a bad image is reported and skipped; the good one is still detected
    code, errors, stderr = run(export_dir, not_ppm, tmp_path / "missing.ppm", ppm,
                               "--json", tmp_path / "out.json")
    assert code == 1 and len(errors) == 2, stderr
    assert "not a binary PPM/PGM" in errors[0] and "no such file" in errors[1], stderr
    faces = json.loads((tmp_path / "out.json").read_text())["images"][str(ppm)]
    assert len(faces) == 4 and np.all(np.array([f["score"] for f in faces]) > 0.6)
