"""Install paths: the user's requirements never pull PyTorch, and where torch is asked for it is
the CPU build, so a fresh machine never downloads the multi-GB CUDA build from PyPI."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(name: str):
    """(file, requirement) pairs of a requirements file, following ``-r`` includes."""
    out = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out += requirement_lines(line[3:].strip())
        elif line and not line.startswith("-"):
            out.append((name, line))
    return out


def torch_pins(name: str):
    return [(f, r) for f, r in requirement_lines(name)
            if re.match(r"torch\b", r) and not r.startswith("torchvision")]


def test_user_requirements_have_no_torch():
    assert torch_pins("requirements.txt") == []


def test_torch_is_always_the_cpu_build_from_its_index():
    for name in ("requirements-convert.txt", "requirements-dev.txt"):
        pins = torch_pins(name)
        assert pins, f"{name} should bring torch for the checkpoint import"
        for f, r in pins:
            assert r.endswith("+cpu"), f"{f}: {r} would take PyPI's CUDA build on a fresh machine"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in \
        (ROOT / "requirements-convert.txt").read_text()


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-convert.txt", "requirements-dev.txt"):
        for f, r in requirement_lines(name):
            assert "==" in r, f"{f}: {r} is not pinned"


def test_package_extras_never_ask_for_torch():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        assert not [r for r in reqs if re.match(r"torch\b", r)], \
            f"extra {extra!r} asks for torch: pip would take the CUDA build"
    assert not [r for r in project["dependencies"] if re.match(r"torch\b", r)]
