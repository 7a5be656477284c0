"""WIDER FACE evaluation: the same options as ``paddleface eval``.

    python tools/eval.py rfb-lm --images WIDER_val/images --gt ground_truth [--long-side 320]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["eval"] + sys.argv[1:]))
