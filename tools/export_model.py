"""Export a registry model: the same options as ``paddleface export``.

    python tools/export_model.py ulfd-rfb-320 --format inference --out output/export/rfb320
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export"] + sys.argv[1:]))
