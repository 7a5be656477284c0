"""Detect faces in a folder (or a shard of it) with N worker processes, resumably.

Each worker process holds one :class:`~paddleface.detector.FaceDetector` (its engine with
``cores // N`` threads) and one decode thread that reads the next photo while the engine runs
the current one. Workers take photos from one shared queue, so a slow photo does not leave a
process idle. Each photo's faces are written atomically to ``OUT/faces/<rel>.json`` by the
worker; ``OUT/manifest.json`` holds the settings, so a rerun skips finished photos.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import PaddleFaceError
from .manifest import is_done, open_results, read_result, write_atomic, write_result
from .shard import select_shard

_DONE = None  # end-of-work marker in the task queue


def worker_threads(workers: int, threads: Optional[int]) -> int:
    """Engine threads per worker: as asked, else the cores shared out (at least 1)."""
    return threads or max(1, (os.cpu_count() or 1) // workers)


def run_settings(det) -> Dict:
    """What decides a result file's content: model, weights, engine, precision, thresholds and
    input size. Two runs with equal settings may share a results folder."""
    from ..cli_args import network_input_setting
    from ..weights import sha256_of
    proto = det.protocol
    size = network_input_setting(det)
    return dict({"model": det.record.id,
                 "weights_sha256": sha256_of(det.weights_path) if det.weights_path else None,
                 "engine": det.engine.name, "precision": getattr(det, "precision", "fp32"),
                 "score_threshold": max(proto.score_threshold, proto.final_threshold),
                 "nms_iou": proto.nms_iou, "top_k": proto.candidates,
                 "keep_top_k": proto.keep}, **size)


def _decode(tasks, decoded: "queue.Queue") -> None:
    """The decode thread: read each task's photo (OpenCV releases the GIL meanwhile)."""
    from ..image_io import read_image
    while True:
        task = tasks.get()
        if task is _DONE:
            decoded.put(_DONE)
            return
        path, rel = task
        try:
            decoded.put((path, rel, read_image(path), None))
        except PaddleFaceError as e:
            decoded.put((path, rel, None, str(e)))
        except Exception as e:  # an unreadable file is that file's error, not the run's
            decoded.put((path, rel, None, f"{path}: {type(e).__name__}: {e}"))


def detect_queue(det, tasks, out: Path, report) -> None:
    """Detect every photo ``tasks`` hands out until its end marker; ``report(rel, faces or
    None, error or None)`` after each."""
    decoded: "queue.Queue" = queue.Queue(maxsize=4)
    reader = threading.Thread(target=_decode, args=(tasks, decoded), daemon=True)
    reader.start()
    while True:
        item = decoded.get()
        if item is _DONE:
            break
        path, rel, image, error = item
        if error is None:
            try:
                faces = det.detect(image)
                write_result(out, Path(rel), {"path": str(path), "width": image.shape[1],
                                              "height": image.shape[0],
                                              "faces": [f.to_dict() for f in faces]})
                report(rel, len(faces), None)
                continue
            except PaddleFaceError as e:
                error = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
        report(rel, None, error)
    reader.join()


def _worker_main(spec: Dict, tasks, results, out: str) -> None:
    """A worker process: build the detector, then detect what the shared queue hands out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    import warnings
    os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ start-up lines
    warnings.filterwarnings("ignore", message="No ccache found")
    try:
        from ..detector import FaceDetector
        det = FaceDetector(**spec)
    except Exception as e:
        results.put(("__failed__", None, f"a worker could not start: {e}"))
        return
    detect_queue(det, tasks, Path(out), lambda rel, n, err: results.put((str(rel), n, err)))
    results.put(("__exit__", None, None))


class _LocalTasks:
    """The task queue of a one-process run (no worker process): a thread-safe FIFO."""

    def __init__(self, items):
        self._q: "queue.Queue" = queue.Queue()
        for it in items:
            self._q.put(it)
        self._q.put(_DONE)

    def get(self):
        return self._q.get()


def run_folder_job(paths: Sequence[str], out: str, spec: Dict, workers: int = 1,
                   shard: Optional[Tuple[int, int]] = None, json_path: Optional[str] = None,
                   progress: bool = True) -> Dict:
    """Detect faces in the photos under ``paths`` (shard ``(k, n)`` of them) into the
    results folder ``out`` with ``workers`` processes; ``spec`` = FaceDetector arguments.

    Returns {"images", "skipped" (done before), "done", "failed", "seconds" (of detection,
    after the workers started)}; failures are printed and do not stop the run.
    """
    from ..detector import FaceDetector
    from ..image_io import expand_inputs, is_video
    if workers < 1:
        raise PaddleFaceError(f"--workers must be at least 1, got {workers}")
    files, errors = expand_inputs(list(paths))
    for _, msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    videos = [(p, r) for p, r in files if is_video(p)]
    for p, _ in videos:
        print(f"error: {p}: videos are not split over workers; run detect on it without "
              "--workers/--shard", file=sys.stderr)
    files = [(p, r) for p, r in files if not is_video(p)]
    if shard:
        files = select_shard(files, *shard)
    out_dir = Path(out)
    spec = dict(spec, threads=worker_threads(workers, spec.get("threads")))
    # the parent builds the detector once: it exports/caches the engine's files before the
    # workers start (so they do not all build them) and names the settings of the results
    det = FaceDetector(**spec)
    open_results(out_dir, run_settings(det))
    todo = [(str(p), str(r)) for p, r in files if not is_done(out_dir, r)]
    counts = {"images": len(files), "skipped": len(files) - len(todo), "done": 0,
              "failed": len(errors) + len(videos)}
    from tqdm import tqdm
    bar = tqdm(total=len(todo), unit="image", file=sys.stderr,
               disable=not progress or len(todo) < 20 or not sys.stderr.isatty())

    def report(rel, n, err):
        if err is not None:
            bar.write(f"error: {err}", file=sys.stderr)
            counts["failed"] += 1
        else:
            counts["done"] += 1
        bar.update(1)

    t0 = time.perf_counter()
    try:
        if workers == 1 or len(todo) <= 1:
            detect_queue(det, _LocalTasks(todo), out_dir, report)
        else:
            del det
            t0 = _run_processes(spec, todo, out_dir, workers, report)
    finally:
        bar.close()
    counts["seconds"] = time.perf_counter() - t0
    if json_path:
        images = {str(p): read_result(out_dir, r) for p, r in files if is_done(out_dir, r)}
        write_atomic(Path(json_path), json.dumps({"settings": run_settings_of(out_dir),
                                                  "images": images}, indent=1))
    return counts


def run_settings_of(out: Path) -> Dict:
    from .manifest import MANIFEST
    return json.loads((out / MANIFEST).read_text())


def _run_processes(spec: Dict, todo: List[Tuple[str, str]], out: Path, workers: int,
                   report) -> float:
    """Start the worker processes, feed them, collect their reports; returns the time the
    first worker was ready (detection time starts there)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")  # a fresh interpreter: no engine threads inherited
    tasks, results = ctx.Queue(), ctx.Queue()
    for item in todo:
        tasks.put(item)
    for _ in range(workers):
        tasks.put(_DONE)
    procs = [ctx.Process(target=_worker_main, args=(spec, tasks, results, str(out)),
                         daemon=True) for _ in range(workers)]
    for p in procs:
        p.start()
    started, exited, remaining = None, 0, len(todo)
    try:
        while remaining or exited < workers:
            try:
                rel, n, err = results.get(timeout=1.0)
            except queue.Empty:
                if all(not p.is_alive() for p in procs) and results.empty():
                    if remaining:
                        raise PaddleFaceError(f"the worker processes stopped with {remaining} "
                                              "photos left; rerun to resume")
                    break
                continue
            if rel == "__failed__":
                raise PaddleFaceError(err)
            if rel == "__exit__":
                exited += 1
                continue
            if started is None:
                started = time.perf_counter()
            remaining -= 1
            report(rel, n, err)
    finally:
        for p in procs:
            if p.is_alive() and (remaining or exited < workers):
                p.terminate()
        for p in procs:
            p.join(timeout=10)
    return started or time.perf_counter()
