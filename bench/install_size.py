"""Install size and time of each way to install PaddleFace, each into a fresh virtual environment.

    python bench/install_size.py --dir /tmp/install-paths [--paths cpu-minimal user convert dev]

Paths (``ROOT`` is this repository; pip builds the package from it):
- ``cpu-minimal``: ``pip install ROOT[cpu]``: detection from converted .pdparams weights with
  Paddle Inference (no ONNX Runtime, no PyTorch);
- ``user``: ``pip install -r requirements.txt ROOT``: detection with ONNX Runtime, evaluation,
  training, export, serving;
- ``convert``: ``user`` plus ``-r requirements-convert.txt`` (PyTorch's CPU build and x2paddle,
  for importing the upstream .pth checkpoints);
- ``dev``: ``pip install -r requirements-dev.txt -e ROOT``: what CI installs (tests, docs).

Each path gets a new venv (``python -m venv``) and one ``pip install --no-cache-dir``; the table
gives the wall time of that command, the venv's size (``du -sk``), the number of distributions
and the largest ones. Times depend on the package index and the network: the machine and the
load average are printed beside them.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = {
    "cpu-minimal": [f"{ROOT}[cpu]"],
    "user": ["-r", str(ROOT / "requirements.txt"), str(ROOT)],
    "convert": ["-r", str(ROOT / "requirements.txt"), "-r",
                str(ROOT / "requirements-convert.txt"), str(ROOT)],
    "dev": ["-r", str(ROOT / "requirements-dev.txt"), "-e", str(ROOT)],
}


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def largest(site: Path, n: int = 4) -> str:
    sizes = []
    for d in site.iterdir():
        if d.is_dir() and not d.name.endswith((".dist-info", "__pycache__")):
            sizes.append((du_mb(d), d.name))
    return ", ".join(f"{name} {mb:.0f}" for mb, name in sorted(sizes, reverse=True)[:n])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="where the venvs are made")
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    p.add_argument("--keep", action="store_true", help="keep the venvs afterwards")
    args = p.parse_args(argv)
    rows = []
    for name in args.paths:
        venv = args.dir / name
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        load0 = os.getloadavg()[0]
        t = time.time()
        r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir",
                            *PATHS[name]], capture_output=True, text=True,
                           cwd=args.dir)
        dt = time.time() - t
        if r.returncode != 0:
            print(f"{name}: pip failed\n{r.stderr[-2000:]}", file=sys.stderr)
            rows.append(f"| {name} | failed | | | | |")
            continue
        site = next(venv.glob("lib/python*/site-packages"))
        dists = len(list(site.glob("*.dist-info")))
        torch_build = ""
        if (site / "torch" / "version.py").is_file():
            torch_build = subprocess.run([str(venv / "bin" / "python"), "-c",
                                          "import torch; print(torch.__version__)"],
                                         capture_output=True, text=True).stdout.strip()
        rows.append(f"| {name} | {dt:.0f} | {du_mb(venv):.0f} | {dists} | "
                    f"{largest(site)} | {torch_build or '-'} | {load0:.1f} / "
                    f"{os.getloadavg()[0]:.1f} |")
        print(rows[-1], flush=True)
        if not args.keep:
            shutil.rmtree(venv)
    print("| path | pip install s | venv MB | distributions | largest packages, MB | torch | "
          "load before / after |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
