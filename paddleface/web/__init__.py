"""The browser detector: its page and JS (package data of this folder) and the onnxruntime-web
runtime files that ``paddleface export ID --format web`` copies beside them.

The runtime is the npm package pinned by ``package.json`` and ``package-lock.json`` here. Its
WASM file is 14 MB, too large for the repository or the wheel, so the export installs the
pinned package once with ``npm ci`` into ``$PADDLEFACE_HOME/web-runtime/`` and copies the
three files the page loads from there. ``$PADDLEFACE_ORT_WEB`` may name a folder holding those
files instead (e.g. ``node_modules/onnxruntime-web/dist`` installed elsewhere), for machines
without npm.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

from ..errors import PaddleFaceError
from ..weights import home

WEB_DIR = Path(__file__).resolve().parent
#: the page and the detector, copied from this package into every export
PAGE_FILES = ("index.html", "page.mjs", "detector.mjs")
#: onnxruntime-web's WASM build: the module, its Emscripten loader and the SIMD + threads binary
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
RUNTIME_PACKAGE = "onnxruntime-web"


def pinned_version() -> str:
    """The onnxruntime-web version package-lock.json pins."""
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{RUNTIME_PACKAGE}"]["version"]


def _lock_key() -> str:
    return hashlib.sha256((WEB_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]


def runtime_dir() -> Path:
    """The folder holding :data:`RUNTIME_FILES`: ``$PADDLEFACE_ORT_WEB``, or the pinned
    package installed by ``npm ci`` under ``$PADDLEFACE_HOME/web-runtime`` (done once)."""
    given = os.environ.get("PADDLEFACE_ORT_WEB")
    if given:
        missing = [f for f in RUNTIME_FILES if not (Path(given) / f).is_file()]
        if missing:
            raise PaddleFaceError(f"PADDLEFACE_ORT_WEB={given}: {', '.join(missing)} not found "
                                  f"there; it must be the dist folder of {RUNTIME_PACKAGE} "
                                  f"{pinned_version()}")
        return Path(given)
    prefix = home() / "web-runtime" / f"{RUNTIME_PACKAGE}-{pinned_version()}-{_lock_key()}"
    dist = prefix / "node_modules" / RUNTIME_PACKAGE / "dist"
    if all((dist / f).is_file() for f in RUNTIME_FILES):
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise PaddleFaceError(
            f"the web export needs {RUNTIME_PACKAGE} {pinned_version()}'s runtime files, which "
            "`npm ci` installs once: install Node.js with npm, or set PADDLEFACE_ORT_WEB to a "
            f"folder holding {', '.join(RUNTIME_FILES)} (node_modules/{RUNTIME_PACKAGE}/dist "
            "of an install elsewhere)")
    tmp = prefix.with_name(prefix.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(WEB_DIR / name, tmp / name)
        r = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--loglevel=error"], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            raise PaddleFaceError(f"`npm ci` of {RUNTIME_PACKAGE} {pinned_version()} failed in "
                                  f"{tmp}: {r.stderr.strip()[-400:]}")
        try:
            os.replace(tmp, prefix)
        except OSError:  # another process installed it first: use its copy
            if not all((dist / f).is_file() for f in RUNTIME_FILES):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dist


def _copy(src: Path, dest: Path) -> None:
    """Copy atomically (a .part file renamed), so an interrupted export leaves no half file."""
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, part)
    os.replace(part, dest)


def write_page(out: Path) -> Dict:
    """Copy the page, the detector and the runtime into ``out`` (beside model.onnx and
    deploy.json); returns what was written and the sizes, split into model and runtime."""
    out = Path(out)
    runtime = runtime_dir()
    (out / "ort").mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        _copy(WEB_DIR / name, out / name)
    for name in RUNTIME_FILES:
        _copy(runtime / name, out / "ort" / name)
    files: List[str] = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    ort_bytes = sum(p.stat().st_size for p in (out / "ort").iterdir())
    page_bytes = sum((out / n).stat().st_size for n in PAGE_FILES)
    return {"runtime": f"{RUNTIME_PACKAGE} {pinned_version()}", "runtime_bytes": ort_bytes,
            "page_bytes": page_bytes, "web_files": files}
