"""Whole-evaluation speed (images/s, JPEG decoding included) and AP on a WIDER FACE val set,
per engine.

    python bench/eval_speed.py [--cases ulfd-rfb-320 rfb-lm@640 retinaface-mnet@origin]
        [--engines onnxruntime inference] [--images DIR --gt DIR] [--threads 2]

Defaults to the 488-image subset in $PADDLEFACE_SHARED/widerface; prints a table with the
AP next to upstream_ap.json. Each case predicts into a fresh temporary folder, with what
``paddleface eval`` does (2 decoding threads, batches of 8 same-size images). The exported
graph is built before the clock starts.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.evaluation.predict import eval_detector, list_images, predict_widerface  # noqa
from paddleface.evaluation.widerface import evaluate, load_ground_truth, read_predictions  # noqa
from paddleface.registry import get_record  # noqa


def main():
    shared = Path(os.environ.get("PADDLEFACE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=["ulfd-rfb-320", "rfb-lm@640",
                                                   "retinaface-mnet@origin"])
    ap.add_argument("--images", default=str(shared / "widerface/val/images"))
    ap.add_argument("--gt", default=str(shared / "widerface/ground_truth"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["onnxruntime", "inference"])
    args = ap.parse_args()
    upstream = json.loads((shared / "widerface/upstream_ap.json").read_text())
    gt = load_ground_truth(args.gt)
    names = list_images(Path(args.images))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'case':24} {'engine':12} {'images':>6} {'s':>7} {'img/s':>7}   easy    medium  hard"
          f"    (upstream easy/medium/hard)")
    for case, engine in [(c, e) for c in args.cases for e in args.engines]:
        model, _, side = case.partition("@")
        record = get_record(model)
        long_side = None if side == "origin" else (int(side) if side else None)
        det = eval_detector(record, long_side, device="cpu", threads=args.threads, engine=engine)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.time()
            n, _, errors = predict_widerface(det, Path(args.images), Path(tmp), names,
                                             progress=False)
            dt = time.time() - t
            res = evaluate(read_predictions(tmp), gt, subset=True)
        ref = upstream.get(case if side else model, {}).get("ap")
        ref_s = "/".join(f"{ref[s]:.4f}" for s in ("easy", "medium", "hard")) if ref else "-"
        print(f"{case:24} {det.engine.name:12} {n:6d} {dt:7.1f} {n / dt:7.1f}   {res.ap['easy']:.4f}  "
              f"{res.ap['medium']:.4f}  {res.ap['hard']:.4f}  ({ref_s})", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
