"""``paddleface prepare-wider`` (and data/wider_face_2_voc_add_landmark.py): WIDER FACE with
RetinaFace's landmark labels -> the VOC tree every model here trains on.

The upstream layout, relative to the current folder (every path has a flag):

    data/wider_face/WIDER_{train,val}/images      data/retinaface_labels/{train,val}/label.txt
    -> data/wider_face_add_lm_10_10/{Annotations,JPEGImages,ImageSets/Main/{trainval,test}.txt}

Faces smaller than --min-size (10) are left out of the XML and painted with the mean pixel
in the saved image; images with nothing painted are copied byte for byte. Bad lines, missing
or corrupt images are reported as ``label.txt:LINE: what``; the run exits non-zero when any
occurred unless --skip-bad. Writes are atomic and a rerun resumes where it stopped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from .voc_writer import convert_set

LIST_NAMES = {"train": "trainval", "val": "test"}


def add_prepare_args(p: argparse.ArgumentParser, data: Path = Path("data")) -> None:
    """The flags; ``data`` is the folder the default paths are in."""
    p.add_argument("--wider-dir", default=str(data / "wider_face"),
                   help="folder holding WIDER_train/ and WIDER_val/ (default: data/wider_face)")
    p.add_argument("--labels-dir", default=str(data / "retinaface_labels"),
                   help="folder holding {train,val}/label.txt (default: data/retinaface_labels)")
    p.add_argument("--out", default=str(data / "wider_face_add_lm_10_10"),
                   help="output VOC tree (default: data/wider_face_add_lm_10_10)")
    p.add_argument("--sets", nargs="+", default=["train", "val"], choices=["train", "val"])
    p.add_argument("--images", action="append", metavar="SET=DIR", default=[],
                   help="image folder of one set, e.g. val=path/to/images (overrides --wider-dir)")
    p.add_argument("--label", action="append", metavar="SET=FILE", default=[],
                   help="label.txt of one set (overrides --labels-dir)")
    p.add_argument("--min-size", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-bad", action="store_true",
                   help="exit 0 even when lines or images were bad (they are still reported)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: Optional[List[str]] = None, data: Path = Path("data")) -> int:
    """Parse ``argv`` (default paths below ``data``), convert; the exit code."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prepare_args(p, data)
    argv = sys.argv[1:] if argv is None else list(argv)
    return run(p.parse_args(argv), argv, p.error)


def run(args: argparse.Namespace, argv: List[str], error) -> int:
    """Convert with parsed ``args``; ``argv`` as typed (was --sets given?); ``error(msg)``
    reports a malformed flag and exits 2."""

    def overrides(pairs, what):
        out = {}
        for pair in pairs:
            k, sep, v = pair.partition("=")
            if not sep or k not in LIST_NAMES:
                error(f"--{what} expects SET=PATH with SET train or val, got {pair!r}")
            out[k] = Path(v)
        return out
    images, labels = overrides(args.images, "images"), overrides(args.label, "label")
    out = Path(args.out)
    sets_given = any(a == "--sets" or a.startswith("--sets=") for a in argv)
    try:
        return convert(args, images, labels, out, sets_given)
    except KeyboardInterrupt:
        # convert_set stopped its workers and removed their half-written files
        print("interrupted; rerun to resume", file=sys.stderr)
        return 130


def convert(args, images, labels, out, sets_given):
    bad = 0
    for s in args.sets:
        img_dir = images.get(s, Path(args.wider_dir) / f"WIDER_{s}" / "images")
        label = labels.get(s, Path(args.labels_dir) / s / "label.txt")
        t = time.time()
        try:
            r = convert_set(s, label, img_dir, out, LIST_NAMES[s], args.min_size, args.workers,
                            progress=not args.quiet, report=lambda e: print(e, file=sys.stderr))
        except FileNotFoundError as e:
            hint = ""
            if not sets_given and not label.is_file():
                other = [o for o in args.sets if o != s]
                hint = (f"; to convert only the {other[0]} set pass --sets {other[0]}"
                        if other else "")
            print(f"error: {e}{hint}", file=sys.stderr)
            return 2
        dt = time.time() - t
        print(f"{s}: {r.images} images in {dt:.1f} s ({r.images / max(dt, 1e-9):.0f} images/s): "
              f"{r.copied} copied, {r.written} painted and re-encoded, {r.skipped} already done, "
              f"{r.empty} without faces, {r.failed} failed, {r.errors} problems reported")
        bad += r.errors  # every failed image reported one of these: counted once
    if bad and not args.skip_bad:
        print(f"{bad} problems (see above); rerun with --skip-bad to accept them", file=sys.stderr)
        return 1
    return 0



def register(sub) -> None:
    p = sub.add_parser("prepare-wider", help="convert WIDER FACE + RetinaFace labels to the VOC "
                       "tree training reads", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prepare_args(p)

    def cmd(args):
        typed = getattr(args, "argv", [])
        return run(args, typed[typed.index("prepare-wider") + 1:] if "prepare-wider" in typed
                   else [], p.error)
    p.set_defaults(func=cmd)
