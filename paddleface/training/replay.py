"""Step-by-step replay of an upstream PyTorch trainer through this project's trainer code.

The reference (``shared/reference/train/replay_*``) holds the upstream network's initial
weights (``init.pth``), 96 already-resized images with their faces, the image indices of
every iteration, the upstream per-iteration losses, and the weights after the first
iteration. The replay imports ``init.pth`` with the x2paddle import, feeds the same images
in the same order through :mod:`paddleface.training.step` (the functions tools/train.py
runs) and returns what is needed to compare: total loss per iteration and the relative
difference of every tensor after one step.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from ..preprocess import normalize
from ..registry import ModelRecord, get_record
from .step import TargetEncoder, make_optimizer, train_step


@dataclass(frozen=True)
class ReplayFamily:
    """How one reference set maps onto a registry record."""

    folder: str  # under reference/train/
    model: str  # registry id
    channel_order: str  # of the stored uint8 images
    upstream_total: Callable[[Dict], List[float]]  # trace.json -> total loss per iteration


def _ulfd_total(trace: Dict) -> List[float]:
    return [a + b for a, b in zip(trace["regression_loss"], trace["classification_loss"])]


def _lm_total(trace: Dict) -> List[float]:
    return [2 * l + c + m for l, c, m in zip(trace["loss_l"], trace["loss_c"], trace["loss_landm"])]


FAMILIES = {
    "ulfd": ReplayFamily("replay_ulfd_rfb320", "ulfd-rfb-320", "RGB", _ulfd_total),
    "lm": ReplayFamily("replay_rfb_lm", "rfb-lm", "BGR", _lm_total),
}


def drift_of(trace: Dict, family: ReplayFamily, key: str) -> Optional[float]:
    """The torch-vs-torch drift recorded in trace.json (None if absent)."""
    return trace.get("drift_between_torch_runs", {}).get(key)


def torch_2_threads_total(trace: Dict, family: ReplayFamily) -> Optional[List[float]]:
    second = trace.get("torch_2_threads")
    return family.upstream_total(second) if second else None


@dataclass
class ReplayResult:
    family: str
    total_loss: List[float]  # ours, one per iteration
    upstream_total_loss: List[float]
    after_1_step_max_rel: float
    after_1_step_worst: str  # the tensor with the largest relative difference
    per_tensor_rel: Dict[str, float] = field(default_factory=dict)
    state_after_1_step: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def tensor_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref| over one tensor (0 when both are all zeros)."""
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = float(np.abs(ours.astype(np.float64) - ref).max()) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def moving_average(values: List[float], window: int = 10) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if len(v) < window:
        return v.copy()
    return np.convolve(v, np.ones(window) / window, mode="valid")


class Replay:
    """The reference set of ``family`` ("ulfd" or "lm") under ``shared``."""

    def __init__(self, shared: Path, family: str):
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
        self.family = FAMILIES[family]
        self.name = family
        self.dir = Path(shared) / "reference" / "train" / self.family.folder
        self.trace = json.loads((self.dir / "trace.json").read_text())
        self.record: ModelRecord = get_record(self.family.model)
        z = np.load(self.dir / "inputs.npz")
        self.images = z["images"]  # (96, H, W, 3) uint8
        self.order = z["order"]  # (iterations, batch)
        counts = z["counts"]
        flat = z["boxes_flat"] if "boxes_flat" in z.files else z["targets_flat"]
        self.faces = np.split(flat, np.cumsum(counts)[:-1])
        h, w = self.images.shape[1:3]
        self.size = (w, h)
        self.encoder = TargetEncoder(self.record, self.size)
        self._targets: Dict[int, tuple] = {}

    @property
    def upstream_total(self) -> List[float]:
        return self.family.upstream_total(self.trace)

    def targets(self, index: int):
        """Per-prior targets of image ``index`` through the trainer's encoder."""
        if index not in self._targets:
            f = self.faces[index]
            if self.record.landmarks:  # rows: x1 y1 x2 y2, 5 (x, y), label (1 or -1)
                t = self.encoder(f[:, :4], f[:, 14] > 0, f[:, 4:14].reshape(-1, 5, 2))
            else:
                t = self.encoder(f[:, :4], np.zeros(len(f), bool))
            self._targets[index] = t
        return self._targets[index]

    def batch(self, iteration: int):
        import paddle
        idx = self.order[iteration]
        imgs = self.images[idx]
        if self.family.channel_order == "RGB":  # normalize() takes BGR like every reader here
            imgs = imgs[..., ::-1]
        x = np.stack([normalize(self.record.preprocess, im) for im in imgs])
        loc_t, conf_t, landm_t = (np.stack(v) for v in zip(*(self.targets(int(i)) for i in idx)))
        return [paddle.to_tensor(a) for a in (x, loc_t, conf_t, landm_t)]

    def initial_network(self):
        """The record's network with ``init.pth`` through the x2paddle import, in train mode."""
        from ..weights import load_weights, resolve_weights
        net = self.record.build()
        load_weights(net, resolve_weights(self.record, str(self.dir / "init.pth")), self.record)
        net.train()
        return net

    def reference_after_1_step(self) -> Dict[str, np.ndarray]:
        from ..weights import convert_with_x2paddle, read_torch_state_dict
        return convert_with_x2paddle(read_torch_state_dict(self.dir / "after_1_step.pth"))

    def run(self, iterations: Optional[int] = None, progress: Optional[Callable] = None,
            input_noise: float = 0.0, noise_seed: int = 12345) -> ReplayResult:
        """Train ``iterations`` (default: all) steps from init.pth; losses and step-1 check.

        ``input_noise``: multiply every input pixel by (1 + input_noise * N(0, 1)) (fixed
        seed), a control run that shows how far float32 rounding alone moves the result."""
        import paddle
        n = len(self.order) if iterations is None else min(iterations, len(self.order))
        noise_rng = np.random.default_rng(noise_seed)
        net = self.initial_network()
        optimizer = make_optimizer(net, self.record, self.record.train.lr)
        losses: List[float] = []
        per_tensor: Dict[str, float] = {}
        ours: Dict[str, np.ndarray] = {}
        for it in range(n):
            batch = self.batch(it)
            if input_noise:
                x = batch[0].numpy()
                batch[0] = paddle.to_tensor(
                    x * (1 + input_noise * noise_rng.standard_normal(x.shape)).astype(np.float32))
            value, _ = train_step(net, self.record, optimizer, batch)
            losses.append(value)
            if it == 0:
                ref = self.reference_after_1_step()
                ours = {k: v.numpy() for k, v in net.state_dict().items()}
                missing = sorted(set(ref) ^ set(ours))
                if missing:
                    raise ValueError(f"after_1_step.pth and the network differ in keys: {missing[:5]}")
                per_tensor = {k: tensor_rel(ours[k], ref[k]) for k in ref}
            if progress:
                progress(it, value)
        # tensors that are zero in exact arithmetic (upstream values below 1e-8: a BatchNorm
        # bias followed by another BatchNorm) carry only rounding; the maximum leaves them out
        ref_scale = {k: float(np.abs(v).max()) for k, v in ref.items()} if per_tensor else {}
        counted = {k: v for k, v in per_tensor.items() if ref_scale.get(k, 1.0) > 1e-8}
        worst = max(counted, key=counted.get) if counted else ""
        return ReplayResult(self.name, losses, self.upstream_total[:n],
                            per_tensor.get(worst, float("nan")), worst, per_tensor, ours)
