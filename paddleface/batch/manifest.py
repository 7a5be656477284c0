"""A resumable results folder: ``OUT/manifest.json`` says how its results were made,
``OUT/faces/<relative path>.json`` holds one image's faces. A rerun with the same settings
skips the images whose file exists; other settings are refused (their results would mix)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict

from ..errors import PaddleFaceError

MANIFEST = "manifest.json"
FACES = "faces"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a private temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def result_path(out: Path, rel: Path) -> Path:
    """Where the faces of input ``rel`` go: OUT/faces/<rel>.json."""
    return out / FACES / Path(str(rel) + ".json")


def open_results(out: Path, settings: Dict) -> None:
    """Create ``out`` with its manifest, or check that an existing one has ``settings``."""
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise PaddleFaceError(f"{path}: not a JSON manifest; delete it or use another "
                                  "--out") from None
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if diff:
            k = diff[0]
            raise PaddleFaceError(f"{path}: these results were made with {k}={old.get(k)!r}, "
                                  f"this run has {settings.get(k)!r}; use another --out or "
                                  "delete the folder")
        return
    write_atomic(path, json.dumps(settings, indent=1))


def is_done(out: Path, rel: Path) -> bool:
    return result_path(out, rel).is_file()


def write_result(out: Path, rel: Path, entry: Dict) -> None:
    write_atomic(result_path(out, rel), json.dumps(entry))


def read_result(out: Path, rel: Path) -> Dict:
    return json.loads(result_path(out, rel).read_text())
