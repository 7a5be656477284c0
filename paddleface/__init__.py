"""PaddleFace: ultra-light face detectors (ULFD, Face-Detector-1MB, RetinaFace) in PaddlePaddle."""
from .batch_errors import ItemError
from .errors import PaddleFaceError
from .registry import REGISTRY, ModelRecord, get_record, list_models

__version__ = "0.1.0"


def __getattr__(name):
    # FaceDetector pulls in paddle and cv2; import it lazily so `paddleface models` stays fast.
    if name in ("FaceDetector", "Face"):
        from . import detector
        return getattr(detector, name)
    raise AttributeError(name)


__all__ = ["FaceDetector", "Face", "ItemError", "PaddleFaceError", "REGISTRY", "ModelRecord", "get_record",
           "list_models"]
