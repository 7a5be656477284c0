"""Train a registry model on a VOC tree made by data/wider_face_2_voc_add_landmark.py.

    python tools/train.py --model ulfd-rfb-320 --data-root data/wider_face_add_lm_10_10
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py --model ... (several
        devices or processes; Paddle's collective engine)

Every default is the model's upstream recipe (its registry record); flags override it.
"""
import argparse
import os
import sys
from pathlib import Path

# Paddle's CPU kernels use OpenMP; without this they may run on one core only.
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.cli import parse_size  # noqa: E402
from paddleface.errors import PaddleFaceError  # noqa: E402
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
                   help="none, upstream (converted release), backbone (ImageNet) or a weights file")
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
    return p


def main(argv=None):
    from paddleface.training.trainer import TrainConfig, Trainer, write_history
    args = vars(build_parser().parse_args(argv))
    args["output_dir"] = args["output_dir"] or f"output/train/{args['model']}"
    try:
        trainer = Trainer(TrainConfig(**args))
        print(f"{args['model']}: {len(trainer.train_set)} images, {trainer.epochs} epochs, "
              f"batch {trainer.batch_size}, lr {trainer.lr}, input {trainer.size[0]}x"
              f"{trainer.size[1]}, {trainer.init_note}")
        result = trainer.train()
    except PaddleFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if trainer.rank == 0:
        write_history(result, Path(args["output_dir"]) / "history.json")
        print(f"checkpoint: {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
