"""Memory of ``paddleface serve`` over bursts of load separated by idle gaps.

    python bench/serve_soak.py --model ulfd-rfb-320 --bursts 15 --burst 5 --idle 11

Each burst is ``--clients`` threads posting crowd.jpg to ``/detect`` for ``--burst`` seconds;
then nothing for ``--idle`` seconds. An idle gap longer than 10 s makes the service replace
its request threads (anyio drops worker threads idle that long), so per-thread memory
that is never given back would add up burst after burst. Prints the service's anonymous and
total RSS after each burst.
"""
import argparse
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import shared_dir  # noqa: E402

from paddleface.serve.process import ServiceProcess  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ulfd-rfb-320")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--bursts", type=int, default=15)
    ap.add_argument("--burst", type=float, default=5.0, help="seconds of load per burst")
    ap.add_argument("--idle", type=float, default=11.0, help="seconds of no load after each")
    ap.add_argument("--image", default=str(shared_dir() / "images" / "crowd.jpg"))
    args = ap.parse_args()
    body = Path(args.image).read_bytes()
    sent, failed = [0], [0]
    with ServiceProcess(["--model", args.model, "--no-access-log"]) as svc:
        url = f"{svc.url}/detect"

        def client():
            session, stop_at = requests.Session(), time.time() + args.burst
            while time.time() < stop_at:
                ok = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}).ok
                sent[0] += 1
                failed[0] += not ok

        print("burst  requests  anonymous RSS MB  RSS MB")
        for k in range(args.bursts):
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(f"{k:5d}  {sent[0]:8d}  {svc.rss_mb('RssAnon'):16.0f}  {svc.rss_mb():6.0f}",
                  flush=True)
            time.sleep(args.idle)
    print(f"{failed[0]} of {sent[0]} requests failed")
    return 1 if failed[0] else 0


if __name__ == "__main__":
    raise SystemExit(main())
