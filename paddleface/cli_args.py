"""Argument parsers and small helpers shared by the ``paddleface`` subcommands (detect, eval,
train, video, folder jobs): they live here, below every CLI module, so none imports another."""
from __future__ import annotations

import argparse
import os
from typing import Optional

from .registry import REGISTRY

def parse_size(text: str):
    """``WxH`` -> (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}")


def parse_long_side(text: str):
    """``640``, ``320`` ... or ``origin`` (no resize)."""
    if text == "origin":
        return None
    try:
        return parse_count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of pixels or 'origin', got {text!r}") from None


def add_model_args(p: argparse.ArgumentParser, default: Optional[str] = "rfb-lm") -> None:
    p.add_argument("--model", "-m", default=default, choices=sorted(REGISTRY), metavar="ID",
                   help=f"registry id ({', '.join(REGISTRY)})")
    p.add_argument("--weights", help="a .pdparams or PyTorch .pth file (default: resolved)")
    p.add_argument("--device", default=None, help="cpu, gpu or gpu:N (default: gpu if available)")


# ---------------------------------------------------------------------------- detect
def parse_fraction(text: str) -> float:
    """A threshold between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return v


def parse_count(text: str) -> int:
    try:
        v = int(text)
        if v > 0:
            return v
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")

def add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and --threads (detect, eval)."""
    from .engine import ENGINES
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="auto (default: the fastest installed engine for the model and device, "
                        "see `paddleface models`), onnxruntime, inference or dygraph")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    add_precision_args(p)


def add_precision_args(p: argparse.ArgumentParser) -> None:
    """--precision and --calib-images (detect, eval, export)."""
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                   help="int8: ONNX Runtime on the static int8 quantisation (CPU; offered where "
                        "it was faster, see `paddleface models`)")
    p.add_argument("--calib-images", metavar="DIR|LIST.txt",
                   help="photos to calibrate the int8 model on (a few dozen like the ones it "
                        "will see)")


def describe_engine(det) -> str:
    """One line: the engine a detector runs, why, and its threads."""
    threads = getattr(det.engine, "threads", None)
    return (f"{det.record.id}: engine {det.engine.name}"
            + (f", {threads} thread{'s' if threads > 1 else ''}" if threads else "")
            + f": {det.engine_reason}")


def network_input_setting(det) -> dict:
    """How a detector sizes its network input, as its JSON records say it:
    ``{"long_side": N | "origin"}`` for the any-size models, else
    ``{"input_size": "WxH", "resize": kind}``."""
    pre = det.preprocess
    if pre.resize == "long_side":
        side = pre.long_side if det.long_side == -1 else det.long_side
        return {"long_side": side or "origin"}
    w, h = det.input_size or pre.size
    return {"input_size": f"{w}x{h}", "resize": pre.resize}


def quiet_paddle() -> None:
    """Keep Paddle's C++ log lines and its ccache warning out of a command's output."""
    import warnings
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
