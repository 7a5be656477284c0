"""Train a registry model: the same options as ``paddleface train`` (the upstream's script name).

    python tools/train.py --model ulfd-rfb-320 --data-root data/wider_face_add_lm_10_10
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py --model ...
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.training.cli import main as train_main  # noqa: E402


def main(argv=None):
    return train_main(argv, command=[sys.executable, sys.argv[0]])


if __name__ == "__main__":
    sys.exit(main())
