"""Our tracker beside Roboflow's ``trackers`` (ByteTrack, SORT, OC-SORT; supervision 0.31 no
longer has its ByteTrack, which moved there) and norfair, on the same detections of the synthetic clip with known trajectories.

    python bench/tracker_compare.py [--model rfb-lm] [--trackers-venv /work/venvs/trackers]
        [--norfair-venv /work/venvs/norfair]

The libraries conflict with this project's environment (``trackers`` requires opencv-python
beside our opencv-python-headless; norfair requires numpy<2), so each runs in its own venv:
this script dumps the detector's boxes and scores of every frame to JSON, runs each tracker
over them in its venv (``--worker``), and scores all of them against the truth with the same
code (py-motmetrics, IoU >= 0.5): recall, IDF1, id switches (and which true faces switched:
1 and 2 cross, 3 leaves and comes back), and the tracker's time per frame in ms. Every
tracker keeps a lost face 3 s (30 frames at the clip's 10 fps) so the comparison is fair.
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
LOST_FRAMES = 30


def worker(name: str, dets_file: str) -> None:
    """Run inside a venv holding the library: prints {"frames": [[(id, box)...]], "ms": ...}."""
    import numpy as np
    data = json.loads(Path(dets_file).read_text())
    fps = data["fps"]
    out = []
    if name.startswith("trackers-"):
        import supervision as sv
        import trackers
        cls = {"trackers-bytetrack": trackers.ByteTrackTracker,
               "trackers-sort": trackers.SORTTracker,
               "trackers-ocsort": trackers.OCSORTTracker}[name]
        # the buffer is given in frames at 30 fps and scaled by frame_rate / 30
        tracker = cls(lost_track_buffer=round(LOST_FRAMES * 30 / fps), frame_rate=fps)
        step = tracker.update
        t0 = time.perf_counter()
        for frame in data["frames"]:
            boxes = np.array([f[:4] for f in frame], dtype=np.float32).reshape(-1, 4)
            scores = np.array([f[4] for f in frame], dtype=np.float32)
            d = sv.Detections(xyxy=boxes, confidence=scores,
                              class_id=np.zeros(len(frame), dtype=int))
            r = step(d)
            ids = r.tracker_id if r.tracker_id is not None else []
            out.append([(int(i), [float(v) for v in b]) for i, b in zip(ids, r.xyxy) if i >= 0])
        ms = 1000 * (time.perf_counter() - t0) / len(data["frames"])
    elif name == "norfair":
        from norfair import Detection, Tracker
        tracker = Tracker(distance_function="iou", distance_threshold=0.7,
                          hit_counter_max=LOST_FRAMES, initialization_delay=1)
        t0 = time.perf_counter()
        for frame in data["frames"]:
            dets = [Detection(points=np.array([f[:2], f[2:4]], dtype=float),
                              scores=np.array([f[4], f[4]])) for f in frame]
            tracked = tracker.update(detections=dets)
            out.append([(int(t.id), [float(v) for v in t.last_detection.points.ravel()])
                        for t in tracked if t.id is not None and t.live_points.any()])
        ms = 1000 * (time.perf_counter() - t0) / len(data["frames"])
    else:
        raise SystemExit(f"unknown tracker {name}")
    print(json.dumps({"frames": out, "ms": ms}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="rfb-lm")
    p.add_argument("--trackers-venv", default="/work/venvs/trackers")
    p.add_argument("--norfair-venv", default="/work/venvs/norfair")
    p.add_argument("--worker", nargs=2, metavar=("NAME", "DETS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    sys.path.insert(0, str(ROOT))
    from paddleface.detector import FaceDetector
    from paddleface.image_io import VideoReader
    from paddleface.video.metrics import tracking_scores
    from paddleface.video.synthetic import make_face_clip
    from paddleface.video.tracking import FaceTracker
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    print(f"load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        truth = make_face_clip(shared, clip)
        det = FaceDetector(args.model, device="cpu", threads=1)
        frames = list(VideoReader(clip))
        faces = [det.detect(f) for f in frames]
        size = (frames[0].shape[1], frames[0].shape[0])
        dets = Path(tmp) / "dets.json"
        dets.write_text(json.dumps({"fps": truth["fps"], "frames": [
            [[float(v) for v in f.box] + [float(f.score)] for f in fs] for fs in faces]}))
        results = {}
        tracker = FaceTracker(fps=truth["fps"], max_lost_s=LOST_FRAMES / truth["fps"])
        t0 = time.perf_counter()
        ours = [[(f.track_id, f.box) for f in tracker.update(fs, size) if f.track_id is not None]
                for fs in faces]
        results["paddleface FaceTracker"] = (ours, 1000 * (time.perf_counter() - t0) / len(faces))
        for name, venv in (("trackers-bytetrack", args.trackers_venv),
                           ("trackers-sort", args.trackers_venv),
                           ("trackers-ocsort", args.trackers_venv),
                           ("norfair", args.norfair_venv)):
            py = Path(venv) / "bin" / "python"
            if not py.exists():
                print(f"{name}: no venv at {venv}")
                continue
            r = subprocess.run([str(py), __file__, "--worker", name, str(dets)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name}: failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            o = json.loads(r.stdout.strip().splitlines()[-1])
            results[name] = (o["frames"], o["ms"])
        print(f"{args.model} detections of the {size[0]}x{size[1]} clip, {len(frames)} frames, "
              "3 faces (1 and 2 cross, 3 leaves and comes back)")
        print(f"{'tracker':24} {'recall':>6} {'IDF1':>6} {'switches':>8} {'switched':>9} "
              f"{'ms/frame':>8}")
        for name, (out, ms) in results.items():
            s = tracking_scores(truth["frames"], list(enumerate(out)))
            print(f"{name:24} {s['recall']:6.3f} {s['idf1']:6.3f} {s['num_switches']:8.0f} "
                  f"{str(s['switched_objects']):>9} {ms:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
