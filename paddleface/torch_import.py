"""PyTorch state dict -> Paddle parameters, without torch.

:func:`paddle_params_from_pth` reads the checkpoint with the restricted unpickler of
:mod:`paddleface.torch_pickle` and applies the same mapping as x2paddle 1.6.0's
``project_convertor.pytorch.convert.convert_params``, which the torch path runs:

- ``<m>.running_mean`` -> ``<m>._mean``, ``<m>.running_var`` -> ``<m>._variance``
  (BatchNorm statistics under Paddle's names);
- every 2-D ``<m>.weight`` that is not a BatchNorm weight is transposed (a Linear layer's
  (out, in) becomes Paddle's (in, out));
- everything else is copied as is, dtype kept (float32 for these checkpoints), in the
  checkpoint's key order.

Before the mapping, as in ``weights.read_torch_state_dict``: ``{'state_dict': ...}`` and
``{'model': ...}`` wrappers are unwrapped, a ``module.`` prefix (DataParallel) is stripped
and BatchNorm's ``num_batches_tracked`` counters are dropped. The arrays come out
C-contiguous, as x2paddle's result does after its save/load round trip, so the written
``.pdparams`` are byte-identical (``tests/test_torch_free.py`` checks every registry
checkpoint against the torch + x2paddle path).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from .errors import PaddleFaceError
from .torch_pickle import load_checkpoint

WRAPPER_KEYS = ("state_dict", "model")


def state_dict_from_pth(src: Path) -> Dict[str, np.ndarray]:
    """``{name: array}`` of a PyTorch checkpoint: unwrapped, ``module.`` stripped,
    ``num_batches_tracked`` dropped."""
    return plain_state_dict(load_checkpoint(src), src, np.ndarray)


def plain_state_dict(obj, src: Path, tensor_type: type) -> Dict[str, "object"]:
    """The parameter dict inside a loaded checkpoint ``obj`` (numpy arrays here, torch
    tensors on the torch path): ``{'state_dict'|'model': ...}`` unwrapped, a ``module.``
    prefix (DataParallel) stripped, ``num_batches_tracked`` counters dropped."""
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, tensor_type) for k, v in obj.items()):
        raise PaddleFaceError(f"{src}: holds no state dict of tensors "
                              "(a dict of parameter name -> tensor was expected)")
    out = {}
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if not k.endswith("num_batches_tracked"):
            out[k] = v
    return out


def x2paddle_mapping(state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """x2paddle's ``convert_params`` renaming and transposes on numpy arrays (see module doc)."""
    params: Dict[str, np.ndarray] = {}
    batchnorm_weights = set()
    for k, v in state.items():
        if k.endswith(".running_mean"):
            params[k.replace(".running_mean", "._mean")] = v
        elif k.endswith(".running_var"):
            params[k.replace(".running_var", "._variance")] = v
            batchnorm_weights.add(k.replace(".running_var", ".weight"))
        else:
            params[k] = v
    for k, v in params.items():
        if v.ndim == 2 and k.endswith(".weight") and k not in batchnorm_weights:
            params[k] = np.ascontiguousarray(v.T)
    return params


def paddle_params_from_pth(src: Path) -> Dict[str, np.ndarray]:
    """Paddle-named parameters of the PyTorch checkpoint ``src``, read without torch."""
    return x2paddle_mapping(state_dict_from_pth(Path(src)))
