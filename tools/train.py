"""Train a registry model on a VOC tree made by data/wider_face_2_voc_add_landmark.py.

    python tools/train.py --model ulfd-rfb-320 --data-root data/wider_face_add_lm_10_10
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py --model ... (several
        devices or processes; Paddle's collective engine)

Every default is the model's upstream recipe (its registry record); flags override it.
"""
import argparse
import os
import shlex
import sys
from pathlib import Path

# Paddle's CPU kernels use OpenMP; without this they may run on one core only.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.cli import parse_size  # noqa: E402
from paddleface.errors import PaddleFaceError  # noqa: E402
from paddleface.paddle_runtime import import_paddle  # noqa: E402
from paddleface.registry import REGISTRY  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return p


def interrupted_message(trainer, argv) -> str:
    """Where an interrupted run stopped and the command that continues it."""
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
    command = shlex.join([sys.executable, sys.argv[0], *args, "--resume"])
    restart = f"epoch {epoch + 1}" if epoch is not None else "the interrupted epoch"
    return (f"interrupted {where}; resume with: {command} (continues from {state}, saved at "
            f"the end of each epoch: {restart} restarts)")


def main(argv=None):
    import_paddle()  # before the trainer imports it: without its start-up noise
    from paddleface.training.trainer import TrainConfig, Trainer, write_history
    argv = sys.argv[1:] if argv is None else list(argv)
    args = vars(build_parser().parse_args(argv))
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
            print(interrupted_message(trainer, argv), file=sys.stderr)
        return 130
    if trainer.rank == 0:
        write_history(result, Path(args["output_dir"]) / "history.json")
        print(f"checkpoint: {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
