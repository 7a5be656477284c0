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
from .cli_args import (  # noqa: F401  (also imported from here by scripts)
    parse_size, parse_long_side, add_model_args, parse_fraction, parse_count,
    plural, add_engine_args, add_precision_args, describe_engine, network_input_setting,
    quiet_paddle)


def cmd_detect(args) -> int:
    from .output_paths import check_output_file, check_output_folder
    from .video.run import check_video_args, out_is_video_file, pipeline_wanted, run_detect_video
    video = pipeline_wanted(args)
    if video:
        check_video_args(args)
    # before the model loads: no work is lost to a bad path
    if video and out_is_video_file(args.out):
        check_output_file(args.out, "--out")
    else:
        check_output_folder(args.out)
    check_output_file(args.json)
    from .detector import FaceDetector
    record = get_record(args.model)
    if args.save_crops and not record.landmarks:
        raise PaddleFaceError(f"--save-crops aligns faces by their 5 landmarks, which {record.id} "
                              "does not predict; use a landmark model such as rfb-lm")
    spec = dict(model=record.id, weights=args.weights, device=args.device,
                score_threshold=args.threshold, nms_iou=args.nms_iou, top_k=args.top_k,
                keep_top_k=args.keep_top_k, input_size=args.input_size,
                long_side=args.long_side, max_input_pixels=args.max_pixels,
                engine=args.engine, threads=args.threads, precision=args.precision,
                calibration=args.calib_images)
    from .batch.options import run_job, wants_job
    if not video and wants_job(args):  # folders in worker processes; videos go below
        return run_job(args, spec)
    det = FaceDetector(**spec)
    if args.verbose:
        print(describe_engine(det), file=sys.stderr)
    if video:
        return run_detect_video(det, args, detection_settings(det))
    return detect_inputs(det.detect, args.paths, args.out, args.json, detection_settings(det),
                         save_crops=args.save_crops)


def detection_settings(det) -> dict:
    """What the detect JSON records about how its faces were found."""
    proto = det.protocol
    size = network_input_setting(det)
    return dict({"model": det.record.id, "labels": list(det.record.labels),
                 "weights": str(det.weights_path) if det.weights_path else None,
                 "engine": det.engine.name,
                 "score_threshold": max(proto.score_threshold, proto.final_threshold),
                 "nms_iou": proto.nms_iou, "top_k": proto.candidates,
                 "keep_top_k": proto.keep}, **size)


# drawn images keep their input's format when OpenCV writes it in colour; others become .png
DRAWN_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def drawn_name(rel: Path, video: bool) -> Path:
    """Where the drawing of input ``rel`` goes: the same relative path, plus ``.mp4`` for
    videos in other containers (clip.avi -> clip.avi.mp4) and ``.png`` for image formats
    not written in colour, so that no two inputs share an output."""
    suffix = rel.suffix.lower()
    if video:
        return rel if suffix == ".mp4" else rel.with_name(rel.name + ".mp4")
    return rel if suffix in DRAWN_IMAGE_SUFFIXES else rel.with_name(rel.name + ".png")


def detect_inputs(detect, paths, out: Optional[str], json_path: Optional[str],
                  header: Optional[dict] = None, save_crops: Optional[str] = None) -> int:
    """Run ``detect(image) -> faces`` over images, folders and videos: drawings into ``out``
    (each input's relative path kept), all faces into ``json_path`` keyed by the input path,
    aligned 112x112 crops into ``save_crops``. A bad input is reported and skipped; returns
    1 if any failed. (Shared by ``paddleface detect`` and deploy/python/infer.py.)"""
    import cv2
    from tqdm import tqdm

    from .draw import draw_faces
    from .image_io import expand_inputs, is_video, read_image
    from .output_paths import check_output_file, check_output_folder, write_text_atomically

    check_output_folder(out)
    check_output_file(json_path)
    files, errors = expand_inputs(paths)
    for _, msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    out_dir = Path(out) if out else None
    results = {}
    failed = len(errors)
    # a bar with ETA for large folders (on a terminal); the per-input lines print above it
    bar = tqdm(total=len(files), unit="input", file=sys.stderr,
               disable=len(files) < 20 or not sys.stderr.isatty())
    try:
        for path, rel in files:
            drawn = out_dir / drawn_name(rel, is_video(path)) if out_dir else None
            if drawn:
                drawn.parent.mkdir(parents=True, exist_ok=True)
            try:
                if is_video(path):
                    entry = _detect_video(detect, path, drawn)
                    line = f"{path}: {plural(len(entry['frames']), 'frame')} at {entry['fps']:g} fps"
                else:
                    image = read_image(path)
                    faces = detect(image)
                    entry = {"width": image.shape[1], "height": image.shape[0],
                             "faces": [f.to_dict() for f in faces]}
                    line = f"{path}: {plural(len(faces), 'face')}"
                    if drawn:
                        cv2.imwrite(str(drawn), draw_faces(image, faces))
                    if save_crops:
                        entry["crops"] = _save_crops(image, faces, Path(save_crops), rel)
            except PaddleFaceError as e:
                # errors about the pixels (not the file) do not know its name
                msg = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
                bar.write(f"error: {msg}", file=sys.stderr)
                failed += 1
                bar.update(1)
                continue
            if drawn:
                entry["drawn"] = str(drawn)
            results[str(path)] = entry
            bar.write(line, file=sys.stdout)
            bar.update(1)
    finally:
        bar.close()
    if json_path:
        write_text_atomically(Path(json_path), json.dumps(dict(header or {}, images=results), indent=1))
    if failed:
        print(f"{failed} of {len(files) + len(errors)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def _save_crops(image, faces, crops_dir: Path, rel: Path) -> List[str]:
    """One aligned 112x112 crop per face with landmarks: CROPS/<relative path>_<k>.jpg."""
    import cv2

    from .align import align_face
    written = []
    for k, f in enumerate(faces):
        if f.landmarks is None:
            continue
        dest = crops_dir / rel.with_name(f"{rel.name}_{k}.jpg")
        dest.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dest), align_face(image, f.landmarks))
        written.append(str(dest))
    return written


def _detect_video(detect, path, drawn: Optional[Path]) -> dict:
    """Faces per frame with its time in seconds; the drawing is written at the input's rate."""
    import cv2

    from .draw import draw_faces
    from .image_io import VideoReader
    video = VideoReader(path)
    writer = None
    frames = []
    size = None
    try:
        for i, frame in enumerate(video):
            faces = detect(frame)
            frames.append({"frame": i, "time": round(i / video.fps, 4),
                           "faces": [f.to_dict() for f in faces]})
            size = frame.shape[1], frame.shape[0]
            if drawn:
                if writer is None:
                    writer = cv2.VideoWriter(str(drawn), cv2.VideoWriter_fourcc(*"mp4v"),
                                             video.fps, size)
                writer.write(draw_faces(frame, faces))
    finally:
        if writer is not None:
            writer.release()
    if not frames:
        raise PaddleFaceError(f"{path}: the video has no readable frames")
    return {"width": size[0], "height": size[1], "fps": video.fps, "frames": frames}


# ---------------------------------------------------------------------------- models
def cmd_models(args) -> int:
    from .engine import choose_engine
    from .weights import weights_available
    rows = [("id", "params", "GMACs", "input", "landmarks", "weights", "licence", "CPU engine", "int8")]
    reasons = {}
    for r in REGISTRY.values():
        engine, why = choose_engine(r, "cpu")
        reasons.setdefault((engine, why), []).append(r.id)
        p = r.preprocess
        inp = (f"long side {p.long_side}" if p.resize == "long_side" else
               f"{p.resize} {p.size[0]}x{p.size[1]}" if p.resize != "fixed" else f"{p.size[0]}x{p.size[1]}")
        rows.append((r.id, f"{r.params / 1e3:.0f}k",
                     f"{r.flops / 1e9:.3f}@{r.flops_input[0]}x{r.flops_input[1]}", inp,
                     "yes" if r.landmarks else "no",
                     {"none": "not published"}.get(weights_available(r), weights_available(r) or "download"),
                     r.checkpoint.license if r.checkpoint else "-", engine,
                     "yes" if r.int8_cpu else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    # the engine="auto" choice on CPU: one line per distinct reason (GPU: Paddle Inference)
    for (engine, why), ids in reasons.items():
        which = "every id" if len(ids) == len(REGISTRY) else ", ".join(ids)
        print(f"engine=auto on CPU runs {engine} for {which}: {why}; on GPU it runs inference")
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
                        args.input_size, args.check_image, args.int8, args.calib_images,
                        args.precision)
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
    from . import __version__
    parser = argparse.ArgumentParser(prog="paddleface", description=__doc__)
    parser.add_argument("--version", action="version", version=f"paddleface {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="detect faces in images, folders, videos or live streams")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_model_args(p)
    p.add_argument("--out", help="folder for the drawn images / videos")
    p.add_argument("--json", help="write all detections to this JSON file")
    p.add_argument("--threshold", type=parse_fraction, default=None,
                   help="score threshold, 0 to 1 (default: the model's)")
    p.add_argument("--nms-iou", type=parse_fraction, default=None,
                   help="NMS IoU threshold, 0 to 1 (default: the model's)")
    p.add_argument("--top-k", type=parse_count, default=None,
                   help="candidates kept before NMS (default: the model's)")
    p.add_argument("--keep-top-k", type=parse_count, default=None,
                   help="detections kept after NMS (default: the model's)")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="WxH network input of the fixed-size models (ulfd-*; blazeface-*: the "
                        "larger side is the letterbox side); refused for the any-size models")
    p.add_argument("--long-side", type=parse_long_side, default=-1,
                   help="long side of the any-size models, or 'origin'; refused for the others")
    p.add_argument("--max-pixels", type=parse_count, default=None,
                   help="largest network input in pixels (default 4096x4096 = 16.8 M, about 4 GB "
                        "of memory; also $PADDLEFACE_MAX_PIXELS)")
    p.add_argument("--save-crops", metavar="DIR",
                   help="write aligned 112x112 face crops (5-landmark similarity transform, "
                        "the ArcFace template) of every image into DIR; landmark models only")
    add_engine_args(p)
    from .batch.options import add_job_args
    add_job_args(p)
    p.add_argument("--verbose", "-v", action="store_true",
                   help="say which engine runs the model and why")
    from .video.run import add_video_args
    add_video_args(p)
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

    p = sub.add_parser("export", help="export for Paddle Inference, Paddle Lite, ONNX or the "
                       "browser (web: a static page with onnxruntime-web)")
    p.add_argument("id", choices=sorted(REGISTRY), metavar="ID")
    p.add_argument("--format", required=True, choices=["inference", "lite", "onnx", "web"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="WxH (default: the model's size; the any-size models: dynamic for "
                        "inference and onnx, 640x480 for lite)")
    p.add_argument("--weights", help="a .pdparams or .pth file (default: resolved)")
    p.add_argument("--check-image", help="photo for the on-the-spot check (default: a built-in "
                   "synthetic picture)")
    p.add_argument("--int8", action="store_true",
                   help="lite: also model_*_int8_weights.nb (opt's int8 weight quantization)")
    p.add_argument("--calib-images", metavar="DIR|LIST.txt",
                   help="lite: also model_*_int8.nb, post-training int8 quantization calibrated "
                        "on these photos (a few hundred like the ones it will see); onnx with "
                        "--precision int8: the photos the int8 model is calibrated on")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                   help="onnx: int8 also writes model_int8.onnx (static QDQ quantisation, "
                        "calibrated on --calib-images)")
    p.set_defaults(func=cmd_export)

    from .evaluation.cli import register as register_eval
    register_eval(sub)
    from .serve.cli import register as register_serve
    register_serve(sub)
    from .training.cli import register as register_train
    register_train(sub)
    from .datasets.prepare_wider import register as register_prepare
    register_prepare(sub)
    from .datasets.mafa_cli import register as register_prepare_mafa
    register_prepare_mafa(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    quiet_paddle()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # as typed: `train` repeats it in its resume hint
    try:
        return args.func(args)
    except PaddleFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # every file is written atomically; eval skips what it already predicted
        resumable = args.command == "eval"
        print("interrupted" + ("; rerun to resume" if resumable else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`paddleface models | head`): stop quietly, as Unix tools do;
        # stdout goes to /dev/null so that Python's own flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
