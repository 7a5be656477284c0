"""Helpers shared by the benchmark scripts: the shared test data and its converted subset."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))


def subset_label(dest: Path) -> Path:
    """shared val/label.txt filtered to the images of val/subset.txt, written to ``dest``."""
    shared = shared_dir()
    subset = set((shared / "widerface/val/subset.txt").read_text().split())
    keep, lines = False, []
    for line in (shared / "widerface/val/label.txt").read_text().splitlines():
        if line.startswith("#"):
            keep = line[1:].strip() in subset
        if keep:
            lines.append(line)
    dest.write_text("\n".join(lines) + "\n")
    return dest


def convert_subset(tmp: Path, out_name: str = "voc", workers: int = 2) -> Path:
    """The converted VOC tree (test split) of the labelled subset images, made by the script."""
    label = subset_label(Path(tmp) / "label.txt")
    out = Path(tmp) / out_name
    subprocess.run([sys.executable, str(ROOT / "data/wider_face_2_voc_add_landmark.py"), "--quiet",
                    "--sets", "val", "--images", f"val={shared_dir() / 'widerface/val/images'}",
                    "--label", f"val={label}", "--out", str(out), "--workers", str(workers)],
                   check=True, stdout=subprocess.DEVNULL)
    return out
