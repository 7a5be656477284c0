"""``paddleface train`` (and tools/train.py, train-version-RFB.sh): train a registry model on a
VOC tree made by ``paddleface prepare-wider``.

    paddleface train --model ulfd-rfb-320 --data-root data/wider_face_add_lm_10_10
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py --model ... (several
        devices or processes; Paddle's collective engine)

Every default is the model's upstream recipe (its registry record); flags override it.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import PaddleFaceError
from ..registry import REGISTRY


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``paddleface train`` / tools/train.py."""
    from ..cli_args import parse_size
    p.add_argument("--model", default="ulfd-rfb-320", choices=sorted(REGISTRY), metavar="ID")
    p.add_argument("--data-root", default="data/wider_face_add_lm_10_10")
    p.add_argument("--split", default="trainval")
    p.add_argument("--output-dir", default=None, help="default: output/train/ID")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--milestones", type=lambda s: tuple(int(v) for v in s.split(",")),
                   help="e.g. 95,150")
    p.add_argument("--input-size", type=parse_size, help="WxH training crops")
    p.add_argument("--schedule", default="multistep", choices=["multistep", "cosine"])
    p.add_argument("--warmup-epochs", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrained", default="none",
                   help="none, upstream (converted release), backbone (the record's ImageNet "
                        "backbone), backbone:FILE (an ImageNet backbone file of that layout, "
                        ".pth or .pdparams) or a weights file")
    p.add_argument("--pretrained-ssd", metavar="FILE",
                   help="a whole checkpoint of this model (.pth through the x2paddle import, or "
                        ".pdparams): load all but the heads, re-initialise the heads (ULFD's "
                        "--pretrained_ssd)")
    p.add_argument("--base-net", metavar="FILE",
                   help="backbone weights (.pth or .pdparams): load the base net, initialise "
                        "every other layer (ULFD's --base_net)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pdstate")
    p.add_argument("--save-every", type=int, default=10)
    p.add_argument("--val-every", type=int, default=5)
    p.add_argument("--val-root", help="VOC tree whose test split gives the val loss")
    p.add_argument("--val-images", help="WIDER val images for the val AP")
    p.add_argument("--val-gt", help="WIDER ground-truth folder for the val AP")
    p.add_argument("--max-iters", type=int, help="stop after this many iterations")
    p.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    p.add_argument("--device", default=None)
    p.add_argument("--log-dir", default=None, help="VisualDL folder (default: OUTPUT/vdl)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress inside an epoch (a bar with images/s and the loss on a "
                        "terminal, otherwise a line every --progress-interval seconds)")
    p.add_argument("--progress-interval", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between progress lines when stderr is not a terminal")


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_args(p)
    return p


def interrupted_message(trainer, argv: Sequence[str], command: Sequence[str]) -> str:
    """Where an interrupted run stopped and the command (``command`` + ``argv`` + ``--resume``)
    that continues it."""
    # the trainer's own counters; the data set's epoch is the one its loader was made for
    epoch = getattr(trainer, "epoch", None)
    if epoch is None:
        epoch = getattr(getattr(trainer, "train_set", None), "epoch", None)
    step = getattr(trainer, "step", None)
    where = ", ".join(part for part in (
        f"in epoch {epoch + 1}/{trainer.epochs}" if epoch is not None else "",
        f"after {step} iteration{'' if step == 1 else 's'}" if step is not None else "")
        if part)
    state = Path(trainer.cfg.output_dir) / "last.pdstate"
    if not state.is_file():
        return (f"interrupted {where}; no epoch had finished, so there is nothing to resume: "
                "rerun the same command to start again")
    args = [a for a in argv if a != "--resume"]
    command = shlex.join([*command, *args, "--resume"])
    restart = f"epoch {epoch + 1}" if epoch is not None else "the interrupted epoch"
    return (f"interrupted {where}; resume with: {command} (continues from {state}, saved at "
            f"the end of each epoch: {restart} restarts)")


def main(argv: Optional[List[str]] = None, command: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and train; ``command`` is how the user started it (for the resume hint;
    default ``paddleface train``). Returns the exit code: 2 on a user mistake, 130 on Ctrl-C."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return run(vars(build_parser().parse_args(argv)), argv, command or ["paddleface", "train"])


def run(args: dict, argv: Sequence[str], command: Sequence[str]) -> int:
    """Train with parsed flags ``args`` (``argv``: the flags as typed, for the resume hint)."""
    # Paddle's CPU kernels use OpenMP; without this they may run on one core only.
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    from ..paddle_runtime import import_paddle
    import_paddle()  # before the trainer imports it: without its start-up noise
    from .trainer import TrainConfig, Trainer, write_history
    args["output_dir"] = args["output_dir"] or f"output/train/{args['model']}"
    trainer = None
    try:
        trainer = Trainer(TrainConfig(**args))
        # on --resume the weights come from last.pdstate, whatever --pretrained says
        start = (f"resuming from epoch {getattr(trainer, 'start_epoch', 0) + 1} after "
                 f"{getattr(trainer, 'step', 0)} iterations "
                 f"({Path(args['output_dir']) / 'last.pdstate'})" if args["resume"]
                 else trainer.init_note)
        print(f"{args['model']}: {len(trainer.train_set)} images, {trainer.epochs} epochs, "
              f"batch {trainer.batch_size}, lr {trainer.lr}, input {trainer.size[0]}x"
              f"{trainer.size[1]}, {start}")
        result = trainer.train()
    except PaddleFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if trainer is None:
            print("interrupted before training started", file=sys.stderr)
        elif getattr(trainer, "rank", 0) == 0:
            print(interrupted_message(trainer, argv, command), file=sys.stderr)
        return 130
    if trainer.rank == 0:
        write_history(result, Path(args["output_dir"]) / "history.json")
        print(f"checkpoint: {result['checkpoint']}")
    return 0



def cmd_train(args: argparse.Namespace) -> int:
    """``paddleface train``: the parsed sub-command namespace -> exit code."""
    flags = {k: v for k, v in vars(args).items() if k not in ("func", "command", "argv")}
    typed = getattr(args, "argv", ["train"])
    return run(flags, typed[typed.index("train") + 1:], ["paddleface", "train"])


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a VOC tree (the upstream recipe by "
                       "default)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_args(p)
    p.set_defaults(func=cmd_train)
