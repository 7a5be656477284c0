"""The detectors of one service worker: each model loaded once, its predictor run by one
thread at a time, per-request thresholds without touching the shared detector."""
from __future__ import annotations

import copy
import threading
from dataclasses import replace
from typing import Dict, List, Optional

from ..errors import PaddleFaceError
from ..registry import REGISTRY, DetectionProtocol, ModelRecord
from .inputs import RequestError

# PaddleHub's ULFD modules (hub serving names) and the ids with the same network and weights:
# their graphs are version-RFB (the BasicRFB branch0/1/2 + shortcut layers), 320x240 / 640x480.
HUB_MODULES = {
    "ultra_light_fast_generic_face_detector_1mb_320": "ulfd-rfb-320",
    "ultra_light_fast_generic_face_detector_1mb_640": "ulfd-rfb-640",
}


class SerializedEngine:
    """An engine that runs one batch at a time. A Paddle Inference predictor keeps its
    input, output and (here, kept) intermediate tensors inside itself, so two threads running
    it at once overwrite each other's results; preprocessing and decoding, outside this
    lock, still run concurrently."""

    def __init__(self, engine):
        self.engine = engine
        self.name = getattr(engine, "name", type(engine).__name__)
        self._lock = threading.Lock()

    def __call__(self, batch):
        with self._lock:
            return self.engine(batch)


def with_thresholds(protocol: DetectionProtocol, threshold: Optional[float],
                    nms_iou: Optional[float]) -> DetectionProtocol:
    """``protocol`` with another final score threshold and/or NMS IoU (as FaceDetector's
    ``score_threshold``/``nms_iou`` arguments do)."""
    if threshold is not None:
        protocol = replace(protocol, final_threshold=threshold,
                           score_threshold=min(protocol.score_threshold, threshold))
    if nms_iou is not None:
        protocol = replace(protocol, nms_iou=nms_iou)
    return protocol


def hub_protocol(record: ModelRecord, confs_threshold: float, iou_threshold: float
                 ) -> DetectionProtocol:
    """PaddleHub's ULFD post-processing: score > confs_threshold, the best 200 candidates,
    hard NMS at iou_threshold on normalised boxes, no limit on the faces kept."""
    return replace(record.detection, score_threshold=confs_threshold,
                   final_threshold=confs_threshold, candidates=200, nms_iou=iou_threshold,
                   keep=-1)


class DetectorPool:
    """Detectors by model id, built on first use (or at start-up) and kept for the worker's
    life. ``detector_options`` go to every :class:`FaceDetector` (device, engine, threads)."""

    def __init__(self, **detector_options):
        self.detector_options = {k: v for k, v in detector_options.items() if v is not None}
        self._detectors: Dict[str, object] = {}
        self._loading: Dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def loaded(self) -> List[str]:
        return list(self._detectors)

    def get(self, model_id: str):
        """The shared detector of ``model_id``; RequestError 404 for an id the registry does
        not know or one without published weights."""
        detector = self._detectors.get(model_id)
        if detector is not None:
            return detector
        record = REGISTRY.get(model_id)
        if record is None:
            raise RequestError(404, f"unknown model {model_id!r}; GET /models lists the ids "
                                    "this service knows.")
        if record.checkpoint is None:
            raise RequestError(404, f"model {model_id!r} has no published weights, so this "
                                    "service cannot run it.")
        with self._guard:
            lock = self._loading.setdefault(model_id, threading.Lock())
        with lock:  # concurrent first requests load the model once
            detector = self._detectors.get(model_id)
            if detector is None:
                from ..detector import FaceDetector
                try:
                    detector = FaceDetector(model_id, **self.detector_options)
                except PaddleFaceError as e:
                    raise RequestError(503, f"model {model_id!r} could not be loaded: {e}") from None
                detector.engine = SerializedEngine(detector.engine)
                self._detectors[model_id] = detector
        return detector

    def variant(self, model_id: str, protocol: Optional[DetectionProtocol] = None,
                threshold: Optional[float] = None, nms_iou: Optional[float] = None,
                long_side=-1):
        """A shallow copy of the shared detector with this request's post-processing and
        resize: the copy shares the network and its serialized engine."""
        base = self.get(model_id)
        det = copy.copy(base)
        det.protocol = with_thresholds(protocol or base.protocol, threshold, nms_iou)
        if long_side != -1:
            det.long_side = long_side
        return det
