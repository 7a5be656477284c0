"""The documentation cannot drift: every command in README.md and docs/ runs here.

Conventions (also in DEVELOPERS.md):
- A fenced block whose opening fence directly follows the line ``<!-- run -->`` is executed:
  ``sh``/``bash`` blocks with ``bash -euo pipefail``, ``python`` blocks with this venv's Python.
- ``<!-- run-instead: ONE SHELL LINE -->`` before a block runs that line instead of the block
  (a small-data variant of a long command; the page says so in its text).
- ``<!-- no-run: REASON -->`` before a block says why it cannot run in CI (a GPU, a camera, a
  download). Every ``sh``/``bash``/``console``/``python`` block carries one of the three
  markers: an unmarked command is a test failure, so nothing is left untested by accident.
- All runnable blocks of one page run in order in one fresh scratch folder (the current
  directory), which starts with ``photo.jpg`` (a group photo), ``photos/`` (three photos),
  ``masked.jpg`` (people wearing masks) and ``clip.mp4`` (640x360, 10 fps, 3 s). The
  environment has ``PADDLEFACE_WEIGHTS``, ``PADDLEFACE_SHARED``, ``PADDLEFACE_HOME`` (one
  cache for the whole docs run), ``WIDER_VAL`` (the 488 WIDER val images with label.txt) and
  ``WIDER_GT`` (the official ground-truth .mat folder); ``paddleface`` and ``python`` are the
  ones of the interpreter running the tests.

``python -m pytest tests/test_docs.py -k <page stem>`` runs one page.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LANGUAGES = {"sh", "bash", "console", "shell", "python", "py", "pycon"}
MARKER = re.compile(r"^<!--\s*(run|run-instead|no-run)\s*(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
BLOCK_TIMEOUT = 900  # seconds; a block that needs longer gets a run-instead variant


@dataclass
class Block:
    """One fenced code block of a page: where it starts, its language, text and marker."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: Optional[str]  # "run", "run-instead", "no-run" or None
    argument: str  # the run-instead command or the no-run reason

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_blocks(page: Path) -> List[Block]:
    """Every fenced block of a Markdown page with the marker on the line before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, language = m.groups()
        start, body, i = i, [], i + 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        marker, argument = None, ""
        prev = lines[start - 1].strip() if start > 0 else ""
        mm = MARKER.match(prev)
        if mm:
            marker, argument = mm.group(1), (mm.group(2) or "")
        blocks.append(Block(page, start + 1, language.lower(), "\n".join(body) + "\n",
                            marker, argument))
    return blocks


def pages() -> List[Path]:
    found = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in found if p.is_file()]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).with_suffix("").as_posix()


def make_clip(photo: Path, out: Path, fps: int = 10, seconds: int = 3) -> None:
    """A 640x360 clip panning slowly over ``photo``: real faces that move between frames."""
    import cv2
    import numpy as np
    img = cv2.imread(str(photo))
    scale = 400 / img.shape[0]
    img = cv2.resize(img, (int(img.shape[1] * scale), 400))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 360))
    n = fps * seconds
    for k in range(n):
        x = int((img.shape[1] - 640) * k / max(n - 1, 1))
        y = int(40 * k / max(n - 1, 1))
        writer.write(np.ascontiguousarray(img[y:y + 360, x:x + 640]))
    writer.release()


@pytest.fixture(scope="session")
def docs_fixtures(tmp_path_factory) -> Path:
    """The starting content of every page's scratch folder."""
    shared = shared_dir()
    root = tmp_path_factory.mktemp("docs-fixtures")
    shutil.copy(shared / "images/2.jpg", root / "photo.jpg")
    (root / "photos").mkdir()
    for name in ("1.jpg", "13.jpg", "5.jpg"):
        shutil.copy(shared / "images" / name, root / "photos" / name)
    shutil.copy(shared / "images/masked/img3.jpg", root / "masked.jpg")
    make_clip(shared / "images/crowd.jpg", root / "clip.mp4")
    return root


@pytest.fixture(scope="session")
def docs_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("docs-home")


def test_every_command_block_is_marked():
    """An unmarked command block would silently escape CI."""
    problems = []
    for page in pages():
        for b in parse_blocks(page):
            if b.language in COMMAND_LANGUAGES and b.marker is None:
                problems.append(f"{b.where()}: a {b.language} block without <!-- run -->, "
                                "<!-- run-instead: ... --> or <!-- no-run: reason -->")
            if b.marker == "no-run" and not b.argument:
                problems.append(f"{b.where()}: <!-- no-run --> needs a reason")
            if b.marker == "run" and b.language not in COMMAND_LANGUAGES:
                problems.append(f"{b.where()}: <!-- run --> on a {b.language or 'plain'} block; "
                                "only sh/bash/python blocks can run")
    assert not problems, "\n".join(problems)


def test_markers_precede_blocks():
    """A marker that is not directly followed by a fence is a typo that would hide a block."""
    problems = []
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if MARKER.match(line.strip()):
                nxt = lines[n + 1] if n + 1 < len(lines) else ""
                if not FENCE.match(nxt):
                    problems.append(f"{page.relative_to(ROOT)}:{n + 1}: a marker not followed "
                                    "by a code fence on the next line")
    assert not problems, "\n".join(problems)


def run_block(block: Block, cwd: Path, env: dict) -> None:
    if block.marker == "run-instead":
        args, what = ["bash", "-euo", "pipefail", "-c", block.argument], block.argument
    elif block.language in ("python", "py"):
        args, what = [sys.executable, "-c", block.text], block.text
    else:
        args, what = ["bash", "-euo", "pipefail", "-c", block.text], block.text
    try:
        r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where()}: still running after {BLOCK_TIMEOUT} s:\n{what}")
    if r.returncode != 0:
        pytest.fail(f"{block.where()}: exit status {r.returncode}\n--- block\n{what}"
                    f"--- stdout (end)\n{r.stdout[-3000:]}\n--- stderr (end)\n{r.stderr[-3000:]}")


PAGES_WITH_RUNNABLE = [p for p in pages()
                       if any(b.marker in ("run", "run-instead") for b in parse_blocks(p))]


@pytest.mark.parametrize("page", PAGES_WITH_RUNNABLE, ids=[page_id(p) for p in PAGES_WITH_RUNNABLE])
def test_page_commands_run(page: Path, docs_fixtures: Path, docs_home: Path, tmp_path: Path):
    scratch = tmp_path / "scratch"
    shutil.copytree(docs_fixtures, scratch)
    shared = shared_dir()
    env = dict(os.environ)
    env.update({
        "PADDLEFACE_SHARED": str(shared),
        "PADDLEFACE_WEIGHTS": os.environ.get("PADDLEFACE_WEIGHTS", str(shared / "weights")),
        "PADDLEFACE_HOME": str(docs_home),
        "WIDER_VAL": str(shared / "widerface/val"),
        "WIDER_GT": str(shared / "widerface/ground_truth"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        "MPLBACKEND": "Agg",
    })
    for block in parse_blocks(page):
        if block.marker in ("run", "run-instead"):
            run_block(block, scratch, env)


def test_site_builds_strict(tmp_path: Path):
    """`mkdocs build --strict`: broken links, missing nav pages and bad API references fail."""
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.fail("mkdocs.yml is missing")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                        "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
