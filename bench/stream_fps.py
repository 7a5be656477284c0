"""Frames per second of the live video pipeline beside ``detect()`` alone, per model.

    python bench/stream_fps.py [--models ID ...] [--threads 1 2] [--frames 100]

A 1280x720, 25 fps clip with three faces moving on known paths (``make_face_clip``, from the
shared photos) is written once. Each (model, threads) runs in its own process, which
1. decodes the whole clip into memory and times ``detect()`` alone on those frames;
2. times the whole pipeline on the same file: the decoding thread, ``detect()``, the tracker,
   drawing, and the MP4 writer (its thread and the ffmpeg process), until the file is closed.
"ratio" is pipeline fps / detect() fps (goal >= 0.9: decoding and writing hidden behind the
detector); "track ms" is the tracker's time per frame. The load average is printed beside.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def no_spinning(det) -> None:
    """Rebuild an ONNX Runtime session whose idle threads sleep instead of spinning (the
    spinning threads take CPU from the decoding and writing threads of the pipeline)."""
    import onnxruntime as ort
    eng = det.engine
    if getattr(eng, "name", "") != "onnxruntime":
        return
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = eng.threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    eng.session = ort.InferenceSession(str(eng.path), opts, providers=["CPUExecutionProvider"])


def measure(model: str, threads: int, clip: Path, out_dir: Path, spin: bool = True) -> dict:
    from paddleface.detector import FaceDetector
    from paddleface.draw import draw_faces
    from paddleface.image_io import VideoReader
    from paddleface.video.stream import FaceStream
    from paddleface.video.writer import VideoOutput
    det = FaceDetector(model, device="cpu", threads=threads)
    if not spin:
        no_spinning(det)
    frames = list(VideoReader(clip))
    for f in frames[:5]:  # warm-up
        det.detect(f)
    t0 = time.perf_counter()
    for f in frames:
        det.detect(f)
    alone = len(frames) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    stream = FaceStream(det, clip, track=True)
    writer = None
    for frame, faces in stream.frames():
        if writer is None:
            h, w = frame.image.shape[:2]
            writer = VideoOutput(out_dir / f"{model}-{threads}.mp4", stream.fps, (w, h),
                                 audio_from=clip)
        writer.write(draw_faces(frame.image, faces))
    writer.close()
    pipeline = stream.processed / (time.perf_counter() - t0)
    return {"model": model, "threads": threads, "engine": det.engine.name,
            "frames": stream.processed, "detect_fps": alone, "pipeline_fps": pipeline,
            "track_ms": 1000 * stream.tracker_seconds / max(1, stream.processed)}


def main() -> int:
    from paddleface.registry import REGISTRY
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(REGISTRY))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--no-spin", action="store_true",
                   help="ONNX Runtime threads sleep when idle instead of spinning (both columns)")
    p.add_argument("--worker", nargs=4, metavar=("MODEL", "THREADS", "CLIP", "OUT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        model, threads, clip, out = args.worker
        os.environ["OMP_NUM_THREADS"] = threads
        print(json.dumps(measure(model, int(threads), Path(clip), Path(out),
                                 spin=not args.no_spin)))
        return 0
    from paddleface.video.synthetic import make_face_clip
    from paddleface.video.writer import find_ffmpeg
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    ffmpeg, where = find_ffmpeg()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip720.mp4"
        make_face_clip(shared, clip, size=(1280, 720), fps=25.0, frames=args.frames,
                       face_height=140, tone_hz=440.0 if ffmpeg else None, ffmpeg=ffmpeg)
        print(f"1280x720 clip, {args.frames} frames, 3 faces, a tone; MP4 writer: OpenCV mp4v"
              f"{', audio added by ffmpeg (' + where + ')' if ffmpeg else ' (no ffmpeg: no audio)'}")
        print(f"{'model':16} {'thr':>3} {'engine':12} {'detect fps':>10} {'pipeline fps':>12} "
              f"{'ratio':>6} {'track ms':>8}  load avg")
        for model in args.models:
            for threads in args.threads:
                r = subprocess.run([sys.executable, __file__, "--worker", model, str(threads),
                                    str(clip), tmp] + (["--no-spin"] if args.no_spin else []),
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"{model:16} {threads:>3} failed: {r.stderr.strip().splitlines()[-1:]}")
                    continue
                m = json.loads(r.stdout.strip().splitlines()[-1])
                load = "/".join(f"{v:.1f}" for v in os.getloadavg())
                print(f"{model:16} {threads:>3} {m['engine']:12} {m['detect_fps']:10.1f} "
                      f"{m['pipeline_fps']:12.1f} {m['pipeline_fps'] / m['detect_fps']:6.2f} "
                      f"{m['track_ms']:8.3f}  {load}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
