"""Paddle Lite int8 of a fixed-size model: post-training quantization calibrated on the subset
images of events 0-29 (model_*_int8.nb) and opt's int8 weight quantization
(model_*_int8_weights.nb). Prints the .nb sizes and the WIDER AP of the x86 files on the subset
images of events 30-61.

    python bench/lite_int8.py [--model ulfd-rfb-320]

Needs the Lite toolchain (bash deploy/lite/setup.sh; $PADDLEFACE_LITE_PYTHON or
$PADDLEFACE_PY310). The ARM .nb files run in the C++ detector of deploy/lite/build_arm.sh
under qemu when that build is present (deploy/lite/compare_arm.py; tens of minutes under
emulation); otherwise their rows say why not.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddleface.evaluation.predict import format_boxes, write_prediction  # noqa: E402
from paddleface.evaluation.widerface import evaluate, load_ground_truth, read_predictions  # noqa: E402
from paddleface.export import export_model, lite_python  # noqa: E402
from paddleface.image_io import read_image  # noqa: E402
from paddleface.postprocess import postprocess  # noqa: E402
from paddleface.preprocess import resize_for  # noqa: E402
from paddleface.registry import get_record  # noqa: E402

sys.path.insert(0, str(ROOT / "deploy/lite"))
import compare_arm  # noqa: E402


def main():
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ulfd-rfb-320")
    args = ap.parse_args()
    rec = get_record(args.model)
    subset = (shared / "widerface/val/subset.txt").read_text().split()
    names = [n for n in subset if int(n.split("--")[0]) >= 30]
    calib = [str(shared / "widerface/val/images" / n) for n in subset if int(n.split("--")[0]) < 30]
    gt = load_ground_truth(shared / "widerface/ground_truth")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "calib.txt").write_text("\n".join(calib))
        info = export_model(rec, "lite", tmp / "lite", int8=True,
                            calib_images=str(tmp / "calib.txt"))["export"]
        images, scale = {}, {}
        for i, n in enumerate(names):
            img = read_image(shared / "widerface/val/images" / n)
            resized, fx, fy, _ = resize_for(rec.preprocess, img)
            images[f"i{i}"] = resized
            scale[f"i{i}"] = np.array([resized.shape[1] / fx, resized.shape[0] / fy], np.float32)
        np.savez(tmp / "images.npz", **images)
        rows = []
        for variant in ("model_x86", "model_x86_int8", "model_x86_int8_weights"):
            out = tmp / f"{variant}.npz"
            subprocess.run([str(lite_python()), str(ROOT / "deploy/lite/lite_tool.py"), "run-many",
                            rec.id, str(tmp / "lite" / f"{variant}.nb"), str(tmp / "images.npz"),
                            str(out)], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            z = np.load(out)
            pred = tmp / f"pred_{variant}"
            for i, n in enumerate(names):
                loc, conf = z[f"i{i}/0"], z[f"i{i}/1"]
                h, w = images[f"i{i}"].shape[:2]
                boxes, scores, _ = postprocess(loc, conf, None, rec.priors(h, w), rec.priors.variances,
                                               rec.evaluation.detection, scale[f"i{i}"])
                write_prediction(pred / (n[:-4] + ".txt"), Path(n).stem,
                                 format_boxes(boxes, scores, rec.evaluation.box_format))
            ap_ = evaluate(read_predictions(pred), gt, subset=True).ap
            rows.append((variant, info["nb_bytes"][variant], ap_))
        try:
            arm = compare_arm.arm_command()
        except RuntimeError as e:
            arm, why = None, str(e)
        arm_rows = []
        for variant in ("model_arm", "model_arm_int8", "model_arm_int8_weights"):
            ap_ = (compare_arm.arm_ap(arm, rec.id, tmp / "lite", variant + ".nb", shared, tmp)
                   if arm else None)
            arm_rows.append((variant, info["nb_bytes"][variant], ap_))
    print(f"calibration: {info['calibration_images']} images (events 0-29); "
          f"AP on {len(names)} images (events 30-61)")
    print(f"{'file':28} {'KB':>6} {'easy':>7} {'medium':>7} {'hard':>7} {'easy vs fp32':>13}")
    for v, size, ap_ in rows:
        print(f"{v + '.nb':28} {size / 1024:6.0f} {ap_['easy']:7.4f} {ap_['medium']:7.4f} "
              f"{ap_['hard']:7.4f} {ap_['easy'] - rows[0][2]['easy']:+13.4f}")
    for v, size, ap_ in arm_rows:
        if ap_ is None:
            print(f"{v + '.nb':28} {size / 1024:6.0f}   (not run: {why})")
        else:
            print(f"{v + '.nb':28} {size / 1024:6.0f} {ap_['easy']:7.4f} {ap_['medium']:7.4f} "
                  f"{ap_['hard']:7.4f} {ap_['easy'] - arm_rows[0][2]['easy']:+13.4f}  (ARM, qemu)")


if __name__ == "__main__":
    main()
