#!/usr/bin/env python
"""WIDER FACE with RetinaFace's landmark labels -> VOC: the same options as
``paddleface prepare-wider``, under the upstream's script name. Run from the repository root or
from data/: the default paths are below this script's folder (data/wider_face,
data/retinaface_labels -> data/wider_face_add_lm_10_10).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.datasets.prepare_wider import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(data=Path(__file__).resolve().parent))
