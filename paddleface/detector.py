"""The detection API: ``FaceDetector(model_id).detect(image_bgr)``."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import PaddleFaceError
from .image_io import as_bgr
from .postprocess import postprocess
from .preprocess import Prepared, prepare
from .registry import DetectionProtocol, ModelRecord, get_record
from .weights import load_weights, resolve_weights


@dataclass
class Face:
    """One detection. ``box``: (4,) x1 y1 x2 y2 in original-image pixels; ``landmarks``:
    (5, 2) x, y in pixels (left eye, right eye, nose, left and right mouth corner) or None."""

    box: np.ndarray
    score: float
    landmarks: Optional[np.ndarray] = None

    def to_dict(self) -> Dict:
        d = {"box": [round(float(v), 3) for v in self.box], "score": round(float(self.score), 5)}
        if self.landmarks is not None:
            d["landmarks"] = [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks]
        return d


def set_device(device: Optional[str]) -> str:
    """``"cpu"``, ``"gpu"``/``"gpu:N"`` or None (GPU when Paddle was built with CUDA)."""
    import paddle
    if device is None:
        device = "gpu" if paddle.device.is_compiled_with_cuda() else "cpu"
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as e:
        raise PaddleFaceError(f"device {device!r} is not available here ({e})") from None
    return device


def load_network(record: ModelRecord, weights: Optional[str] = None, allow_download: bool = True):
    """(the record's network in eval mode with its weights loaded, the weights file)."""
    net = record.build()
    path = resolve_weights(record, weights, allow_download)
    load_weights(net, path, record)
    net.eval()
    return net, path


def make_engine(record: ModelRecord, net, weights_path, engine: str, device: str,
                input_size=None, threads=None):
    """``engine``: "dygraph", "inference" or "auto" (Paddle Inference, with oneDNN where the
    record allows it, when weights come from a file; dygraph otherwise)."""
    from .engine import DygraphEngine, InferenceEngine, cached_static_model
    if engine == "auto":
        engine = "inference" if weights_path is not None else "dygraph"
    if engine == "dygraph":
        return DygraphEngine(net)
    if engine != "inference":
        raise PaddleFaceError(f"engine must be auto, dygraph or inference, not {engine!r}")
    prefix = cached_static_model(net, record, weights_path, input_size)
    return InferenceEngine(prefix, device=device, threads=threads,
                           skip_passes=record.onednn_skip_passes)


class FaceDetector:
    """A registry model ready to detect faces in BGR images.

    Args:
        model: a registry id (``paddleface models`` lists them).
        weights: a ``.pdparams`` or PyTorch ``.pth`` file; default: resolved as in
            :mod:`paddleface.weights`.
        device: ``"cpu"``, ``"gpu"`` or None (automatic).
        score_threshold: final score threshold (default: the record's).
        nms_iou: NMS IoU threshold (default: the record's).
        input_size: (width, height) for the fixed-size models.
        long_side: resize rule of the any-size models: the long side in pixels, or None
            for the original size (default: the record's).
        protocol: a whole :class:`DetectionProtocol` (evaluation uses the record's eval one).
        network: an already loaded network (e.g. from training) instead of weights.
        engine: "auto" (Paddle Inference for weights from a file), "dygraph" or "inference".
        threads: CPU threads of the inference engine (default: all cores).
        preprocess: a :class:`Preprocess` other than the record's (evaluation uses it).
    """

    def __init__(self, model: Union[str, ModelRecord] = "rfb-lm", weights: Optional[str] = None,
                 device: Optional[str] = None, score_threshold: Optional[float] = None,
                 nms_iou: Optional[float] = None, input_size: Optional[Tuple[int, int]] = None,
                 long_side: Optional[int] = -1, protocol: Optional[DetectionProtocol] = None,
                 network=None, engine: str = "auto", threads: Optional[int] = None,
                 preprocess=None):
        self.record = get_record(model) if isinstance(model, str) else model
        device = set_device(device)
        if network is not None:
            self.net, weights_path = network, None
        else:
            self.net, weights_path = load_network(self.record, weights)
        self.net.eval()
        fixed = self.record.preprocess.resize == "fixed"
        self.engine = make_engine(self.record, self.net, weights_path, engine, device,
                                  tuple(input_size) if (input_size and fixed) else None, threads)
        proto = protocol or self.record.detection
        if score_threshold is not None:
            proto = replace(proto, final_threshold=score_threshold,
                            score_threshold=min(proto.score_threshold, score_threshold))
        if nms_iou is not None:
            proto = replace(proto, nms_iou=nms_iou)
        self.protocol = proto
        self.input_size = tuple(input_size) if input_size else None
        self.preprocess = preprocess or self.record.preprocess
        self.long_side = long_side

    # ------------------------------------------------------------------ network
    def prepare(self, image: np.ndarray) -> Prepared:
        return prepare(self.preprocess, as_bgr(image), self.input_size, self.long_side)

    def forward(self, batch: np.ndarray):
        """(N, 3, H, W) float32 -> numpy (loc, conf, landms or None), each (N, P, .)."""
        return self.engine(batch)

    def _detect_prepared(self, items: Sequence[Prepared]) -> List[List[Face]]:
        h, w = items[0].tensor.shape[1:]
        batch = items[0].tensor[None] if len(items) == 1 else np.stack([p.tensor for p in items])
        loc, conf, landms = self.forward(batch)
        priors = self.record.priors(h, w)
        if priors.shape[0] != loc.shape[1]:
            raise PaddleFaceError(f"{self.record.id}: the network gave {loc.shape[1]} predictions "
                                  f"for a {w}x{h} input but the anchors number {priors.shape[0]}")
        out = []
        for i, p in enumerate(items):
            boxes, scores, points = postprocess(
                loc[i], conf[i], None if landms is None else landms[i], priors,
                self.record.priors.variances, self.protocol, p.to_pixels, p.offset)
            out.append([Face(b, float(s), None if points is None else points[k])
                        for k, (b, s) in enumerate(zip(boxes, scores))])
        return out

    # ------------------------------------------------------------------ public API
    def detect(self, image: np.ndarray) -> List[Face]:
        """Faces in one BGR (or grayscale / BGRA) uint8 image, highest score first."""
        return self._detect_prepared([self.prepare(image)])[0]

    def detect_batch(self, images: Sequence[np.ndarray], batch_size: int = 8) -> List[List[Face]]:
        """Faces in each image. Images whose network inputs have the same size run as one
        batch (so the results equal one-by-one detection exactly)."""
        prepared = [self.prepare(im) for im in images]
        results: List[Optional[List[Face]]] = [None] * len(prepared)
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, p in enumerate(prepared):
            groups.setdefault(p.tensor.shape[1:], []).append(i)
        for idxs in groups.values():
            for s in range(0, len(idxs), batch_size):
                chunk = idxs[s:s + batch_size]
                for i, faces in zip(chunk, self._detect_prepared([prepared[i] for i in chunk])):
                    results[i] = faces
        return results  # type: ignore[return-value]

    __call__ = detect
