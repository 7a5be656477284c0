"""The ARM C++ detector (deploy/lite/cpp, built by build_arm.sh) against `paddleface detect`.

    python deploy/lite/compare_arm.py [--models ulfd-rfb-320 rfb-lm blazeface-320]
        [--images DIR] [--int8] [--ap] [--calib-images N] [--work DIR]

For each model: `paddleface export ID --format lite` (with --int8: post-training int8
calibrated on N WIDER val images of events 0-29), the photos written as PPM, the aarch64
binary run on them under qemu-aarch64-static (directly on an ARM64 host), and the faces
compared with the Python detector (Paddle Inference, fp32) on the same photos: faces matched
by IoU, the largest box / score / landmark difference, images whose face count differs.
--ap adds the WIDER Easy/Medium/Hard AP of the ARM binary on the held-out subset images
(events 30-61), evaluation protocol, fp32 and int8 .nb. Under emulation only correctness
means anything: no timings are printed.

The ARM build is found in $PADDLEFACE_ARM_BUILD, else $PADDLEFACE_HOME/arm-build (default
~/.cache/paddleface/arm-build).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from paddleface.weights import home  # noqa: E402

SYSROOT = Path("/usr/aarch64-linux-gnu")
BINARY = "bin/face_detect_lite"


def arm_build_dir() -> Path:
    env = os.environ.get("PADDLEFACE_ARM_BUILD")
    return Path(env) if env else home() / "arm-build"


def arm_command(build: Optional[Path] = None) -> List[str]:
    """How to start the ARM detector here; raises RuntimeError saying what is missing."""
    build = build or arm_build_dir()
    binary = build / BINARY
    if not binary.is_file():
        raise RuntimeError(f"no ARM build at {build} ({BINARY} missing): run "
                           "`bash deploy/lite/build_arm.sh PADDLE_LITE_SRC` or set "
                           "PADDLEFACE_ARM_BUILD")
    if platform.machine() in ("aarch64", "arm64"):
        return [str(binary)]
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if qemu is None:
        raise RuntimeError("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    if not (SYSROOT / "lib/ld-linux-aarch64.so.1").exists():
        raise RuntimeError(f"no aarch64 C/C++ runtime under {SYSROOT} (Debian: "
                           "libstdc++6-arm64-cross, installed with g++-aarch64-linux-gnu)")
    return [qemu, "-L", str(SYSROOT), str(binary)]


def write_ppm(photos: Sequence[Path], out_dir: Path) -> Dict[Path, Path]:
    """Each photo decoded by paddleface (OpenCV) and written as binary PPM: the C++ input."""
    import cv2

    from paddleface.image_io import read_image
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, p in enumerate(photos):
        dst = out_dir / f"{i:04d}_{Path(p).stem}.ppm"
        cv2.imwrite(str(dst), read_image(p))
        written[Path(p)] = dst
    return written


def run_arm(command: List[str], export_dir: Path, nb: str, ppms: Sequence[Path], json_out: Path,
            threads: int = 2, clip: bool = True) -> Dict[str, List[dict]]:
    """Faces per PPM path from the ARM binary (raises RuntimeError with its error output);
    ``clip=False``: boxes as decoded, for the evaluation protocols."""
    cmd = command + [str(export_dir), *map(str, ppms), "--model", nb,
                     "--json", str(json_out), "--threads", str(threads)]
    cmd += [] if clip else ["--no-clip"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("[I ")]
        raise RuntimeError(f"the ARM detector failed ({r.returncode}): " + "\n".join(errors[-5:]))
    return json.loads(json_out.read_text())["images"]


def as_rows(faces) -> np.ndarray:
    """(K, 5 or 15): box, score[, 10 landmark coordinates] from Face objects or JSON dicts."""
    rows = []
    for f in faces:
        if isinstance(f, dict):
            row = list(f["box"]) + [f["score"]] + [v for pt in f.get("landmarks", []) for v in pt]
        else:
            row = list(f.box) + [f.score] + ([] if f.landmarks is None else
                                             list(np.ravel(f.landmarks)))
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1) if rows else np.zeros((0, 5))


def labels_of(faces) -> List[str]:
    """The class name of each face (Face objects or JSON dicts; "face" when absent)."""
    return [(f.get("label", "face") if isinstance(f, dict) else getattr(f, "label", "face"))
            for f in faces]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[:, None, 2], b[:, 2]) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[:, 3]) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b) - inter)


def agreement(ref: Sequence[np.ndarray], ours: Sequence[np.ndarray],
              ref_labels: Optional[Sequence[List[str]]] = None,
              our_labels: Optional[Sequence[List[str]]] = None) -> dict:
    """Faces of two detectors on the same images: each reference face is paired with the
    unpaired face of highest IoU (>= 0.5); differences are over the pairs (``label``: pairs
    whose class names differ, when both label lists are given)."""
    out = {"images": len(ref), "faces_ref": 0, "faces_ours": 0, "count_mismatch": 0,
           "unpaired": 0, "box": 0.0, "score": 0.0, "landmarks": 0.0, "label": 0}
    n = len(ref)
    ref_labels = ref_labels or [None] * n
    our_labels = our_labels or [None] * n
    for r, o, rl, ol in zip(ref, ours, ref_labels, our_labels):
        out["faces_ref"] += len(r)
        out["faces_ours"] += len(o)
        out["count_mismatch"] += int(len(r) != len(o))
        if len(r) == 0 or len(o) == 0:
            out["unpaired"] += max(len(r), len(o))
            continue
        iou = _iou(r[:, :4], o[:, :4])
        free = np.ones(len(o), bool)
        paired = 0
        for i in np.argsort(-r[:, 4], kind="stable"):
            cand = np.where(free, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] < 0.5:
                continue
            free[j] = False
            paired += 1
            out["box"] = max(out["box"], float(np.abs(r[i, :4] - o[j, :4]).max()))
            out["score"] = max(out["score"], float(abs(r[i, 4] - o[j, 4])))
            if rl is not None and ol is not None:
                out["label"] += int(rl[i] != ol[j])
            if r.shape[1] > 5 and o.shape[1] > 5:
                out["landmarks"] = max(out["landmarks"], float(np.abs(r[i, 5:] - o[j, 5:]).max()))
        out["unpaired"] += len(r) + len(o) - 2 * paired
    return out


def calibration_list(shared: Path, n: int, dest: Path) -> Path:
    """The first n subset images of events 0-29 (never the held-out events 30-61)."""
    subset = (shared / "widerface/val/subset.txt").read_text().split()
    names = [s for s in subset if int(s.split("--")[0]) < 30][:n]
    dest.write_text("\n".join(str(shared / "widerface/val/images" / s) for s in names))
    return dest


def export_lite(model_id: str, out: Path, calib: Optional[Path]) -> dict:
    from paddleface.export import export_model
    from paddleface.registry import get_record
    if (out / "deploy.json").is_file() and (calib is None or (out / "model_arm_int8.nb").is_file()):
        return json.loads((out / "deploy.json").read_text())
    return export_model(get_record(model_id), "lite", out,
                        calib_images=str(calib) if calib else None)


def python_faces(model_id: str, photos: Sequence[Path]) -> List[list]:
    """The Python detector's faces (Face objects) per photo."""
    from paddleface.detector import FaceDetector
    from paddleface.image_io import read_image
    det = FaceDetector(model_id, device="cpu")
    return [det.detect(read_image(p)) for p in photos]


def check_kernels(export_dir: Path) -> None:
    """The export's ARM files need no kernel the ARM runtime was built without."""
    listed = (ROOT / "deploy/lite/arm_kernels.txt").read_text().splitlines()
    needed = export_dir / "arm_kernels.txt"
    missing = sorted(set(needed.read_text().splitlines()) - set(listed)) if needed.is_file() else []
    if missing:
        raise RuntimeError(f"{export_dir}: its ARM files need kernels deploy/lite/arm_kernels.txt "
                           f"lacks ({', '.join(m.split()[0] for m in missing)}): add the lines "
                           "of its arm_kernels.txt and rerun build_arm.sh")


def compare(command: List[str], model_id: str, photos: Sequence[Path], work: Path,
            variants: Sequence[str], calib: Optional[Path] = None) -> Dict[str, dict]:
    """{file: agreement with the Python detector} for each model_arm{variant}.nb of the export
    in work/model_id (made there when missing)."""
    export_dir = work / model_id
    export_lite(model_id, export_dir, calib)
    check_kernels(export_dir)
    ppms = write_ppm(photos, work / "ppm")
    ref = python_faces(model_id, photos)
    results = {}
    for v in variants:
        nb = f"model_arm{v}.nb"
        faces = run_arm(command, export_dir, nb, [ppms[p] for p in photos],
                        work / f"{model_id}{v}.json")
        arm = [faces[str(ppms[p])] for p in photos]
        results[nb] = agreement([as_rows(f) for f in ref], [as_rows(f) for f in arm],
                                [labels_of(f) for f in ref], [labels_of(f) for f in arm])
    return results


def arm_ap(command: List[str], model_id: str, export_dir: Path, nb: str, shared: Path,
           work: Path) -> dict:
    """WIDER AP of the ARM binary on the held-out subset images (events 30-61), with the
    model's evaluation protocol (a copy of deploy.json with the evaluation's thresholds and,
    where it differs, its resize rule)."""
    from dataclasses import asdict

    from paddleface.evaluation.predict import format_boxes, write_prediction
    from paddleface.evaluation.widerface import evaluate, load_ground_truth, read_predictions
    from paddleface.registry import get_record
    rec = get_record(model_id)
    ev = rec.evaluation
    eval_dir = work / f"{model_id}-eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    info = json.loads((export_dir / "deploy.json").read_text())
    info["detection"] = asdict(ev.detection)
    if ev.preprocess is not None:
        info["preprocess"] = asdict(ev.preprocess)
    if rec.preprocess.resize == "long_side" and ev.default_long_side is not None:
        info["preprocess"]["long_side"] = ev.default_long_side
    (eval_dir / "deploy.json").write_text(json.dumps(info))
    target = eval_dir / nb
    if not target.exists():
        target.symlink_to((export_dir / nb).resolve())
    subset = (shared / "widerface/val/subset.txt").read_text().split()
    names = [s for s in subset if int(s.split("--")[0]) >= 30]
    photos = [shared / "widerface/val/images" / s for s in names]
    ppms = write_ppm(photos, work / "ppm-heldout")
    faces = run_arm(command, eval_dir, nb, [ppms[p] for p in photos],
                    work / f"{model_id}-{nb}-ap.json", clip=False)
    pred = work / f"pred-{model_id}-{nb}"
    shutil.rmtree(pred, ignore_errors=True)
    for name, p in zip(names, photos):
        rows = as_rows(faces[str(ppms[p])])
        boxes, scores = rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32)
        write_prediction(pred / (name[:-4] + ".txt"), Path(name).stem,
                         format_boxes(boxes, scores, ev.box_format))
    gt = load_ground_truth(shared / "widerface/ground_truth")
    return evaluate(read_predictions(pred), gt, subset=True).ap


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["ulfd-rfb-320", "rfb-lm", "blazeface-320"])
    ap.add_argument("--images", help="folder of photos (default: $PADDLEFACE_SHARED/images)")
    ap.add_argument("--int8", action="store_true", help="also the post-training int8 .nb")
    ap.add_argument("--ap", action="store_true", help="also the held-out WIDER AP on ARM")
    ap.add_argument("--calib-images", type=int, default=240,
                    help="WIDER images of events 0-29 to calibrate int8 on (default: all 240)")
    ap.add_argument("--work", help="keep exports and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    images = Path(args.images) if args.images else shared / "images"
    photos = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    try:
        command = arm_command()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="compare_arm_"))
    work.mkdir(parents=True, exist_ok=True)
    variants = [""] + (["_int8"] if args.int8 else [])
    print(f"{len(photos)} photos of {images}; ARM detector under emulation vs `paddleface "
          f"detect` (Paddle Inference fp32, x86)")
    print(f"{'model':15} {'file':19} {'faces py/arm':>12} {'count !=':>8} {'unpaired':>8} "
          f"{'box px':>8} {'score':>9} {'landm px':>8} {'label !=':>8}")
    for m in args.models:
        calib = (calibration_list(shared, args.calib_images, work / "calib.txt")
                 if args.int8 else None)
        for nb, a in compare(command, m, photos, work, variants, calib).items():
            print(f"{m:15} {nb:19} {a['faces_ref']:>5}/{a['faces_ours']:<6} "
                  f"{a['count_mismatch']:>8} {a['unpaired']:>8} {a['box']:8.3f} "
                  f"{a['score']:9.2e} {a['landmarks']:8.3f} {a['label']:>8}")
        if args.ap:
            for v in variants:
                r = arm_ap(command, m, work / m, f"model_arm{v}.nb", shared, work)
                print(f"{m:15} model_arm{v}.nb held-out AP (events 30-61) easy {r['easy']:.4f} "
                      f"medium {r['medium']:.4f} hard {r['hard']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
