"""int8 models for the CPU: ONNX Runtime static quantisation of our ONNX export.

The fp32 graph (``onnx_export``) is raised to opset 13 (per-channel DequantizeLinear needs its
``axis``), shape-inferred, then quantised with ``onnxruntime.quantization.quantize_static``:
QDQ format, weights int8 per output channel, activations uint8 per tensor with ranges
calibrated (min/max) on photos the user names, each prepared by the model's own
preprocessing. ONNX Runtime then runs the convolutions as int8 kernels (VNNI where the CPU
has it). Which models are worth it is measured (``bench/latency.py --engines onnxruntime
onnxruntime-int8``) and recorded as ``ModelRecord.int8_cpu``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import PaddleFaceError
from .registry import ModelRecord

PRECISIONS = ("fp32", "int8")
#: opset of the quantised graph (per-channel QDQ needs 13)
QDQ_OPSET = 13
CalibrationSource = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def calibration_photos(source: Optional[CalibrationSource]) -> List[Path]:
    """The photos named by ``source``: a folder (searched recursively), a .txt list (one path
    per line, relative to the list) or a sequence of paths."""
    if source is None:
        raise PaddleFaceError("precision 'int8' calibrates on photos you name: give "
                              "calibration= (FaceDetector) or --calib-images DIR|LIST.txt")
    if isinstance(source, (str, os.PathLike)):
        from .export import calibration_images
        return calibration_images(str(source))
    files = [Path(p) for p in source]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise PaddleFaceError(f"{missing[0]}: this calibration photo does not exist")
    if not files:
        raise PaddleFaceError("the list of calibration photos is empty")
    return files


def calibration_inputs(record: ModelRecord, photos: Sequence[Path],
                       input_size: Optional[Tuple[int, int]] = None) -> List[np.ndarray]:
    """(1, 3, H, W) float32 network inputs made from ``photos`` by the record's preprocessing
    (resized to ``input_size`` (width, height) when the graph pins it)."""
    from dataclasses import replace

    from .image_io import read_image
    from .preprocess import prepare
    spec = record.preprocess
    if input_size is not None:
        spec = replace(spec, resize="fixed", size=tuple(input_size))
    return [prepare(spec, read_image(str(p))).tensor[None] for p in photos]


def quantize_onnx(record: ModelRecord, src: Path, dst: Path, photos: Sequence[Path],
                  input_size: Optional[Tuple[int, int]] = None) -> Path:
    """Write the int8 QDQ model of the fp32 ONNX file ``src`` to ``dst`` (atomically)."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx_export import INPUT_NAME, captured_output
    inputs = calibration_inputs(record, photos, input_size)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(inputs)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: x}

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = dst.with_name(dst.name + f".work{os.getpid()}")
    work.mkdir(exist_ok=True)
    try:
        raised = work / "opset13.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(src)), QDQ_OPSET), str(raised))
        inferred = work / "inferred.onnx"
        part = work / "int8.onnx"
        with captured_output(work / "quantize.log") as log:
            try:
                quant_pre_process(str(raised), str(inferred), skip_symbolic_shape=True)
                quantize_static(str(inferred), str(part), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8)
            except Exception as e:
                raise PaddleFaceError(f"{record.id}: int8 quantisation failed ({e}): "
                                      f"{log.read_text()[-300:]}") from None
        os.replace(part, dst)
    finally:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return dst


def photos_key(photos: Sequence[Path]) -> str:
    """A short hash of the calibration photos' contents (their order included)."""
    h = hashlib.sha256()
    for p in photos:
        h.update(hashlib.sha256(Path(p).read_bytes()).digest())
    return h.hexdigest()[:12]


def cached_int8_model(fp32_path: Path, record: ModelRecord, photos: Sequence[Path],
                      input_size: Optional[Tuple[int, int]] = None) -> Path:
    """The int8 model of the cached fp32 export ``fp32_path`` calibrated on ``photos``, made
    once under that export's folder (``int8-<photos hash>/model.onnx``)."""
    import onnxruntime
    out = Path(fp32_path).parent / f"int8-{photos_key(photos)}-{onnxruntime.__version__}"
    path = out / "model.onnx"
    if not path.is_file():
        quantize_onnx(record, fp32_path, path, photos, input_size)
    return path


def check_precision(record: ModelRecord, precision: str, device: str = "cpu") -> None:
    """Refuse a precision that does not exist, or int8 where it is not offered."""
    if precision not in PRECISIONS:
        raise PaddleFaceError(f"precision must be one of {', '.join(PRECISIONS)}, not "
                              f"{precision!r}")
    if precision == "int8":
        if device.startswith("gpu"):
            raise PaddleFaceError("precision 'int8' is a CPU path (ONNX Runtime); use "
                                  "device='cpu'")
        if not record.int8_cpu:
            raise PaddleFaceError(f"{record.id}: int8 is not offered for this model: it was not "
                                  "faster than fp32 here, or lost too much AP "
                                  "(docs/cpu-speed.md)")
