"""``paddleface detect`` on videos and live streams: the options, and the loop that writes
drawn or anonymised MP4s, JSON lines and a window. (Images given with these options are
drawn or anonymised the same way.)"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, TextIO

import cv2

from ..cli_args import parse_count
from ..errors import PaddleFaceError
from ..image_io import IMAGE_SUFFIXES, expand_inputs, read_image
from .anonymize import METHODS, anonymize
from .sources import SourceSpec, check_camera, parse_source

WRITTEN_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _fraction_below_one(text: str) -> float:
    try:
        v = float(text)
        if 0.0 <= v < 1.0:
            return v
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a number from 0 up to (not including) 1, got "
                                     f"{text!r}")


def _non_negative(text: str) -> float:
    try:
        v = float(text)
        if v >= 0:
            return v
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")


def add_video_args(p: argparse.ArgumentParser) -> None:
    """The video/stream options of ``paddleface detect``."""
    g = p.add_argument_group("videos and live streams (PATH may also be camera:N, /dev/videoN, "
                             "rtsp://..., http(s)://... MJPEG or HLS)")
    g.add_argument("--track", action="store_true",
                   help="give each face an id that stays the same from frame to frame")
    g.add_argument("--smooth", type=_fraction_below_one, default=0.0, metavar="A",
                   help="with --track: average boxes and landmarks over time, 0 (off) to <1")
    g.add_argument("--jsonl", metavar="FILE|-",
                   help="one JSON line per processed frame, written as it goes: "
                        '{"frame", "time", "faces": [{"id", "box", "score", "landmarks"}]}')
    g.add_argument("--show", action="store_true", help="show the frames in a window")
    g.add_argument("--max-frames", type=parse_count, default=None, metavar="N",
                   help="stop after N processed frames")
    g.add_argument("--duration", type=_non_negative, default=None, metavar="S",
                   help="stop after S seconds of the source")
    g.add_argument("--reconnects", type=int, default=5, metavar="N",
                   help="reconnect attempts in a row before a dropped stream is given up "
                        "(default 5; waits 0.25, 0.5, 1, 2, 4 s)")
    g.add_argument("--anonymize", choices=METHODS, default=None,
                   help="hide the faces in the written images/videos instead of drawing them")
    g.add_argument("--anonymize-margin", type=_non_negative, default=0.2, metavar="M",
                   help="grow each hidden box by M times its size on every side (default 0.2)")


def pipeline_wanted(args) -> bool:
    """Whether this run needs the video pipeline (and not the plain image/video detect)."""
    return bool(args.track or args.jsonl or args.show or args.anonymize
                or args.max_frames or args.duration is not None
                or any(parse_source(p).live for p in args.paths))


def out_is_video_file(out: Optional[str]) -> bool:
    """``--out clip.mp4`` names the one video to write; any other --out is a folder."""
    return bool(out) and out.lower().endswith(".mp4")


def check_video_args(args) -> None:
    """Mistakes found before the model loads: a missing camera, --anonymize without --out."""
    for p in args.paths:
        check_camera(parse_source(p))
    if args.anonymize and not args.out:
        raise PaddleFaceError("--anonymize writes the hidden-face images/videos into --out; "
                              "add --out FOLDER (or FILE.mp4 for one video)")
    if args.smooth and not args.track:
        raise PaddleFaceError("--smooth averages each tracked face over time; add --track")
    if args.save_crops:
        raise PaddleFaceError("--save-crops works on images without the video options; run "
                              "it on its own")
    if out_is_video_file(args.out) and len(args.paths) != 1:
        raise PaddleFaceError(f"--out {args.out}: one MP4 file takes one video or stream; "
                              "give a folder for several inputs")


def display_problem() -> Optional[str]:
    """Why no window can be shown here, or None."""
    gui = [l for l in cv2.getBuildInformation().splitlines() if l.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        return ("this OpenCV has no window support (opencv-python-headless); install "
                "opencv-python for --show")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None


def face_record(face) -> dict:
    return dict({"id": face.track_id}, **face.to_dict())


class Outputs:
    """Where one run writes: the JSON lines, the window, the collected --json entries."""

    def __init__(self, args, several: bool):
        self.args = args
        self.several = several
        self.jsonl: Optional[TextIO] = None
        self.summary = sys.stdout
        if args.jsonl == "-":
            self.jsonl, self.summary = sys.stdout, sys.stderr
        elif args.jsonl:
            Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(args.jsonl, "w")
        self.show = False
        if args.show:
            problem = display_problem()
            if problem:
                print(f"warning: --show: {problem}; going on without a window", file=sys.stderr)
            else:
                self.show = True
        self.results = {}

    def line(self, source: str, index: int, time_s: float, faces) -> None:
        if self.jsonl is None:
            return
        row = {"frame": index, "time": time_s, "faces": [face_record(f) for f in faces]}
        if self.several:
            row = dict({"source": source}, **row)
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()

    def window(self, image) -> bool:
        """Show ``image``; False when the user pressed q or Esc."""
        if not self.show:
            return True
        cv2.imshow("paddleface", image)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        if self.jsonl is not None and self.jsonl is not sys.stdout:
            self.jsonl.close()
        if self.show:
            cv2.destroyAllWindows()


def render(image, faces, args):
    from ..draw import draw_faces
    if args.anonymize:
        return anonymize(image, faces, args.anonymize, args.anonymize_margin)
    return draw_faces(image, faces)


def output_path(args, spec: SourceSpec, rel: Optional[Path], video: bool) -> Optional[Path]:
    if not args.out:
        return None
    if out_is_video_file(args.out) and video:
        return Path(args.out)
    name = rel if rel is not None else Path(spec.output_stem() + ".mp4")
    # the names `paddleface detect --out` gives (clip.avi -> clip.avi.mp4, x.gif -> x.gif.png)
    suffix = name.suffix.lower()
    if video and suffix != ".mp4":
        name = name.with_name(name.name + ".mp4")
    elif not video and suffix not in WRITTEN_IMAGE_SUFFIXES:
        name = name.with_name(name.name + ".png")
    return Path(args.out) / name


def run_image(det, path: Path, out: Optional[Path], outputs: Outputs, args) -> str:
    image = read_image(path)
    faces = det.detect(image)
    outputs.line(str(path), 0, 0.0, faces)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part" + out.suffix)
        if not cv2.imwrite(str(part), render(image, faces, args)):
            raise PaddleFaceError(f"{out}: OpenCV cannot write this image format")
        os.replace(part, out)
    outputs.results[str(path)] = {"width": image.shape[1], "height": image.shape[0],
                                  "faces": [face_record(f) for f in faces]}
    if not outputs.window(render(image, faces, args)):
        raise KeyboardInterrupt
    return f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}"


def run_video(det, spec: SourceSpec, out: Optional[Path], outputs: Outputs, args) -> str:
    """Detect (and track) every frame of a file, or the newest frames of a live source,
    writing as it goes. Ctrl-C ends it with every file finished; it is re-raised after."""
    from tqdm import tqdm

    from .stream import FaceStream
    from .writer import VideoOutput
    stream = FaceStream(det, spec, track=args.track, smoothing=args.smooth,
                        max_frames=args.max_frames, duration=args.duration,
                        max_reconnects=args.reconnects)
    writer: Optional[VideoOutput] = None
    frames, faces_seen, ids = [], 0, set()
    interrupted = False
    bar = tqdm(total=stream.frame_count, unit="frame", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty())
    try:
        for frame, faces in stream.frames():
            image = frame.image
            drawn = render(image, faces, args) if (out or outputs.show) else None
            if out is not None:
                if writer is None:
                    writer = VideoOutput(out, stream.fps, (image.shape[1], image.shape[0]),
                                         audio_from=None if stream.live else spec.text)
                repeat = 1
                if stream.live:  # real time: the drawing stays on screen until the next one
                    repeat = max(1, round(frame.time * stream.fps) + 1 - writer.frames)
                writer.write(drawn, repeat=repeat)
            outputs.line(spec.text, frame.index, frame.time, faces)
            if args.json:
                frames.append({"frame": frame.index, "time": frame.time,
                               "faces": [face_record(f) for f in faces]})
            faces_seen += len(faces)
            ids.update(f.track_id for f in faces if f.track_id is not None)
            bar.update(1)
            if drawn is not None and not outputs.window(drawn):
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        stream.close()
        if writer is not None:
            writer.close()
            if writer.warning:
                print(f"warning: {writer.warning}", file=sys.stderr)
    if stream.processed == 0 and not interrupted:
        raise PaddleFaceError(f"{spec.text}: the video has no readable frames")
    if args.json:
        outputs.results[spec.text] = {"fps": stream.fps, "frames": frames}
    line = (f"{spec.text}: {stream.processed} frame{'s' if stream.processed != 1 else ''} "
            f"at {stream.fps:g} fps, {faces_seen} faces")
    if args.track:
        line += f", {len(ids)} ids"
    if stream.live:
        line += f", {stream.reconnects} reconnects"
    if writer is not None and writer.frames:
        line += f"; wrote {out}"
    if interrupted:
        print(line + " (stopped by Ctrl-C)", file=outputs.summary)
        raise KeyboardInterrupt
    return line


def run_detect_video(det, args, header: dict) -> int:
    """``paddleface detect`` with video options or live sources (see :func:`pipeline_wanted`)."""
    inputs: List[tuple] = []  # (spec, relative name or None)
    failed = 0
    for text in args.paths:
        spec = parse_source(text)
        if spec.live:
            inputs.append((spec, None))
            continue
        files, errors = expand_inputs([text])
        for _, msg in errors:
            print(f"error: {msg}", file=sys.stderr)
            failed += 1
        inputs.extend((parse_source(str(path)), rel) for path, rel in files)
    outputs = Outputs(args, several=len(inputs) > 1)
    try:
        for spec, rel in inputs:
            is_image = not spec.live and Path(spec.text).suffix.lower() in IMAGE_SUFFIXES
            out = output_path(args, spec, rel, not is_image)
            try:
                line = (run_image(det, Path(spec.text), out, outputs, args) if is_image
                        else run_video(det, spec, out, outputs, args))
            except PaddleFaceError as e:
                if len(args.paths) == 1 and len(inputs) == 1:
                    raise
                msg = str(e) if str(e).startswith(spec.text) else f"{spec.text}: {e}"
                print(f"error: {msg}", file=sys.stderr)
                failed += 1
                continue
            print(line, file=outputs.summary, flush=True)
    finally:
        outputs.close()
        if args.json:
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".part")
            part.write_text(json.dumps(dict(header, images=outputs.results), indent=1))
            os.replace(part, path)
    if failed:
        print(f"{failed} of {len(inputs) + failed} inputs failed", file=sys.stderr)
    return 1 if failed else 0
