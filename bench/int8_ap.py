"""WIDER AP of ``precision="int8"`` beside fp32, per model, on held-out events.

    python bench/int8_ap.py [--models ulfd-rfb-320 rfb-lm ...] [--calib 48]

The int8 model is calibrated on ``--calib`` photos of the shared subset's events 0-29 (every
k-th, so all events are seen) and evaluated, with fp32 beside it, on the subset images of
events 30-61, which it never saw (each model's own evaluation protocol: ``paddleface eval``'s
``eval_detector``, the ONNX Runtime engine at 1 thread, its default long side). The goal is a
loss within 0.005 Easy/Medium and 0.01 Hard.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    from paddleface.evaluation.predict import eval_detector, predict_widerface
    from paddleface.evaluation.widerface import evaluate, load_ground_truth, read_predictions
    from paddleface.registry import REGISTRY, get_record
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+",
                    default=[i for i, r in REGISTRY.items() if r.checkpoint is not None])
    ap.add_argument("--calib", type=int, default=48)
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args()
    subset = (shared / "widerface/val/subset.txt").read_text().split()
    images = shared / "widerface/val/images"
    held_out = [n for n in subset if int(n.split("--")[0]) >= 30]
    train = [n for n in subset if int(n.split("--")[0]) < 30]
    step = max(1, len(train) // args.calib)
    calib = [images / n for n in train[::step]][:args.calib]
    gt = load_ground_truth(shared / "widerface/ground_truth")
    print(f"load average at start: {os.getloadavg()[0]:.1f}; calibration: {len(calib)} photos "
          f"of events 0-29; evaluation: {len(held_out)} photos of events 30-61")
    print(f"{'model':16} {'precision':9} {'easy':>7} {'medium':>7} {'hard':>7}")
    rows = {}
    for model in args.models:
        from dataclasses import replace
        # measured here whether or not the registry offers int8 for it yet
        rec = replace(get_record(model), int8_cpu=True)
        long_side = rec.evaluation.default_long_side if rec.preprocess.resize == "long_side" \
            else -1
        res = {}
        for precision in ("fp32", "int8"):
            det = eval_detector(rec, long_side, device="cpu", engine="onnxruntime", threads=1,
                                precision=precision,
                                calibration=calib if precision == "int8" else None)
            with tempfile.TemporaryDirectory() as tmp:
                predict_widerface(det, images, Path(tmp), held_out, workers=1, progress=False)
                r = evaluate(read_predictions(tmp), gt, subset=True)
            res[precision] = {k: float(v) for k, v in r.ap.items()}
            print(f"{model:16} {precision:9} " + " ".join(f"{res[precision][k]:7.4f}"
                  for k in ("easy", "medium", "hard")), flush=True)
        d = {k: res["int8"][k] - res["fp32"][k] for k in ("easy", "medium", "hard")}
        ok = d["easy"] >= -0.005 and d["medium"] >= -0.005 and d["hard"] >= -0.01
        print(f"{model:16} {'int8-fp32':9} " + " ".join(f"{d[k]:+7.4f}" for k in
              ("easy", "medium", "hard")) + ("  within the goal" if ok else "  OVER the goal"))
        rows[model] = dict(res, delta=d, within_goal=ok)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
