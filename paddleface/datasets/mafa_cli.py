"""``paddleface prepare-mafa``: MAFA's labels -> VOC, merged into a WIDER FACE VOC tree (the
training and test data of ulfd-mask-320 / ulfd-mask-640)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import PaddleFaceError


def cmd_prepare_mafa(args) -> int:
    from .mafa import convert_split
    if not (args.train_mat or args.test_mat):
        raise PaddleFaceError("give --train-mat LabelTrainAll.mat and/or --test-mat "
                              "LabelTestAll.mat")
    root, out = Path(args.mafa_root), Path(args.out)
    failed = 0
    for split, mat, images in (("train", args.train_mat, args.train_images),
                               ("test", args.test_mat, args.test_images)):
        if not mat:
            continue
        s = convert_split(Path(mat), Path(images) if images else root / f"{split}-images", out,
                          split, human_body_as_face=args.human_body_as_face,
                          max_images=args.max_train_images if split == "train" else None,
                          progress=not args.quiet)
        for e in s.errors:
            print(f"error: {e}", file=sys.stderr)
        lst = "trainval" if split == "train" else "test"
        print(f"MAFA {split}: {s.converted} images converted, {s.skipped} already there, "
              f"{s.without_faces} without a kept face, {s.failed} failed; {s.faces} faces "
              f"({s.masked_faces} masked_face) listed in {out}/ImageSets/Main/{lst}.txt")
        failed += s.failed
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser("prepare-mafa", help="convert MAFA's labels to VOC and merge them into "
                       "a WIDER FACE VOC tree (masked_face objects, for ulfd-mask-*)")
    p.add_argument("--mafa-root", default=".",
                   help="MAFA's folder with train-images/ and test-images/ (default: .)")
    p.add_argument("--train-mat", help="LabelTrainAll.mat (-> ImageSets/Main/trainval.txt)")
    p.add_argument("--test-mat", help="LabelTestAll.mat (-> ImageSets/Main/test.txt)")
    p.add_argument("--train-images", help="the train images (default: MAFA_ROOT/train-images)")
    p.add_argument("--test-images", help="the test images (default: MAFA_ROOT/test-images)")
    p.add_argument("--out", required=True,
                   help="the VOC tree to merge into (the WIDER FACE tree; made if missing)")
    p.add_argument("--human-body-as-face", action="store_true",
                   help="also keep train faces occluded by a human body (3+ parts) as 'face', "
                        "as the upstream README's WIDER_MAFA_Balanced set does")
    p.add_argument("--max-train-images", type=int, default=None,
                   help="stop after this many train images (the upstream balanced set: 15542)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prepare_mafa)
