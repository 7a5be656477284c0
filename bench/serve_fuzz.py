"""Fuzz a running ``paddleface serve`` with thousands of malformed requests (Hypothesis).

    python bench/serve_fuzz.py [--requests 3000] [--rounds 3] [--model ulfd-rfb-320]

Starts the service (one worker, 1 thread), then sends ``--rounds`` rounds of
``--requests`` / ``--rounds`` Hypothesis-drawn malformed requests (mutated JPEG/PNG/GIF/WebP,
truncated multipart bodies, wrong content types, huge headers, invalid base64 and JSON,
deeply nested JSON, slow bodies; see paddleface/serve/fuzz.py). After every round it checks
that /healthz answers and records the resident memory. Prints requests sent, the status
classes, hangs, and VmRSS / RssAnon before and after each round; exits 1 on any 5xx, hang,
dead process or a last round that still grew RssAnon by more than --settle-mb.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddleface.serve.fuzz import run_fuzz, seed_images  # noqa: E402
from paddleface.serve.process import ServiceProcess  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", default="ulfd-rfb-320")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a request hangs")
    p.add_argument("--settle-mb", type=float, default=10.0,
                   help="largest RssAnon growth allowed in the last round")
    p.add_argument("--no-slow", action="store_true", help="leave out the slow-body requests")
    p.add_argument("--photo", default=None, help="seed photo (default: shared images/2.jpg)")
    p.add_argument("--log", default="output/serve_fuzz.log")
    args = p.parse_args(argv)

    import cv2
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    photo = cv2.imread(args.photo or str(shared / "images" / "2.jpg"))
    seeds = seed_images(photo)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    svc = ServiceProcess(["--model", args.model, "--threads", "1", "--no-access-log",
                          "--max-body-mb", "2", "--max-megapixels", "4"], log=Path(args.log))
    svc.start()
    import collections
    rows, total, failure = [], {}, None
    by_kind: collections.Counter = collections.Counter()
    try:
        # warm-up: one good request of each format, so first-use allocations are not counted
        for body in seeds.values():
            urllib.request.urlopen(urllib.request.Request(
                svc.url + "/detect", data=body, headers={"Content-Type": "image/jpeg"}), timeout=60).read()
        per_round = max(args.requests // args.rounds, 1)
        for r in range(args.rounds):
            before = (svc.rss_mb(), svc.rss_mb("RssAnon"))
            t0 = time.time()
            try:
                counts = run_fuzz(svc.port, seeds, per_round, timeout=args.timeout, seed=r,
                                  slow=not args.no_slow, by_kind=by_kind)
            except AssertionError as e:  # Hypothesis's shrunk 5xx or hang
                failure = str(e)[:2000]
                break
            alive = svc.proc.poll() is None
            with urllib.request.urlopen(svc.url + "/healthz", timeout=30) as h:
                healthy = h.status == 200
            after = (svc.rss_mb(), svc.rss_mb("RssAnon"))
            rows.append({"round": r + 1, "requests": sum(counts.values()), **dict(counts),
                         "seconds": round(time.time() - t0, 1), "alive": alive,
                         "healthz": healthy, "VmRSS_before": round(before[0], 1),
                         "VmRSS_after": round(after[0], 1), "RssAnon_before": round(before[1], 1),
                         "RssAnon_after": round(after[1], 1)})
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            if not (alive and healthy):
                failure = "the service died or /healthz failed"
                break
    finally:
        svc.stop()
    load = os.getloadavg()
    print(f"paddleface serve -m {args.model}, 1 worker, 1 thread; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; tool: Hypothesis (paddleface/serve/fuzz.py)")
    keys = ["round", "requests", "2xx", "4xx", "5xx", "closed", "hang", "seconds", "alive",
            "healthz", "VmRSS_before", "VmRSS_after", "RssAnon_before", "RssAnon_after"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row.get(k, 0)) for k in keys))
    print(f"total: {sum(total.values())} requests, " + json.dumps(total, sort_keys=True))
    print("per kind: " + "; ".join(
        f"{kind} " + ", ".join(f"{o} {n}" for (k, o), n in sorted(by_kind.items()) if k == kind)
        for kind in sorted({k for k, _ in by_kind})))
    if failure:
        print(f"FAILED: {failure}")
        return 1
    growth = rows[-1]["RssAnon_after"] - rows[-1]["RssAnon_before"] if rows else 0.0
    settled = growth <= args.settle_mb
    print(f"RssAnon growth in the last round: {growth:+.1f} MB ("
          + ("settled" if settled else f"over {args.settle_mb} MB") + ")")
    return 0 if settled else 1


if __name__ == "__main__":
    sys.exit(main())
