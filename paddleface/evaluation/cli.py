"""``paddleface eval`` (and tools/eval.py): predict WIDER FACE val, then compute the AP."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import PaddleFaceError
from ..registry import REGISTRY, get_record


def add_eval_args(p: argparse.ArgumentParser) -> None:
    from ..cli_args import add_engine_args, parse_long_side
    p.add_argument("id", choices=sorted(REGISTRY), metavar="ID", help="registry id")
    p.add_argument("--images", help="WIDER_val/images (event folders of .jpg)")
    p.add_argument("--gt",
                   help="folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    p.add_argument("--voc", metavar="ROOT",
                   help="instead of WIDER FACE: per-class VOC AP (IoU > 0.5, all-point) on a "
                        "VOC tree's --split list (face / masked_face; e.g. from prepare-mafa)")
    p.add_argument("--split", default="test", help="--voc: the image list (default: test)")
    p.add_argument("--iou", type=float, default=0.5, help="--voc: IoU threshold (default 0.5)")
    p.add_argument("--metric", default="all-point", choices=["all-point", "11-point"],
                   help="--voc: all-point interpolated AP (VOC 2010+, default) or 11-point "
                        "(VOC 2007)")
    p.add_argument("--pred-dir", help="prediction folder, which also receives summary.json and "
                   "pr_curves.png (default: output/eval/ID[@SIDE]/ENGINE-SHA, SHA of the weights)")
    p.add_argument("--long-side", type=parse_long_side, default=-1,
                   help="640, 320 or origin for the any-size models (default: the record's)")
    p.add_argument("--subset", action="store_true",
                   help="evaluate only the images that have predictions")
    p.add_argument("--weights", help="a .pdparams or .pth file (default: resolved)")
    p.add_argument("--device", default=None)
    p.add_argument("--workers", type=int, default=2, help="image decoding threads")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-predict", action="store_true", help="only evaluate existing predictions")
    p.add_argument("--redo", action="store_true",
                   help="delete predictions made by other weights, protocol, long side or engine "
                        "and predict again (without it such a folder is refused)")

    add_engine_args(p)


def run_eval(args) -> int:
    from .predict import (claim_prediction_dir, eval_detector, list_images, predict_widerface,
                          prediction_manifest, read_manifest)
    from .report import ap_table, plot_pr_curves, write_summary
    from .widerface import evaluate, load_ground_truth, read_predictions

    if args.voc:
        from .voc_eval import run_voc_eval
        return run_voc_eval(args)
    if not (args.images and args.gt):
        raise PaddleFaceError("give --images and --gt (WIDER FACE val), or --voc ROOT")
    record = get_record(args.id)
    gt = load_ground_truth(args.gt)  # fail early on a wrong --gt, before predicting
    long_side = args.long_side
    if record.preprocess.resize != "long_side" and long_side != -1:
        size = record.preprocess.size
        raise PaddleFaceError(f"{record.id} is evaluated at its fixed size {size[0]}x{size[1]}; "
                              "--long-side applies to the any-size models only")
    if record.preprocess.resize == "long_side" and long_side == -1:
        long_side = record.evaluation.default_long_side
    setting = (f"{long_side or 'origin'}" if record.preprocess.resize == "long_side"
               else f"{record.preprocess.size[0]}x{record.preprocess.size[1]}")
    tag = record.id + (f"@{setting}" if record.preprocess.resize == "long_side" else "")
    images_dir = Path(args.images)
    engine = args.engine
    if args.no_predict:
        pred_dir = Path(args.pred_dir) if args.pred_dir else default_pred_dir(
            tag, record, args.weights,
            engine if args.precision == "fp32" else "onnxruntime" + precision_tag(args.precision))
        manifest = read_manifest(pred_dir) or {}
    else:
        det = eval_detector(record, long_side, weights=args.weights, device=args.device,
                            engine=engine, threads=args.threads, precision=args.precision,
                            calibration=args.calib_images)
        manifest = prediction_manifest(det, setting, args.weights)
        pred_dir = Path(args.pred_dir) if args.pred_dir else default_pred_dir(
            tag, record, args.weights, det.engine.name + precision_tag(args.precision),
            manifest["weights_sha256"])
        note = claim_prediction_dir(pred_dir, manifest, redo=args.redo)
        if note:
            print(note)
        names = list_images(images_dir)
        t0 = time.time()
        predicted, skipped, errors = predict_widerface(
            det, images_dir, pred_dir, names, workers=args.workers, batch_size=args.batch_size)
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        if predicted:
            dt = time.time() - t0
            print(f"predicted {predicted} images in {dt:.1f} s ({predicted / dt:.1f} images/s), "
                  f"{skipped} already done")
    result = evaluate(read_predictions(pred_dir), gt, subset=args.subset)
    published = record.published_ap.get(setting)
    print(f"{tag}: WIDER FACE val AP over {result.images} images")
    print(ap_table(result, published))
    # beside the predictions they describe: two evaluations never overwrite each other's
    plot_pr_curves(result, f"{tag} on WIDER FACE val ({result.images} images)",
                   pred_dir / "pr_curves.png")
    write_summary(result, pred_dir / "summary.json", model=record.id, setting=setting,
                  subset=args.subset, predictions=str(pred_dir),
                  weights={"path": manifest.get("weights"),
                           "sha256": manifest.get("weights_sha256")},
                  protocol=manifest.get("protocol"), engine=manifest.get("engine"))
    print(f"wrote {pred_dir / 'pr_curves.png'} and {pred_dir / 'summary.json'}")
    return 0


def precision_tag(precision: str) -> str:
    """What a precision adds to a prediction folder's engine name ("" for fp32)."""
    return "" if precision == "fp32" else f"-{precision}"


def default_pred_dir(tag: str, record, weights, engine: str, sha256: str = None) -> Path:
    """``output/eval/TAG/ENGINE-SHA``: other weights or another engine get another folder."""
    if sha256 is None:  # --no-predict: the weights are only hashed, not loaded
        from ..weights import resolve_weights, sha256_of
        sha256 = sha256_of(Path(weights) if weights else
                           resolve_weights(record, None, allow_download=False))
        # "auto" is Paddle Inference whenever the weights come from a file, as they do here
        engine = "inference" if engine == "auto" else engine
    return Path("output/eval") / tag / f"{engine}-{sha256[:12]}"


def register(sub) -> None:
    p = sub.add_parser("eval", help="WIDER FACE val AP (Easy/Medium/Hard) with PR curves, or "
                       "per-class VOC AP (--voc)")
    add_eval_args(p)
    p.set_defaults(func=run_eval)
