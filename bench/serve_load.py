"""Load on ``paddleface serve`` from concurrent clients on 127.0.0.1, against ``FaceDetector``
called in-process on the same photo.

    python bench/serve_load.py                          # 8 clients x 20 s, ulfd-rfb-320 and rfb-lm
    python bench/serve_load.py --clients 4 --seconds 3 --models ulfd-rfb-320 --json out.json

Per model: a fresh service process; every client thread (one keep-alive connection each)
posts the JPEG bytes to ``/detect`` back to back. A warm-up of the same load comes first, so
the resident memory measured at the start of the run already includes the allocator arenas
and caches that any load makes; memory that keeps growing after that is a leak. Every
response must carry exactly the faces the in-process detector finds, else it counts as a
mismatch. Before the service starts, the same decode + detect runs in this process, from
one thread and from as many threads as clients (sharing one detector as the service does):
the HTTP layer's cost is the difference in time per image against the latter.
"""
from __future__ import annotations

import argparse
import json
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


def client_loop(url: str, body: bytes, stop_at: float, latencies: list, outcomes: dict,
                expected_faces, lock: threading.Lock):
    session = requests.Session()
    mine, errors, mismatches = [], 0, 0
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        try:
            r = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=30)
            ok = r.status_code == 200
            faces = r.json()["images"][0]["faces"] if ok else None
        except (requests.RequestException, ValueError, KeyError):
            ok, faces = False, None
        mine.append(time.perf_counter() - t0)
        if not ok:
            errors += 1
        elif expected_faces is not None and faces != expected_faces:
            mismatches += 1
    with lock:
        latencies.extend(mine)
        outcomes["errors"] += errors
        outcomes["mismatches"] += mismatches


def run_load(url: str, body: bytes, clients: int, seconds: float, expected_faces,
             rss=None, rss_every: float = 1.0):
    """``clients`` threads posting for ``seconds``; ``rss()`` (the service's resident MB) is
    sampled every ``rss_every`` seconds meanwhile."""
    latencies, outcomes, lock = [], {"errors": 0, "mismatches": 0}, threading.Lock()
    stop_at = time.perf_counter() + seconds
    threads = [threading.Thread(target=client_loop, args=(url, body, stop_at, latencies,
                                                          outcomes, expected_faces, lock))
               for _ in range(clients)]
    rss_samples = []
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while rss is not None and time.perf_counter() < stop_at:
        rss_samples.append(round(rss(), 1))
        time.sleep(rss_every)
    for t in threads:
        t.join()
    if rss is not None:
        rss_samples.append(round(rss(), 1))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1e3
    return {"requests": len(latencies), "requests_per_s": len(latencies) / wall,
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
            "rss_mb_samples": rss_samples, **outcomes}


def in_process_rates(model: str, body: bytes, clients: int, seconds: float):
    """Decode + detect of the same JPEG bytes with no HTTP: images/s from one thread and from
    ``clients`` threads sharing one detector whose engine runs one batch at a time (as the
    service runs it), and the faces as the service returns them."""
    import cv2

    from paddleface.detector import FaceDetector
    from paddleface.serve.models import SerializedEngine
    det = FaceDetector(model, device="cpu")
    det.engine = SerializedEngine(det.engine)

    def once():
        return det.detect(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED))

    faces = [f.to_dict() for f in once()]
    rates = []
    for n_threads in (1, clients):
        counts = [0] * n_threads
        stop_at = time.perf_counter() + seconds

        def loop(i):
            while time.perf_counter() < stop_at:
                once()
                counts[i] += 1

        for _ in range(3):  # warm-up
            once()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=loop, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates.append(sum(counts) / (time.perf_counter() - t0))
    return rates[0], rates[1], faces


def bench_model(model: str, body: bytes, clients: int, seconds: float, warmup: float,
                log_dir: Path):
    # the in-process run first, while no service competes for the cores; its faces are
    # what every response of the service must carry
    inproc_1, inproc_n, faces = in_process_rates(model, body, clients, seconds)
    load_before = os.getloadavg()
    with ServiceProcess(["--model", model, "--no-access-log"],
                        log=log_dir / f"serve-{model}.log") as svc:
        url = f"{svc.url}/detect?model={model}"
        first = requests.post(url, data=body, headers={"Content-Type": "image/jpeg"}).json()
        assert first["images"][0]["faces"] == faces, f"{model}: service and in-process differ"
        run_load(url, body, clients, warmup, faces)
        result = run_load(url, body, clients, seconds, faces, rss=svc.rss_mb)
        rss_start, rss_end = result["rss_mb_samples"][0], result["rss_mb_samples"][-1]
        alive = requests.get(f"{svc.url}/healthz", timeout=5).ok
    result.update(model=model, clients=clients, seconds=seconds, rss_start_mb=rss_start,
                  rss_end_mb=rss_end, rss_peak_mb=max(result["rss_mb_samples"]), healthy_after=alive, faces=len(faces),
                  in_process_1_thread_per_s=inproc_1, in_process_per_s=inproc_n,
                  http_cost_ms=1e3 / result["requests_per_s"] - 1e3 / inproc_n
                  if result["requests_per_s"] else None,
                  loadavg_before=load_before, loadavg_after=os.getloadavg(),
                  cpu_count=os.cpu_count())
    return result


def table(rows) -> str:
    out = ["| model | clients x s | requests/s | p50 ms | p99 ms | errors | mismatches | "
           "RSS start -> end MB | in-process images/s, 1 thread | in-process, N threads | "
           "HTTP cost ms/image |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['clients']} x {r['seconds']:g} | "
                   f"{r['requests_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                   f"{r['errors']} | {r['mismatches']} | {r['rss_start_mb']:.0f} -> "
                   f"{r['rss_end_mb']:.0f} | {r['in_process_1_thread_per_s']:.1f} | "
                   f"{r['in_process_per_s']:.1f} | "
                   f"{r['http_cost_ms']:.2f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ulfd-rfb-320,rfb-lm")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
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
        r = bench_model(model, body, args.clients, args.seconds, args.warmup, log_dir)
        rows.append(r)
        print(f"{model}: {r['requests_per_s']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms, {r['errors']} errors, {r['mismatches']} mismatches, "
              f"RSS {r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB, in-process "
              f"{r['in_process_1_thread_per_s']:.1f}/s (1 thread), {r['in_process_per_s']:.1f}/s "
              f"({args.clients} threads), load average {r['loadavg_before'][0]:.1f} -> "
              f"{r['loadavg_after'][0]:.1f} on {r['cpu_count']} cores", flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["errors"] == 0 and r["mismatches"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
