"""The ``paddleface detect`` options of a folder job (--workers, --shard) and its run."""
from __future__ import annotations

import argparse
import sys

from ..errors import PaddleFaceError


def add_job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="detect a folder with N processes (each: its engine with cores/N "
                        "threads and one decode thread); results go to --out as one JSON per "
                        "image beside a manifest, and a rerun skips finished images")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only shard K of N of the images (a hash of each relative path): N "
                        "machines or job-array tasks share an archive; implies the results "
                        "folder of --workers")


def wants_job(args) -> bool:
    return args.workers is not None or args.shard is not None


def run_job(args, spec: dict) -> int:
    """Run ``paddleface detect`` as a folder job; ``spec``: the FaceDetector arguments."""
    from .job import run_folder_job
    from .shard import parse_shard
    shard = parse_shard(args.shard) if args.shard else None
    if not args.out:
        raise PaddleFaceError("--workers and --shard write their results to a folder: give --out")
    if args.save_crops:
        raise PaddleFaceError("--save-crops is not available with --workers/--shard")
    c = run_folder_job(args.paths, args.out, spec, args.workers or 1, shard, args.json)
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    print(f"{c['images']} images{where}: {c['done']} detected, {c['skipped']} already done, "
          f"{c['failed']} failed; results in {args.out}")
    if c["failed"]:
        print(f"{c['failed']} inputs failed", file=sys.stderr)
    return 1 if c["failed"] else 0
