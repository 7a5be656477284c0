"""Network definitions. Every detector maps an NCHW float image batch to
``(loc (N,P,4), conf (N,P,2), landms (N,P,10) or None)``."""
from .blazeface import BlazeFaceNet
from .retinaface import MobileNetV1, RetinaFaceNet
from .tiny_ssd import LandmarkTinyNet, ULFDNet

__all__ = ["ULFDNet", "LandmarkTinyNet", "RetinaFaceNet", "MobileNetV1", "BlazeFaceNet"]
