"""The detection API: ``FaceDetector(model_id).detect(image_bgr)``."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .batch_errors import ItemError, check_error_mode, source_name
from .errors import PaddleFaceError
from .image_io import as_bgr, read_image
from .paddle_runtime import import_paddle
from .postprocess import clip_boxes, postprocess_classes
from .preprocess import Prepared, prepare
from .registry import DetectionProtocol, ModelRecord, Preprocess, get_record
from .weights import UnreadableWeights, is_cache_entry, load_weights, resolve_weights

import_paddle()  # a missing paddle is reported here, in one sentence naming the packages

# A network input of this many pixels takes about 4 GB while it runs (8000x8000 took 16 GB).
MAX_INPUT_PIXELS = 4096 * 4096
ImageLike = Union[np.ndarray, str, os.PathLike]


@dataclass
class Face:
    """One detection. ``box``: (4,) x1 y1 x2 y2 in original-image pixels; ``landmarks``:
    (5, 2) x, y in pixels (left eye, right eye, nose, left and right mouth corner) or None;
    ``label``: the class, one of the record's ``labels`` ("face" for the one-class models,
    "face" or "masked_face" for ulfd-mask-*); ``track_id``: the face's id across video frames
    (``stream(track=True)``), else None."""

    box: np.ndarray
    score: float
    landmarks: Optional[np.ndarray] = None
    label: str = "face"
    track_id: Optional[int] = None

    def to_dict(self) -> Dict:
        d = {"box": [round(float(v), 3) for v in self.box], "score": round(float(self.score), 5),
             "label": self.label}
        if self.landmarks is not None:
            d["landmarks"] = [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks]
        return d


def set_device(device: Optional[str]) -> str:
    """``"cpu"``, ``"gpu"``/``"gpu:N"`` or None (GPU when Paddle was built with CUDA)."""
    paddle = import_paddle()
    if device is None:
        device = "gpu" if paddle.device.is_compiled_with_cuda() else "cpu"
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as e:
        raise PaddleFaceError(f"device {device!r} is not available here ({e})") from None
    return device


def load_network(record: ModelRecord, weights: Optional[str] = None, allow_download: bool = True):
    """(the record's network in eval mode with its weights loaded, the weights file)."""
    import_paddle()
    net = record.build()
    path = resolve_weights(record, weights, allow_download)
    try:
        load_weights(net, path, record)
    except UnreadableWeights:
        if not is_cache_entry(path):
            raise
        # a damaged converted copy (a full disk, a killed process): convert it again
        path.unlink()
        path = resolve_weights(record, weights, allow_download)
        load_weights(net, path, record)
    net.eval()
    return net, path


def make_engine(record: ModelRecord, net, weights_path, engine: str, device: str,
                input_size=None, threads=None, precision: str = "fp32", calibration=None):
    """(the engine running ``net``, why it was chosen). ``engine``: one of :data:`ENGINES`;
    ``precision`` "int8" runs ONNX Runtime on the int8 model calibrated on ``calibration``
    (photos: see :func:`paddleface.quantize.calibration_photos`)."""
    from .engine import (ENGINES, DygraphEngine, InferenceEngine, OnnxRuntimeEngine,
                         cached_onnx_model, cached_static_model, choose_engine, missing_packages)
    from .quantize import cached_int8_model, calibration_photos, check_precision
    if engine not in ENGINES:
        raise PaddleFaceError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    check_precision(record, precision, device)
    why = f"engine={engine!r} was asked for"
    if precision == "int8":
        if engine not in ("auto", "onnxruntime"):
            raise PaddleFaceError(f"precision 'int8' runs on engine 'onnxruntime', not {engine!r}")
        if weights_path is None:
            raise PaddleFaceError("precision 'int8' quantises the export of a weights file; a "
                                  "network given in memory runs in fp32")
        engine, why = "onnxruntime", "precision 'int8' runs the ONNX Runtime int8 model"
    elif engine == "auto":
        engine, why = choose_engine(record, device, weights_path is not None)
    elif engine != "dygraph" and weights_path is None:
        raise PaddleFaceError(f"engine {engine!r} exports the network from its weights file; "
                              "a network given in memory runs with engine='dygraph'")
    if engine == "dygraph":
        return DygraphEngine(net), why
    if engine == "onnxruntime":
        if device.startswith("gpu"):
            raise PaddleFaceError("engine 'onnxruntime' runs on CPU only; use device='cpu'")
        missing = missing_packages(engine)
        if missing:
            raise PaddleFaceError(f"engine 'onnxruntime' needs {', '.join(missing)}: "
                                  f"pip install {' '.join(missing)}")
        path = cached_onnx_model(net, record, weights_path, input_size)
        if precision == "int8":
            path = cached_int8_model(path, record, calibration_photos(calibration), input_size)
        try:
            return OnnxRuntimeEngine(path, threads), why
        except Exception as e:
            raise PaddleFaceError(f"{path.parent}: this cached ONNX model cannot be loaded "
                                  f"({type(e).__name__}); delete the folder and it will be "
                                  "made again") from None
    prefix = cached_static_model(net, record, weights_path, input_size)
    try:
        return InferenceEngine(prefix, device=device, threads=threads,
                               skip_passes=record.onednn_skip_passes), why
    except Exception as e:
        if device.startswith("gpu"):  # more likely the GPU set-up than the cached files
            raise
        raise PaddleFaceError(f"{prefix.parent}: this cached inference model cannot be loaded "
                              f"({type(e).__name__}); delete the folder and it will be "
                              "made again") from None


class FaceDetector:
    """A registry model ready to detect faces in BGR images.

    Args:
        model: a registry id (``paddleface models`` lists them).
        weights: a ``.pdparams`` or PyTorch ``.pth`` file; default: resolved as in
            :mod:`paddleface.weights`.
        device: ``"cpu"``, ``"gpu"`` or None (automatic).
        score_threshold: final score threshold in [0, 1] (default: the record's).
        nms_iou: NMS IoU threshold in [0, 1] (default: the record's).
        top_k: candidates kept before NMS, highest scores first (default: the record's).
        keep_top_k: detections kept after NMS (default: the record's).
        input_size: (width, height) for the fixed-size models; the letterboxed ones
            (BlazeFace) use the larger of the two as their side.
        long_side: resize rule of the any-size models: the long side in pixels, or None
            for the original size (default: the record's).
        max_input_pixels: refuse images whose network input would be larger (default
            ``MAX_INPUT_PIXELS``, about 4 GB of memory; ``$PADDLEFACE_MAX_PIXELS`` overrides).
        protocol: a whole :class:`DetectionProtocol` (evaluation uses the record's eval one).
        network: an already loaded network (e.g. from training) instead of weights.
        engine: "auto" (:func:`choose_engine`: on CPU ONNX Runtime if installed, else Paddle
            Inference with oneDNN; on GPU Paddle Inference), "onnxruntime", "inference" or
            "dygraph". ``engine_reason`` says why auto chose what it did.
        threads: CPU threads of the engine (default: all cores).
        precision: "fp32" (default) or "int8": ONNX Runtime on the static int8 quantisation of
            the export, for the models whose record offers it (``int8_cpu``; it was faster
            here), calibrated once on ``calibration`` (a folder of photos, a .txt list or a
            list of paths) and cached.
        preprocess: a :class:`Preprocess` other than the record's (evaluation uses it).

    Boxes are clipped to the image; :meth:`detect_raw` gives them unclipped (evaluation
    protocols write the raw values).

        opencv_threads: OpenCV's thread count for the whole process (``cv2.setNumThreads``),
            1 by default: resizing one frame is too small a job to split, and OpenCV's pool
            waking up beside the engine's threads cost ~0.2 ms per detect() here (ulfd-rfb-320
            on a 1600x898 photo). None leaves OpenCV as it is.
    """

    def __init__(self, model: Union[str, ModelRecord] = "rfb-lm", weights: Optional[str] = None,
                 device: Optional[str] = None, score_threshold: Optional[float] = None,
                 nms_iou: Optional[float] = None, input_size: Optional[Tuple[int, int]] = None,
                 long_side: Optional[int] = -1, protocol: Optional[DetectionProtocol] = None,
                 network: Optional["paddle.nn.Layer"] = None, engine: str = "auto",
                 threads: Optional[int] = None, preprocess: Optional[Preprocess] = None,
                 top_k: Optional[int] = None, keep_top_k: Optional[int] = None,
                 max_input_pixels: Optional[int] = None, opencv_threads: Optional[int] = 1,
                 precision: str = "fp32", calibration=None):
        self.record = get_record(model) if isinstance(model, str) else model
        check_settings(self.record, score_threshold, nms_iou, top_k, keep_top_k, input_size,
                       long_side, preprocess)
        self.max_input_pixels = max_input_pixels or max_pixels_from_env()
        check_input_size_pixels(preprocess or self.record.preprocess, input_size,
                                self.max_input_pixels)
        device = set_device(device)
        if opencv_threads is not None:
            import cv2
            cv2.setNumThreads(opencv_threads)
        if network is not None:
            self.net, weights_path = network, None
        else:
            self.net, weights_path = load_network(self.record, weights)
        self.weights_path = weights_path  # the .pdparams file loaded (None: a given network)
        self.net.eval()
        fixed = self.record.preprocess.resize == "fixed"
        self.engine, self.engine_reason = make_engine(
            self.record, self.net, weights_path, engine, device,
            tuple(input_size) if (input_size and fixed) else None, threads, precision,
            calibration)
        self.precision = precision
        proto = protocol or self.record.detection
        if score_threshold is not None:
            proto = replace(proto, final_threshold=score_threshold,
                            score_threshold=min(proto.score_threshold, score_threshold))
        if nms_iou is not None:
            proto = replace(proto, nms_iou=nms_iou)
        if top_k is not None:
            proto = replace(proto, candidates=top_k)
        if keep_top_k is not None:
            proto = replace(proto, keep=keep_top_k)
        self.protocol = proto
        self.input_size = tuple(input_size) if input_size else None
        self.preprocess = preprocess or self.record.preprocess
        self.long_side = long_side

    # ------------------------------------------------------------------ network
    def prepare(self, image: ImageLike, name: Optional[str] = None) -> Prepared:
        """Resize and normalise one image (a BGR array, or a path to read; ``name`` names
        it in errors)."""
        if isinstance(image, (str, os.PathLike)):
            name, image = str(image), read_image(image)
        image = as_bgr(image, name or "image")
        self._check_input_pixels(image, name)
        return prepare(self.preprocess, image, self.input_size, self.long_side)

    def _check_input_pixels(self, image: np.ndarray, name: Optional[str]) -> None:
        h, w = image.shape[:2]
        if self.preprocess.resize != "long_side":
            return  # fixed, letterboxed and square-padded inputs have the model's size
        side = self.preprocess.long_side if self.long_side == -1 else self.long_side
        r = 1.0 if side is None else side / max(h, w)
        check_network_pixels(name, round(w * r), round(h * r), self.max_input_pixels,
                             "a smaller long side (--long-side)")

    def forward(self, batch: np.ndarray):
        """(N, 3, H, W) float32 -> numpy (loc, conf, landms or None), each (N, P, .)."""
        return self.engine(batch)

    def _detect_prepared(self, items: Sequence[Prepared], clip: bool = True) -> List[List[Face]]:
        """Faces per prepared image; ``clip``: boxes clipped to the image (evaluation
        protocols need the raw values)."""
        h, w = items[0].tensor.shape[1:]
        batch = items[0].tensor[None] if len(items) == 1 else np.stack([p.tensor for p in items])
        loc, conf, landms = self.forward(batch)
        priors = self.record.priors(h, w)
        if priors.shape[0] != loc.shape[1]:
            raise PaddleFaceError(f"{self.record.id}: the network gave {loc.shape[1]} predictions "
                                  f"for a {w}x{h} input but the anchors number {priors.shape[0]}")
        names = self.record.labels
        out = []
        for i, p in enumerate(items):
            boxes, scores, points, labels = postprocess_classes(
                loc[i], conf[i], None if landms is None else landms[i], priors,
                self.record.priors.variances, self.protocol, p.to_pixels, p.offset,
                num_labels=len(names))
            if clip and p.image_size is not None and len(boxes):
                boxes = clip_boxes(boxes, p.image_size)
            out.append([Face(b, float(s), None if points is None else points[k], names[labels[k]])
                        for k, (b, s) in enumerate(zip(boxes, scores))])
        return out

    # ------------------------------------------------------------------ public API
    def detect(self, image: ImageLike) -> List[Face]:
        """Faces in one BGR (or grayscale / BGRA) uint8 image or image file, highest score
        first; boxes clipped to the image."""
        return self._detect_prepared([self.prepare(image)])[0]

    def detect_raw(self, image: ImageLike) -> List[Face]:
        """As :meth:`detect` but boxes as the network decodes them (may leave the image)."""
        return self._detect_prepared([self.prepare(image)], clip=False)[0]

    def detect_batch(self, images: Union[Sequence[ImageLike], str, os.PathLike],
                     batch_size: int = 8, errors: str = "raise"
                     ) -> List[Union[List[Face], ItemError]]:
        """Faces in each image (arrays or paths; one path is a list of one), in input order.
        Images whose network inputs have the same size run as one batch (so the results
        equal one-by-one detection exactly).

        ``errors="raise"`` (default): the first bad item (a missing or corrupt file, an
        array that is not an image, an image over the pixel limit) raises its
        :class:`PaddleFaceError` and nothing is returned. ``errors="skip"``: each bad item
        gives an :class:`~paddleface.batch_errors.ItemError` (``index``, ``source``,
        ``message``; falsy) in its place, and every other item its list of faces, so
        ``len(result) == len(images)`` always.
        """
        check_error_mode(errors)
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        results: List[Union[None, List[Face], ItemError]] = [None] * len(images)
        prepared: Dict[int, Prepared] = {}
        for i, im in enumerate(images):
            try:
                prepared[i] = self.prepare(im, source_name(im, i))
            except PaddleFaceError as e:
                if errors == "raise":
                    raise
                results[i] = ItemError(i, source_name(im, i), str(e))
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, p in prepared.items():
            groups.setdefault(p.tensor.shape[1:], []).append(i)
        for idxs in groups.values():
            for s in range(0, len(idxs), batch_size):
                chunk = idxs[s:s + batch_size]
                for i, faces in zip(chunk, self._detect_prepared([prepared[i] for i in chunk])):
                    results[i] = faces
        return results  # type: ignore[return-value]

    def stream(self, source, track: bool = False, smoothing: float = 0.0,
               max_frames: Optional[int] = None, duration: Optional[float] = None,
               max_reconnects: int = 5):
        """Faces in every frame of a video file or live source (``camera:N``, ``/dev/videoN``,
        ``rtsp://``, ``http(s)://``): ``for frame_index, frame, faces in det.stream(src): ...``.
        ``track``: faces carry ``track_id`` (stable across frames); ``smoothing`` in [0, 1)
        averages tracked boxes and landmarks. See :class:`paddleface.video.stream.FaceStream`."""
        from .video.stream import FaceStream
        return FaceStream(self, source, track=track, smoothing=smoothing, max_frames=max_frames,
                          duration=duration, max_reconnects=max_reconnects)

    __call__ = detect


def max_pixels_from_env() -> int:
    text = os.environ.get("PADDLEFACE_MAX_PIXELS")
    if not text:
        return MAX_INPUT_PIXELS
    try:
        value = int(text)
        if value > 0:
            return value
    except ValueError:
        pass
    raise PaddleFaceError(f"PADDLEFACE_MAX_PIXELS={text!r}: a positive number of pixels was "
                          "expected")


def check_input_size_pixels(preprocess, input_size: Optional[Tuple[int, int]],
                            max_pixels: int) -> None:
    """An ``input_size`` (W, H) whose network input exceeds ``max_pixels``, refused before
    anything is allocated: the same limit as an any-size model's long side. A fixed resize
    feeds W x H; a letterbox or square pad up to L x L, L = max(W, H)."""
    if not input_size:
        return
    w, h = (int(v) for v in input_size)
    if preprocess.resize != "fixed":
        w = h = max(w, h)
    check_network_pixels(f"input size {input_size[0]}x{input_size[1]}", w, h, max_pixels,
                         "a smaller input size (--input-size)")


def check_network_pixels(what: str, w: int, h: int, max_pixels: int, remedy: str) -> None:
    """Refuse a W x H network input over ``max_pixels`` in one sentence that starts with
    ``what`` (an image or a setting) and names ``remedy`` beside raising the limit."""
    pixels = w * h
    if pixels > max_pixels:
        gb = pixels * 250 / 1e9  # measured: an 8000x8000 input took 16 GB
        raise PaddleFaceError(
            f"{what + ': ' if what else ''}the network input would be {w}x{h} "
            f"({pixels / 1e6:.0f} M pixels, about {gb:.0f} GB of memory), over the limit of "
            f"{max_pixels / 1e6:.1f} M pixels; use {remedy} or raise the limit "
            f"(--max-pixels, $PADDLEFACE_MAX_PIXELS)")


def check_settings(record: ModelRecord, score_threshold, nms_iou, top_k, keep_top_k,
                   input_size, long_side, preprocess=None) -> None:
    """Refuse settings out of range, or that the model's resize rule would silently ignore."""
    for name, v in (("score threshold", score_threshold), ("NMS IoU", nms_iou)):
        if v is not None and not 0.0 <= v <= 1.0:
            raise PaddleFaceError(f"the {name} must be between 0 and 1, got {v}")
    for name, v in (("top-k", top_k), ("keep-top-k", keep_top_k)):
        if v is not None and v < 1:
            raise PaddleFaceError(f"{name} must be a positive number of boxes, got {v}")
    resize = (preprocess or record.preprocess).resize
    if input_size and resize == "long_side":
        raise PaddleFaceError(f"{record.id} takes images of any size and scales their long side "
                              "(long_side / --long-side); an input size does not apply")
    if long_side != -1 and resize != "long_side":
        size = (preprocess or record.preprocess).size
        raise PaddleFaceError(f"{record.id} resizes every image to {size[0]}x{size[1]} "
                              f"({resize}); set input_size (--input-size), not the long side")
