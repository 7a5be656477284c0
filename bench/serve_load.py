"""Load on ``paddleface serve`` from concurrent clients on 127.0.0.1, against ``FaceDetector``
called in-process on the same photo.

    python bench/serve_load.py                          # 8 clients x 20 s, ulfd-rfb-320 and rfb-lm
    python bench/serve_load.py --clients 4 --seconds 3 --models ulfd-rfb-320 --json out.json

Per model, a fresh service process. Every client thread (one keep-alive connection each)
posts the JPEG bytes to ``/detect`` back to back. A warm-up of the same load comes first, so
the resident memory measured at the start already includes the allocator arenas and caches
that any load makes; anonymous memory (not backed by files) that keeps growing after that
is a leak. Every response must carry exactly the faces the in-process detector finds, else
it counts as a mismatch.

The in-process side is decode + detect of the same bytes in this process, with no HTTP,
from as many threads as clients sharing one detector as the service does (throughput), and
from one thread. The HTTP layer's cost is the median latency of one client posting alone
minus the median time of one in-process decode + detect, and the same difference in CPU
time (the service process's per request against this process's per image). The machine is
shared, so the four runs (N clients, N threads, 1 client, 1 thread) alternate in rounds of
at most 5 s each, and the load that other processes put on the cores drifts alike over all
four. CPU time is less sensitive to that load than latency, which also counts the waits for
a core.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import shared_dir  # noqa: E402

from paddleface.serve.process import ServiceProcess  # noqa: E402


class Tally:
    """Counts of one side (HTTP or in-process) summed over the rounds."""

    def __init__(self):
        self.latencies, self.errors, self.mismatches = [], 0, 0
        self.wall = self.cpu = 0.0
        self.lock = threading.Lock()

    def add(self, latencies, errors=0, mismatches=0):
        with self.lock:
            self.latencies.extend(latencies)
            self.errors += errors
            self.mismatches += mismatches

    def summary(self) -> dict:
        lat = np.array(self.latencies) * 1e3
        n = len(self.latencies)
        return {"requests": n, "per_s": n / self.wall if self.wall else 0.0,
                "p50_ms": float(np.percentile(lat, 50)) if n else math.nan,
                "p99_ms": float(np.percentile(lat, 99)) if n else math.nan,
                "cpu_ms_per_image": self.cpu * 1e3 / n if n else math.nan,
                "errors": self.errors, "mismatches": self.mismatches}


def run_threads(n: int, seconds: float, work, tally: Tally, cpu):
    """``n`` threads calling ``work(session_state)`` back to back for ``seconds``; the wall
    time and ``cpu()`` seconds spent go into ``tally``."""
    stop_at = time.perf_counter() + seconds

    def loop():
        state, mine, errors, mismatches = {}, [], 0, 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            outcome = work(state)
            mine.append(time.perf_counter() - t0)
            errors += outcome == "error"
            mismatches += outcome == "mismatch"
        tally.add(mine, errors, mismatches)

    threads = [threading.Thread(target=loop) for _ in range(n)]
    t0, cpu0 = time.perf_counter(), cpu()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.wall += time.perf_counter() - t0
    tally.cpu += cpu() - cpu0


def http_work(url: str, body: bytes, expected_faces):
    def work(state):
        session = state.setdefault("session", requests.Session())
        try:
            r = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=30)
            if r.status_code != 200:
                return "error"
            return "ok" if r.json()["images"][0]["faces"] == expected_faces else "mismatch"
        except (requests.RequestException, ValueError, KeyError):
            return "error"
    return work


def bench_model(model: str, body: bytes, clients: int, seconds: float, warmup: float,
                log_dir: Path, threads=None) -> dict:
    import cv2

    from paddleface.detector import FaceDetector
    from paddleface.serve.models import SerializedEngine
    det = FaceDetector(model, device="cpu", threads=threads)
    det.engine = SerializedEngine(det.engine)

    def detect_bytes():
        return det.detect(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED))

    faces = [f.to_dict() for f in detect_bytes()]

    def in_process_work(state):
        detect_bytes()
        return "ok"

    load_before = os.getloadavg()
    with ServiceProcess(["--model", model, "--no-access-log",
                         *(["--threads", str(threads)] if threads else [])],
                        log=log_dir / f"serve-{model}.log") as svc:
        url = f"{svc.url}/detect?model={model}"
        first = requests.post(url, data=body, headers={"Content-Type": "image/jpeg"}).json()
        assert first["images"][0]["faces"] == faces, f"{model}: service and in-process differ"
        work = http_work(url, body, faces)
        run_threads(clients, warmup, work, Tally(), time.process_time)
        run_threads(clients, min(warmup, 2.0), in_process_work, Tally(), time.process_time)

        http, local_n, http_1, local_1 = Tally(), Tally(), Tally(), Tally()
        rss, anon = [svc.rss_mb()], [svc.rss_mb("RssAnon")]
        rounds = max(1, math.ceil(seconds / 5.0))
        step = seconds / rounds
        for _ in range(rounds):
            run_threads(clients, step, work, http, svc.cpu_seconds)
            rss.append(svc.rss_mb())
            anon.append(svc.rss_mb("RssAnon"))
            run_threads(clients, step, in_process_work, local_n, time.process_time)
            run_threads(1, step, work, http_1, svc.cpu_seconds)
            run_threads(1, step, in_process_work, local_1, time.process_time)
        alive = requests.get(f"{svc.url}/healthz", timeout=5).ok
    h, n = http.summary(), local_n.summary()
    h1, one = http_1.summary(), local_1.summary()
    return {
        "model": model, "clients": clients, "seconds": seconds, "rounds": rounds,
        "threads": threads, "faces": len(faces),
        "requests": h["requests"] + h1["requests"], "requests_per_s": h["per_s"],
        "p50_ms": h["p50_ms"], "p99_ms": h["p99_ms"], "errors": h["errors"] + h1["errors"],
        "mismatches": h["mismatches"] + h1["mismatches"],
        "healthy_after": alive, "rss_mb": rss, "rss_anon_mb": anon,
        "rss_start_mb": anon[0], "rss_end_mb": anon[-1],
        "in_process_per_s": n["per_s"], "one_client_p50_ms": h1["p50_ms"],
        "in_process_1_thread_p50_ms": one["p50_ms"],
        "http_cost_ms": h1["p50_ms"] - one["p50_ms"],
        "service_cpu_ms": h["cpu_ms_per_image"], "in_process_cpu_ms": n["cpu_ms_per_image"],
        "one_client_cpu_ms": h1["cpu_ms_per_image"],
        "in_process_1_thread_cpu_ms": one["cpu_ms_per_image"],
        "http_cost_cpu_ms": h1["cpu_ms_per_image"] - one["cpu_ms_per_image"],
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "cpu_count": os.cpu_count()}


def table(rows) -> str:
    out = ["| model | clients x s | requests/s | p50 ms | p99 ms | errors | mismatches | "
           "service anonymous RSS MB, after warm-up -> end | in-process images/s, N threads | "
           "p50 ms, 1 client / 1 thread in-process | CPU ms, 1 client / 1 thread in-process | "
           "HTTP cost: ms, CPU ms |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['clients']} x {r['seconds']:g} | "
                   f"{r['requests_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                   f"{r['errors']} | {r['mismatches']} | {r['rss_start_mb']:.0f} -> "
                   f"{r['rss_end_mb']:.0f} | {r['in_process_per_s']:.1f} | "
                   f"{r['one_client_p50_ms']:.1f} / {r['in_process_1_thread_p50_ms']:.1f} | "
                   f"{r['one_client_cpu_ms']:.1f} / {r['in_process_1_thread_cpu_ms']:.1f} | "
                   f"{r['http_cost_ms']:.1f}, {r['http_cost_cpu_ms']:.1f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ulfd-rfb-320,rfb-lm")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0, help="of HTTP load per model")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads of the predictor, in the service and in-process "
                         "(default: all cores)")
    ap.add_argument("--image", default=str(shared_dir() / "images" / "crowd.jpg"))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--log-dir", default=str(ROOT / "output" / "bench"),
                    help="the services' logs")
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    body = Path(args.image).read_bytes()
    rows = []
    for model in args.models.split(","):
        r = bench_model(model, body, args.clients, args.seconds, args.warmup, log_dir,
                        args.threads)
        rows.append(r)
        print(f"{model}: {r['requests_per_s']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms, {r['errors']} errors, {r['mismatches']} mismatches, "
              f"service RSS {' '.join(f'{v:.0f}' for v in r['rss_mb'])} MB, anonymous "
              f"{' '.join(f'{v:.0f}' for v in r['rss_anon_mb'])} MB; in-process "
              f"{r['in_process_per_s']:.1f}/s ({args.clients} threads); 1 client p50 "
              f"{r['one_client_p50_ms']:.1f} ms, in-process 1 thread "
              f"{r['in_process_1_thread_p50_ms']:.1f} ms; load average "
              f"{r['loadavg_before'][0]:.1f} -> {r['loadavg_after'][0]:.1f} on "
              f"{r['cpu_count']} cores", flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["errors"] == 0 and r["mismatches"] == 0 and r["healthy_after"]
                    for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
