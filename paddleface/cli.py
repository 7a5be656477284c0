"""The ``paddleface`` command: detect, models, convert (and the eval/export/train tools)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .errors import PaddleFaceError
from .registry import REGISTRY, get_record


def parse_size(text: str):
    """``WxH`` -> (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}")


def parse_long_side(text: str):
    """``640``, ``320`` ... or ``origin`` (no resize)."""
    if text == "origin":
        return None
    try:
        v = int(text)
        if v > 0:
            return v
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a positive number of pixels or 'origin', got {text!r}")


def add_model_args(p: argparse.ArgumentParser, default: Optional[str] = "rfb-lm") -> None:
    p.add_argument("--model", "-m", default=default, choices=sorted(REGISTRY), metavar="ID",
                   help=f"registry id ({', '.join(REGISTRY)})")
    p.add_argument("--weights", help="a .pdparams or PyTorch .pth file (default: resolved)")
    p.add_argument("--device", default=None, help="cpu, gpu or gpu:N (default: gpu if available)")


# ---------------------------------------------------------------------------- detect
def cmd_detect(args) -> int:
    from .detector import FaceDetector
    det = FaceDetector(args.model, weights=args.weights, device=args.device,
                       score_threshold=args.threshold, input_size=args.input_size,
                       long_side=args.long_side)
    return detect_inputs(det.detect, args.paths, args.out, args.json, {"model": args.model})


def detect_inputs(detect, paths, out: Optional[str], json_path: Optional[str],
                  header: Optional[dict] = None) -> int:
    """Run ``detect(image) -> faces`` over images, folders and videos: drawings into ``out``,
    all faces into ``json_path``. A bad input is reported and skipped; returns 1 if any failed.
    (Shared by ``paddleface detect`` and deploy/python/infer.py.)"""
    import cv2

    from .draw import draw_faces
    from .image_io import expand_inputs, is_video, read_image

    files, errors = expand_inputs(paths)
    for _, msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    out_dir = Path(out) if out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    failed = len(errors)
    for path in files:
        try:
            if is_video(path):
                results[str(path)] = _detect_video(detect, path, out_dir)
                print(f"{path}: {len(results[str(path)])} frames")
                continue
            image = read_image(path)
            faces = detect(image)
        except PaddleFaceError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        results[str(path)] = [f.to_dict() for f in faces]
        print(f"{path}: {len(faces)} faces")
        if out_dir:
            cv2.imwrite(str(out_dir / (path.stem + ".jpg")), draw_faces(image, faces))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(dict(header or {}, images=results), indent=1))
    if failed:
        print(f"{failed} of {len(files) + len(errors)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def _detect_video(detect, path, out_dir):
    import cv2

    from .draw import draw_faces
    from .image_io import video_frames
    writer = None
    frames = []
    try:
        for frame in video_frames(path):
            faces = detect(frame)
            frames.append([f.to_dict() for f in faces])
            if out_dir:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(out_dir / (path.stem + ".mp4")),
                                             cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
                writer.write(draw_faces(frame, faces))
    finally:
        if writer is not None:
            writer.release()
    if not frames:
        raise PaddleFaceError(f"{path}: the video has no readable frames")
    return frames


# ---------------------------------------------------------------------------- models
def cmd_models(args) -> int:
    from .weights import weights_available
    rows = [("id", "params", "GMACs", "input", "landmarks", "weights", "licence")]
    for r in REGISTRY.values():
        p = r.preprocess
        inp = (f"long side {p.long_side}" if p.resize == "long_side" else
               f"{p.resize} {p.size[0]}x{p.size[1]}" if p.resize != "fixed" else f"{p.size[0]}x{p.size[1]}")
        rows.append((r.id, f"{r.params / 1e3:.0f}k",
                     f"{r.flops / 1e9:.3f}@{r.flops_input[0]}x{r.flops_input[1]}", inp,
                     "yes" if r.landmarks else "no",
                     {"none": "not published"}.get(weights_available(r), weights_available(r) or "download"),
                     r.checkpoint.license if r.checkpoint else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


# ---------------------------------------------------------------------------- convert
def cmd_convert(args) -> int:
    from .weights import convert_checkpoint, download
    record = get_record(args.id)
    if record.checkpoint is None and not args.src:
        raise PaddleFaceError(f"{record.id} has no published checkpoint to convert; pass --src")
    if args.src:
        out = convert_checkpoint(record, Path(args.src), Path(args.out) if args.out else None)
    else:
        env = os.environ.get("PADDLEFACE_WEIGHTS")
        src = Path(env) / record.checkpoint.path if env else None
        if src is None or not src.is_file():
            src = download(record)
        out = convert_checkpoint(record, src, Path(args.out) if args.out else None)
    print(f"{record.id}: wrote {out}")
    return 0


def cmd_export(args) -> int:
    from .export import export_model
    info = export_model(get_record(args.id), args.format, args.out, args.weights,
                        args.input_size, args.check_image, args.int8, args.calib_images)
    rep = info["export"]
    print(f"{args.id}: {args.format} export in {args.out} ({', '.join(rep['files'])}), "
          f"max abs difference from dygraph {rep['max_abs_diff']}")
    return 0


def cmd_validate_voc(args) -> int:
    from .datasets.voc import validate_voc
    problems = validate_voc(args.root, args.split, not args.no_images)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{args.root}: {'valid' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddleface", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="detect faces in images, folders or videos")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_model_args(p)
    p.add_argument("--out", help="folder for the drawn images / videos")
    p.add_argument("--json", help="write all detections to this JSON file")
    p.add_argument("--threshold", type=float, default=None, help="score threshold")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="WxH network input of the fixed-size models")
    p.add_argument("--long-side", type=parse_long_side, default=-1,
                   help="long side of the any-size models, or 'origin'")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("models", help="list the model registry")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("convert", help="import an upstream PyTorch checkpoint with x2paddle")
    p.add_argument("id", choices=sorted(REGISTRY), metavar="ID")
    p.add_argument("--src", help="the .pth file (default: $PADDLEFACE_WEIGHTS or download)")
    p.add_argument("--out", help="the .pdparams to write (default: the cache)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("validate-voc", help="check a VOC tree made by "
                       "data/wider_face_2_voc_add_landmark.py")
    p.add_argument("root")
    p.add_argument("--split", default=None, help="trainval or test (default: every list)")
    p.add_argument("--no-images", action="store_true", help="skip decoding the JPEGs")
    p.set_defaults(func=cmd_validate_voc)

    p = sub.add_parser("export", help="export for Paddle Inference, Paddle Lite or ONNX")
    p.add_argument("id", choices=sorted(REGISTRY), metavar="ID")
    p.add_argument("--format", required=True, choices=["inference", "lite", "onnx"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="WxH (default: the model's size; the any-size models: dynamic for "
                        "inference, 640x480 for lite and onnx)")
    p.add_argument("--weights", help="a .pdparams or .pth file (default: resolved)")
    p.add_argument("--check-image", help="photo for the on-the-spot check")
    p.add_argument("--int8", action="store_true",
                   help="lite: also model_*_int8_weights.nb (opt's int8 weight quantization)")
    p.add_argument("--calib-images", metavar="DIR|LIST.txt",
                   help="lite: also model_*_int8.nb, post-training int8 quantization calibrated "
                        "on these photos (a few hundred like the ones it will see)")
    p.set_defaults(func=cmd_export)

    from .evaluation.cli import register as register_eval
    register_eval(sub)
    from .serve.cli import register as register_serve
    register_serve(sub)
    return parser


def quiet_paddle() -> None:
    """Keep Paddle's C++ log lines and its ccache warning out of a command's output."""
    import warnings
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")


def main(argv: Optional[List[str]] = None) -> int:
    quiet_paddle()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PaddleFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
