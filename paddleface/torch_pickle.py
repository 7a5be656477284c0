"""Reading PyTorch checkpoints without torch: a restricted unpickler that yields numpy arrays.

``torch.save`` writes a pickle whose tensors point, through "persistent ids", at raw storage
bytes. Two layouts exist and both are read here:

- the zip layout (torch >= 1.6): ``<root>/data.pkl`` plus one file ``<root>/data/<key>`` per
  storage (``<root>/byteorder`` says ``little`` or ``big``; absent means little);
- the legacy stream (torch 0.4 - 1.5, also written later with
  ``_use_new_zipfile_serialization=False``): five pickles in a row (magic number, protocol
  version, system info, the object, the list of storage keys), then per storage an int64
  element count and the raw bytes.

Only what a state dict needs may be named by the pickle, as with torch's
``weights_only=True``: ``collections.OrderedDict``, torch's tensor-rebuild functions and its
typed storage classes (mapped to numpy dtypes). Any other global (``os.system``,
``builtins.eval``, a model class ...) is refused by name before anything is called. The
pre-0.4 tar layout is refused with a sentence saying to install torch.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .errors import PaddleFaceError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
NEEDS_TORCH = ("pip install torch --index-url https://download.pytorch.org/whl/cpu, "
               "then run again (the one-time import uses it when it is installed)")

# torch's typed storage classes -> numpy dtypes (little-endian as written on the usual hosts)
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeCheckpoint(PaddleFaceError):
    """The pickle asks for a Python object that a state dict never needs."""


class CorruptCheckpoint(PaddleFaceError):
    """The file is truncated or not laid out as torch.save writes it."""


class UnsupportedCheckpoint(PaddleFaceError):
    """A real PyTorch file in a layout or dtype only torch itself can read."""


class _StorageType:
    """Stands for ``torch.<X>Storage`` inside the pickle: only its dtype matters."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One storage: ``numel`` elements of ``dtype``; ``data`` is filled once its bytes are read."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, int(numel)
        self.data: Optional[np.ndarray] = None


class _StorageView:
    """A slice of a root storage (legacy files only): ``numel`` elements from ``offset``."""

    def __init__(self, root: _Storage, offset: int, numel: int):
        self.root, self.offset, self.numel = root, int(offset), int(numel)


class _TensorRef:
    """A tensor waiting for its storage bytes: (storage, offset, size, stride) in elements."""

    def __init__(self, storage, offset: int, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs; storages come from ``storage_for``."""

    def __init__(self, f, src: Path, storage_for):
        super().__init__(f, encoding="utf-8")
        self.src, self.storage_for = src, storage_for

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            raise UnsupportedCheckpoint(f"{self.src}: holds torch.{name} tensors, which numpy "
                                        f"cannot represent; to import it, {NEEDS_TORCH}")
        raise UnsafeCheckpoint(
            f"{self.src}: the pickle asks for {module}.{name}, which a state dict of tensors "
            "never needs, so it is not unpickled (only tensors and plain containers are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise CorruptCheckpoint(f"{self.src}: an unknown storage reference {pid!r:.60}")
        return self.storage_for(pid[1:])


def _corrupt(src: Path, why: str = "the file is truncated or corrupt") -> CorruptCheckpoint:
    return CorruptCheckpoint(f"{src}: not a readable PyTorch checkpoint ({why}); a state dict "
                             "of tensors saved by torch.save was expected")


def _materialize(obj, src: Path):
    """Replace every tensor reference in a container tree by a C-contiguous numpy array."""
    if isinstance(obj, _TensorRef):
        st = obj.storage
        root, base = (st.root, st.offset) if isinstance(st, _StorageView) else (st, 0)
        if root.data is None:
            raise _corrupt(src, f"storage {root.key} has no data")
        start = base + obj.offset
        extent = start + sum((n - 1) * s for n, s in zip(obj.size, obj.stride) if n > 0) + 1
        if any(n == 0 for n in obj.size):
            return np.zeros(obj.size, root.dtype)
        if start < 0 or extent > root.data.size or any(s < 0 for s in obj.stride):
            raise _corrupt(src, "a tensor reaches outside its storage")
        item = root.data.itemsize
        view = np.lib.stride_tricks.as_strided(root.data[start:], shape=obj.size,
                                               strides=[s * item for s in obj.stride])
        # numpy's own native dtype instance: paddle.save's pickle memoizes it across arrays,
        # as it does for the arrays torch hands to x2paddle (same bytes on disk)
        return np.ascontiguousarray(view, dtype=np.dtype(root.dtype.type))
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v, src)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, src) for v in obj)
    return obj


def _read_zip(src: Path, zf: zipfile.ZipFile):
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
        raise _corrupt(src, "a zip without one data.pkl: not a torch.save file")
    root = pkl[0][: -len("data.pkl")]
    order = "<"
    if root + "byteorder" in names and zf.read(root + "byteorder").strip() == b"big":
        order = ">"
    storages: Dict[str, _Storage] = {}

    def storage_for(args):
        storage_type, key, _location, numel = args[:4]
        if not isinstance(storage_type, _StorageType):
            raise _corrupt(src, "a storage without a storage type")
        key = str(key)
        if key not in storages:
            st = _Storage(key, storage_type.dtype.newbyteorder(order), numel)
            try:
                raw = zf.read(f"{root}data/{key}")
            except KeyError:
                raise _corrupt(src, f"storage {key} is missing") from None
            if len(raw) < st.numel * st.dtype.itemsize:
                raise _corrupt(src, f"storage {key} is short")
            st.data = np.frombuffer(raw, st.dtype, count=st.numel)
            storages[key] = st
        return storages[key]

    obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), src, storage_for).load()
    return obj


def _read_legacy(src: Path, f) -> Any:
    def plain(what):
        # the header pickles hold only ints and a dict of ints/bools: no globals at all
        return _RestrictedUnpickler(f, src, lambda a: (_ for _ in ()).throw(
            _corrupt(src, f"a storage inside the {what}"))).load()

    if plain("magic number") != LEGACY_MAGIC:
        raise _corrupt(src, "no torch.save magic number")
    if plain("protocol version") != LEGACY_PROTOCOL:
        raise _corrupt(src, "an unknown legacy protocol version")
    sys_info = plain("system info")
    order = "<" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else ">"
    storages: Dict[str, _Storage] = {}
    views: Dict[str, _StorageView] = {}

    def storage_for(args):
        storage_type, key, _location, numel = args[:4]
        view = args[4] if len(args) > 4 else None
        if not isinstance(storage_type, _StorageType):
            raise _corrupt(src, "a storage without a storage type")
        key = str(key)
        if key not in storages:
            storages[key] = _Storage(key, storage_type.dtype.newbyteorder(order), numel)
        if view is None:
            return storages[key]
        view_key, offset, view_numel = view
        views.setdefault(str(view_key), _StorageView(storages[key], offset, view_numel))
        return views[str(view_key)]

    obj = _RestrictedUnpickler(f, src, storage_for).load()
    keys: List = plain("storage key list")
    if not isinstance(keys, list):
        raise _corrupt(src, "no storage key list")
    for key in keys:
        st = storages.get(str(key))
        if st is None:
            raise _corrupt(src, f"storage {key} is listed but never used")
        head = f.read(8)
        if len(head) < 8:
            raise _corrupt(src)
        (count,) = struct.unpack("<q", head)
        if count != st.numel:
            raise _corrupt(src, f"storage {key} holds {count} elements, {st.numel} expected")
        raw = f.read(st.numel * st.dtype.itemsize)
        if len(raw) < st.numel * st.dtype.itemsize:
            raise _corrupt(src)
        st.data = np.frombuffer(raw, st.dtype)
    return obj


def load_checkpoint(src: Path) -> Any:
    """The object ``torch.save`` wrote to ``src``, with every tensor as a numpy array.

    Raises :class:`UnsafeCheckpoint` for a pickle naming any global besides the allowed
    ones, :class:`CorruptCheckpoint` for a truncated or malformed file and
    :class:`UnsupportedCheckpoint` (saying to install torch) for the pre-0.4 tar layout.
    """
    src = Path(src)
    with open(src, "rb") as f:
        head = f.read(4)
        f.seek(0)
        try:
            if head == b"PK\x03\x04":
                try:
                    zf = zipfile.ZipFile(f)
                except (zipfile.BadZipFile, OSError, EOFError):
                    raise _corrupt(src) from None
                with zf:
                    obj = _read_zip(src, zf)
            elif head[:1] == b"\x80":
                obj = _read_legacy(src, f)
            elif _is_tar(f):
                raise UnsupportedCheckpoint(
                    f"{src}: a PyTorch checkpoint in the pre-0.4 tar layout, which only torch "
                    f"can read; to import it, {NEEDS_TORCH}")
            else:
                raise _corrupt(src, "not a torch.save file")
        except PaddleFaceError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
                IndexError, AttributeError, struct.error, zipfile.BadZipFile, OSError,
                UnicodeDecodeError, MemoryError, RecursionError):
            raise _corrupt(src) from None
    try:
        return _materialize(obj, src)
    except PaddleFaceError:
        raise
    except (ValueError, TypeError, MemoryError):
        raise _corrupt(src) from None


def _is_tar(f) -> bool:
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            return "pickle" in tar.getnames()
    except (tarfile.TarError, OSError, EOFError):
        return False
    finally:
        f.seek(0)
