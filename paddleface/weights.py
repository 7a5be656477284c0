"""Finding, downloading and importing checkpoints.

Weights resolve in this order: an explicit path; ``$PADDLEFACE_WEIGHTS/<record path>``
(a directory laid out like ../shared/weights); the converted cache under
``$PADDLEFACE_HOME`` (default ``~/.cache/paddleface``); a download from the upstream URL,
checked against its sha256.

PyTorch checkpoints are imported without torch (:func:`import_torch_params`): a restricted
unpickler (:mod:`paddleface.torch_pickle`) and x2paddle's parameter mapping on numpy arrays
(:mod:`paddleface.torch_import`), byte-identical to the torch path (``torch.load(
weights_only=True)`` then x2paddle's ``convert_params``), which is kept for the files only
torch can read and as the reference in the tests. Then a key-by-key shape check.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from .errors import PaddleFaceError
from .registry import ModelRecord

PADDLE_SUFFIXES = (".pdparams",)
EXPECTED_WEIGHTS = "a Paddle .pdparams or a PyTorch .pth state dict was expected"
# leading bytes of files people pass by mistake
FOREIGN_MAGIC = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"),
                 (b"GIF8", "a GIF image"), (b"BM", "a BMP image"), (b"%PDF", "a PDF document"),
                 (b"\x93NUMPY", "a numpy .npy array"), (b"\x1f\x8b", "a gzip archive"),
                 (b"\x08", "an ONNX or protobuf file"))


class UnreadableWeights(PaddleFaceError):
    """A weights file that cannot be read at all (as opposed to one of another model)."""


def check_weights_file(path: Path) -> None:
    """Refuse, in one sentence, a file that cannot be weights: what it is, what was expected.

    Both checkpoint formats are pickles (0x80), zip archives (torch.save's default) or, for
    very old torch files, tar archives; anything else is named from its first bytes, and a
    training state by its suffix.
    """
    path = Path(path)
    if path.suffix == ".pdstate":
        raise UnreadableWeights(
            f"{path}: a training state (optimizer, scheduler and epoch, for tools/train.py "
            f"--resume), not weights; pass the .pdparams beside it ({path.with_suffix('.pdparams')})")
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise UnreadableWeights(f"{path}: the file is empty; {EXPECTED_WEIGHTS}")
    if head[:1] == b"\x80" or head.startswith(b"PK\x03\x04") or head[257:262] == b"ustar":
        return
    what = next((name for magic, name in FOREIGN_MAGIC if head.startswith(magic)), None)
    raise UnreadableWeights(f"{path}: " + (f"{what}, not weights" if what else
                                           "not a weights file") + f"; {EXPECTED_WEIGHTS}")


def home() -> Path:
    return Path(os.environ.get("PADDLEFACE_HOME", Path.home() / ".cache" / "paddleface"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so a kill leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- reading PyTorch files
def read_torch_state_dict(src: Path) -> Dict[str, "object"]:
    """A plain ``{name: tensor}`` dict from a PyTorch checkpoint, read without running pickled code.

    Unwraps ``{'state_dict': ...}`` (and ``'model'``) wrappers, strips ``module.`` prefixes
    (DataParallel) and drops BatchNorm's ``num_batches_tracked`` counters, which Paddle
    does not keep.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the installation
        raise PaddleFaceError(
            f"{src}: importing a PyTorch checkpoint needs torch (only for this one-time "
            "conversion; converted .pdparams files need none): pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu (the CPU build; PyPI's default is the "
            "CUDA build, several GB)") from None
    if not src.is_file():
        raise PaddleFaceError(f"{src}: no such checkpoint file")
    check_weights_file(src)
    try:
        obj = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        # torch's own text goes on to suggest weights_only=False, i.e. running the pickle's
        # code: never pass that on
        why = ("it holds Python objects besides tensors, which are never unpickled here"
               if "Weights only load failed" in str(e) else "the file is truncated or corrupt")
        raise UnreadableWeights(f"{src}: not a readable PyTorch checkpoint ({why}); a state "
                                "dict of tensors saved by torch.save was expected") from None
    from .torch_import import plain_state_dict
    return plain_state_dict(obj, src, torch.Tensor)


def convert_with_x2paddle(state_dict: Dict[str, "object"]) -> Dict[str, np.ndarray]:
    """Run x2paddle's ``convert_params`` on a plain state dict; returns Paddle-named arrays.

    ``convert_params`` loads a .pth path and writes ``<name>.pdiparams`` beside it, so it
    works on a copy in a temporary folder; that copy holds only tensors written by us.
    """
    import paddle
    import torch
    try:
        from x2paddle.project_convertor.pytorch.convert import convert_params
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise PaddleFaceError(f"x2paddle could not be imported ({e}); "
                              "pip install x2paddle==1.6.0 astor six requests") from None
    with tempfile.TemporaryDirectory(prefix="paddleface-convert-") as tmp:
        src = os.path.join(tmp, "checkpoint.pth")
        torch.save(state_dict, src)
        convert_params(src)
        params = paddle.load(os.path.join(tmp, "checkpoint.pdiparams"))
    return {k: np.asarray(v) for k, v in params.items()}


def import_torch_params(src: Path) -> Dict[str, np.ndarray]:
    """Paddle-named parameters of the PyTorch checkpoint ``src``.

    Read without torch, always: the result equals the torch + x2paddle path bit for bit for
    every registry checkpoint, needs no 1 GB dependency and is several times faster. Only a
    layout numpy cannot hold (the pre-0.4 tar format, bfloat16 tensors) goes through torch,
    when it is installed; otherwise the error says to install it.
    """
    from .torch_import import paddle_params_from_pth
    from .torch_pickle import UnsupportedCheckpoint
    src = Path(src)
    if not src.is_file():
        raise PaddleFaceError(f"{src}: no such checkpoint file")
    check_weights_file(src)
    try:
        return paddle_params_from_pth(src)
    except UnsupportedCheckpoint:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise
        return convert_with_x2paddle(read_torch_state_dict(src))


def check_state_dict(record_id: str, src: Path, params: Dict[str, np.ndarray],
                     expected: Dict[str, tuple]) -> None:
    """Refuse a checkpoint whose keys or shapes differ from the model's, in one sentence."""
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    wrong = [f"{k} {tuple(params[k].shape)} (expected {tuple(expected[k])})"
             for k in expected if k in params and tuple(params[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        def few(names):
            return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({few(unexpected)})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches ({few(wrong)})")
        matches = matching_ids({k: tuple(np.shape(v)) for k, v in params.items()})
        hint = (f"; its keys and shapes match {', '.join(matches)}: pass -m {matches[0]}"
                if matches else "; its keys match no registry model")
        raise PaddleFaceError(f"{src}: not a {record_id} checkpoint: " + "; ".join(parts) + hint)


def matching_ids(shapes: Dict[str, tuple]) -> list:
    """Registry ids whose network has exactly these parameter names and shapes."""
    from .registry import REGISTRY
    return [r.id for r in REGISTRY.values() if _shapes_of(r.id) == shapes]


_SHAPES: Dict[str, Dict[str, tuple]] = {}


def _shapes_of(record_id: str) -> Dict[str, tuple]:
    from .registry import REGISTRY
    if record_id not in _SHAPES:
        _SHAPES[record_id] = expected_shapes(REGISTRY[record_id])
    return _SHAPES[record_id]


def expected_shapes(record: ModelRecord) -> Dict[str, tuple]:
    net = record.build()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def convert_checkpoint(record: ModelRecord, src: Path, out: Optional[Path] = None) -> Path:
    """Import the PyTorch checkpoint ``src`` for ``record`` into a Paddle ``.pdparams`` file
    (by default the cache entry of that exact file)."""
    import paddle
    src = Path(src)
    params = import_torch_params(src)
    check_state_dict(record.id, src, params, expected_shapes(record))
    out = Path(out) if out else cache_path(record, sha256_of(src))
    atomic_write(out, lambda tmp: paddle.save(params, tmp))
    return out


# ---------------------------------------------------------------- resolution
def cache_path(record: ModelRecord, source_sha256: str) -> Path:
    """Converted weights are cached per source file, so a fine-tuned .pth never shadows upstream."""
    return home() / "weights" / f"{record.id}-{source_sha256[:16]}.pdparams"


def _from_torch_file(record: ModelRecord, path: Path) -> Path:
    cached = cache_path(record, sha256_of(path))
    return cached if cached.is_file() else convert_checkpoint(record, path, cached)


def download(record: ModelRecord, instead: str = "pass --weights FILE") -> Path:
    """Fetch the upstream checkpoint into the cache and verify its sha256; offline, the
    error says where to put the file or, ``instead``, what else to pass."""
    ck = record.checkpoint
    dest = home() / "downloads" / ck.path
    if dest.is_file() and sha256_of(dest) == ck.sha256:
        return dest

    def fetch(tmp):
        with urllib.request.urlopen(ck.url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        got = sha256_of(Path(tmp))
        if got != ck.sha256:
            raise PaddleFaceError(f"{ck.url}: sha256 {got} does not match the expected "
                                  f"{ck.sha256}; the download was discarded")
    try:
        atomic_write(dest, fetch)
    except PaddleFaceError:
        raise
    except OSError as e:
        env = os.environ.get("PADDLEFACE_WEIGHTS")
        where = f"{env}/{ck.path}" if env else f"$PADDLEFACE_WEIGHTS/{ck.path}"
        raise PaddleFaceError(
            f"no weights for {record.id} and the download from {ck.url} failed ({e}); "
            f"put {Path(ck.path).name} (sha256 {ck.sha256[:12]}...) at {where}, "
            f"or {instead}") from None
    return dest


def resolve_weights(record: ModelRecord, explicit: Optional[str] = None,
                    allow_download: bool = True) -> Path:
    """Path of a Paddle ``.pdparams`` file for ``record`` (converting a PyTorch file if needed)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise PaddleFaceError(f"{path}: no such weights file")
        check_weights_file(path)
        return path if path.suffix in PADDLE_SUFFIXES else _from_torch_file(record, path)
    if record.checkpoint is None:
        raise PaddleFaceError(f"no trained weights are published for {record.id}: train it "
                              f"(python tools/train.py --model {record.id}) and pass --weights")
    env = os.environ.get("PADDLEFACE_WEIGHTS")
    if env and (Path(env) / record.checkpoint.path).is_file():
        return _from_torch_file(record, Path(env) / record.checkpoint.path)
    cached = cache_path(record, record.checkpoint.sha256)
    if cached.is_file():
        return cached
    if not allow_download:
        raise PaddleFaceError(f"no weights for {record.id}: put {record.checkpoint.path} "
                              "under $PADDLEFACE_WEIGHTS or pass a weights file")
    return _from_torch_file(record, download(record))


def is_cache_entry(path: Path) -> bool:
    """A converted file of ours under $PADDLEFACE_HOME/weights (safe to delete: re-created)."""
    return Path(path).resolve().parent == (home() / "weights").resolve()


def weights_available(record: ModelRecord) -> str:
    """Where the weights would come from without downloading: 'env', 'cache', '' or 'none'."""
    if record.checkpoint is None:
        return "none"
    env = os.environ.get("PADDLEFACE_WEIGHTS")
    if env and (Path(env) / record.checkpoint.path).is_file():
        return "env"
    if cache_path(record, record.checkpoint.sha256).is_file():
        return "cache"
    return ""


def read_paddle_state(path: Path) -> Dict[str, "object"]:
    """The parameter dict of a ``.pdparams`` file (converted, trained or a training
    checkpoint's ``model``), with a one-sentence error for anything else."""
    import paddle
    check_weights_file(path)
    try:
        state = paddle.load(str(path))
    except Exception:
        raise UnreadableWeights(f"{path}: not a readable Paddle weights file (truncated or "
                                "corrupt); a .pdparams saved by paddle.save was expected") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint
    if not isinstance(state, dict):
        raise PaddleFaceError(f"{path}: holds no parameter dict")
    return state


def load_weights(net, path: Path, record: ModelRecord) -> None:
    """Load a ``.pdparams`` file (converted or trained) into ``net``, checking every key."""
    state = read_paddle_state(path)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    check_state_dict(record.id, path, {k: np.asarray(v) for k, v in state.items()}, expected)
    net.set_state_dict(state)
