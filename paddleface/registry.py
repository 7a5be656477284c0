"""The model zoo: one :class:`ModelRecord` per model id.

Everything model-specific lives here (architecture, anchors, preprocessing, thresholds,
checkpoint, evaluation protocol, numbers measured on it); the detector, the command line,
the evaluator, the trainer and the exporter read the record and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Optional, Tuple

from .errors import PaddleFaceError
from .priors import PriorBoxes


@dataclass(frozen=True)
class Preprocess:
    """How an image (BGR uint8, H x W x 3) becomes the network input.

    ``resize``: ``"fixed"`` resizes to ``size`` = (width, height) ignoring the aspect ratio
    (ULFD); ``"long_side"`` scales both sides by ``long_side / max(h, w)`` (the landmark
    models; ``long_side`` None keeps the original size); ``"letterbox"`` scales the long side
    to ``size[0]`` and pads the short one to a multiple of ``stride`` with the mean colour
    (BlazeFace's demo); ``"square_pad"`` puts the image at the top-left of a mean-coloured
    square and resizes that to ``size`` (BlazeFace's WIDER evaluation). ``resize_dtype`` is the dtype the
    upstream code resizes in (ULFD resizes the uint8 image, the landmark models a float32
    copy; the results differ by rounding). Then ``(x - mean) / std`` per channel, in
    ``channel_order``.
    """

    channel_order: str  # "RGB" or "BGR"
    mean: Tuple[float, float, float]
    std: float
    resize: str  # "fixed", "long_side", "letterbox" or "square_pad"
    size: Optional[Tuple[int, int]] = None  # (width, height): "fixed", "letterbox", "square_pad"
    long_side: Optional[int] = None  # for "long_side"; None = original size
    resize_dtype: str = "uint8"
    stride: int = 16  # "letterbox": the padded sides are multiples of this


@dataclass(frozen=True)
class DetectionProtocol:
    """Post-processing: threshold, top-k, greedy NMS, keep-k, final threshold.

    ``nms_space``: ``"normalized"`` runs NMS on boxes normalised by the input size (ULFD,
    IoU with ``nms_eps`` in the denominator); ``"pixels"`` on boxes in original-image pixels
    with areas ``(x2 - x1 + nms_offset) * (y2 - y1 + nms_offset)`` (Pytorch_Retinaface).
    """

    score_threshold: float
    candidates: int
    nms_iou: float
    keep: int
    nms_space: str = "pixels"
    nms_offset: float = 1.0
    nms_eps: float = 0.0
    final_threshold: float = 0.0
    clamp_min: Optional[float] = None  # clamp decoded normalised boxes to [clamp_min, 1]


@dataclass(frozen=True)
class EvalProtocol:
    """How WIDER FACE predictions are made and written for this model.

    ``long_sides``: the resize settings the evaluation accepts (None in the tuple =
    "origin", no resize); an empty tuple means the model's fixed size only.
    ``box_format``: ``"floor_ceil"`` writes ``floor(x1) floor(y1) ceil(w) ceil(h)`` with the
    score as ``%.3f`` capped at 1 (ULFD's eval script); ``"int_plus1"`` writes ``int(x1)
    int(y1) int(x2)-int(x1)+1 int(y2)-int(y1)+1`` with the full score (Pytorch_Retinaface).
    """

    detection: DetectionProtocol
    box_format: str
    long_sides: Tuple[Optional[int], ...] = ()
    default_long_side: Optional[int] = None
    preprocess: Optional[Preprocess] = None  # when evaluation resizes unlike detection


@dataclass(frozen=True)
class Checkpoint:
    """The upstream PyTorch checkpoint: path inside a ``PADDLEFACE_WEIGHTS`` directory
    (laid out like ../shared/weights), download URL, sha256 and licence."""

    path: str
    url: str
    sha256: str
    license: str
    upstream: str


@dataclass(frozen=True)
class TrainRecipe:
    """The upstream training recipe (defaults of tools/train.py for this id).

    Matching: a prior is a face when its best IoU >= ``match_iou``; each face is forced onto
    its best prior (only when that IoU >= ``force_min_iou``, if set); ``iou_eps`` is added to
    the IoU denominator. Loss: ``loc_weight`` * boxes + classes [+ landmarks], hard negatives
    ``neg_pos_ratio``:1.
    """

    epochs: int
    milestones: Tuple[int, ...]
    lr: float
    batch_size: int
    input_size: Tuple[int, int]  # (width, height) of the training crops
    augmentation: str  # "ulfd", "ssd" or "retinaface" (paddleface.training.augment)
    match_iou: float = 0.35
    force_min_iou: Optional[float] = None
    iou_eps: float = 0.0
    neg_pos_ratio: int = 3
    loc_weight: float = 1.0
    conf_weight: float = 1.0
    landm_weight: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # how the upstream trainer builds the network from scratch (paddleface.training.init)
    init: str = "torch_default"
    # "epoch": MultiStepLR stepped once per epoch (ULFD's train.py); "iteration": the step
    # index rises at iteration milestone * ceil(images / batch) (Face-Detector-1MB,
    # Pytorch_Retinaface and their descendants)
    lr_step_unit: str = "epoch"
    # added to every VOC coordinate when read (ULFD's VOCDataset subtracts 1: "Matlab indices")
    voc_box_offset: float = 0.0
    # --base-net / --pretrained-ssd (ULFD's init_from_base_net / init_from_pretrained_ssd):
    # the parameter prefix of the backbone and of the prediction heads
    base_prefix: Optional[str] = None
    head_prefixes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelRecord:
    """Everything the tools need to know about one model id."""

    id: str
    description: str
    builder: Callable[[], "object"]
    priors: PriorBoxes
    preprocess: Preprocess
    detection: DetectionProtocol
    evaluation: EvalProtocol
    checkpoint: Optional[Checkpoint]  # None: no trained weights are published (train them)
    landmarks: bool
    params: int  # measured: sum of parameter sizes (BN statistics excluded)
    flops: int  # measured multiply-accumulates at ``flops_input``, counted by paddleface.profile
    flops_input: Tuple[int, int]  # (width, height)
    published_ap: Dict[str, Dict[str, float]] = field(default_factory=dict)  # setting -> AP
    train: Optional[TrainRecipe] = None
    # the ImageNet backbone checkpoint and the prefix of its keys inside this network
    backbone: Optional[Checkpoint] = None
    backbone_prefix: str = ""
    # Paddle Inference oneDNN passes to skip for this graph (on top of engine.ONEDNN_BROKEN_PASSES):
    # Paddle 3.3.1's conv + LeakyReLU fusion crashes (SIGSEGV) on the RetinaFace graph.
    onednn_skip_passes: Tuple[str, ...] = ()
    # CPU engines for engine="auto", fastest first as bench/latency.py measured them here
    # (ulfd-rfb-320, ulfd-slim-320, rfb-lm; the other ids keep that order until a measurement
    # says otherwise); auto takes the first one installed ("inference": with oneDNN).
    cpu_engines: Tuple[str, ...] = ("onnxruntime", "inference")
    # precision="int8" (ONNX Runtime static quantisation) is offered: it was faster than fp32
    # here and cost little AP (bench/latency.py, docs/cpu-speed.md)
    int8_cpu: bool = False
    # names of the non-background classes: conf column i + 1 is labels[i]. Detection runs
    # the threshold, top-k, NMS and keep-k of ``detection`` within each class, then merges
    # the classes by score (the upstream Predictor.predict of ULFD's masked_face models).
    labels: Tuple[str, ...] = ("face",)
    # why ``export --format lite`` refuses this model (None: Lite exports it)
    lite_refusal: Optional[str] = None

    def build(self):
        """A freshly initialised network (train mode)."""
        return self.builder()

    def default_input_size(self, width: int, height: int) -> Tuple[int, int]:
        """The (width, height) the network sees for an image of ``width`` x ``height``."""
        p = self.preprocess
        if p.resize != "long_side":
            return p.size
        if p.long_side is None:
            return width, height
        r = p.long_side / max(width, height)
        return max(1, int(round(width * r))), max(1, int(round(height * r)))


# Builders import the networks (and so paddle) only when called: listing models stays fast.
def _ulfd(rfb: bool, num_classes: int = 2):
    def build():
        from .models import ULFDNet
        return ULFDNet(rfb=rfb, num_classes=num_classes)
    return build


def _tiny_lm(rfb: bool):
    def build():
        from .models import LandmarkTinyNet
        return LandmarkTinyNet(rfb=rfb)
    return build


def _retinaface(slope: float):
    def build():
        from .models import RetinaFaceNet
        return RetinaFaceNet(slope=slope)
    return build


def _retinaface_r50():
    def build():
        from .models import RetinaFaceNet
        # cfg_re50: out_channel 256, so net.py's FPN and SSH use leaky 0 (plain ReLU)
        return RetinaFaceNet(out_channels=256, slope=None, backbone="resnet50")
    return build


_ULFD_URL = ("https://raw.githubusercontent.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"
             "/master/models/pretrained/")
_FD1MB_URL = "https://raw.githubusercontent.com/biubug6/Face-Detector-1MB-with-landmark/master/weights/"
_RETINA_URL = "https://raw.githubusercontent.com/thflgg133/RetinaFace-optimization/main/weights/"

_ULFD_PRIORS = PriorBoxes(((10, 16, 24), (32, 48), (64, 96), (128, 192, 256)), (8, 16, 32, 64),
                          clip=True, centers="grid")
_TINY_LM_PRIORS = PriorBoxes(((10, 16, 24), (32, 48), (64, 96), (128, 192, 256)),
                             (8, 16, 32, 64))
_MNET_LM_PRIORS = PriorBoxes(((10, 20), (32, 64), (128, 256)), (8, 16, 32))
_RETINA_PRIORS = PriorBoxes(((16, 32), (64, 128), (256, 512)), (8, 16, 32))

# run_imgs_detect.py: score > 0.6, candidate_size 1500, top_k 750, IoU 0.3 on normalised boxes.
_ULFD_DETECT = DetectionProtocol(0.6, 1500, 0.3, 750, nms_space="normalized", nms_offset=0.0,
                                 nms_eps=1e-5, final_threshold=0.6)
# ULFD's WIDER evaluation: score > 0.1, 800 candidates, stop at 400 kept.
_ULFD_EVAL = EvalProtocol(replace(_ULFD_DETECT, score_threshold=0.1, candidates=800, keep=400,
                                  final_threshold=0.0), box_format="floor_ceil")
# detect.py / test_widerface.py of the landmark repositories.
_LM_DETECT = DetectionProtocol(0.02, 5000, 0.4, 750, final_threshold=0.6)
_LM_EVAL = EvalProtocol(replace(_LM_DETECT, final_threshold=0.0), box_format="int_plus1",
                        long_sides=(640, 320, None), default_long_side=640)


def _ulfd_pre(w: int, h: int) -> Preprocess:
    return Preprocess("RGB", (127.0, 127.0, 127.0), 128.0, "fixed", size=(w, h))


_LM_PRE = Preprocess("BGR", (104.0, 117.0, 123.0), 1.0, "long_side", long_side=640,
                     resize_dtype="float32")


def _ulfd_record(name: str, rfb: bool, w: int, h: int, params: int, flops: int,
                 sha: str, ap: Dict, int8_cpu: bool = False) -> ModelRecord:
    # train.py of ULFD: 200 epochs, multi-step at 95 and 150, lr 1e-2, batch 24
    recipe = TrainRecipe(200, (95, 150), 1e-2, 24, (w, h), "ulfd", match_iou=0.35,
                         iou_eps=1e-5, neg_pos_ratio=3, loc_weight=1.0, voc_box_offset=-1.0,
                         base_prefix="base_net",
                         head_prefixes=("classification_headers", "regression_headers"))
    fname = f"version-{'RFB' if rfb else 'slim'}-{w}.pth"
    return ModelRecord(
        id=name, description=f"ULFD version-{'RFB' if rfb else 'slim'}, {w}x{h}, boxes only",
        builder=_ulfd(rfb), priors=_ULFD_PRIORS, preprocess=_ulfd_pre(w, h),
        detection=_ULFD_DETECT, evaluation=_ULFD_EVAL,
        checkpoint=Checkpoint(f"ulfd/{fname}", _ULFD_URL + fname, sha, "MIT",
                              "Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"),
        landmarks=False, params=params, flops=flops, flops_input=(w, h), published_ap=ap,
        train=recipe, int8_cpu=int8_cpu)


_MASK_URL = ("https://raw.githubusercontent.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"
             "/master/masked_face/pretrained/")
_MASK_LABELS = ("face", "masked_face")  # masked_face/voc-model-labels.txt after BACKGROUND
# masked_face/detect_imgs.py: Predictor.predict(image, candidate_size / 2, 0.3) with
# candidate_size 1200: per class, score > 0.3, the best 1200 into hard NMS at IoU 0.3 on
# normalised boxes, at most 600 kept.
_MASK_DETECT = DetectionProtocol(0.3, 1200, 0.3, 600, nms_space="normalized", nms_offset=0.0,
                                 nms_eps=1e-5, final_threshold=0.3)


def _ulfd_mask_record(w: int, h: int, params: int, flops: int, sha: str) -> ModelRecord:
    """ULFD's masked_face/ RFB models: WIDER FACE + MAFA, classes face and masked_face."""
    fname = f"RFB-{w}-masked_face-v2.pth"
    base = _ulfd_record(f"ulfd-mask-{w}", True, w, h, params, flops, sha, {})
    return replace(
        base, description=f"ULFD RFB {w}x{h}, two classes: face and masked_face",
        builder=_ulfd(True, num_classes=1 + len(_MASK_LABELS)), labels=_MASK_LABELS,
        detection=_MASK_DETECT, checkpoint=replace(base.checkpoint, path=f"ulfd/{fname}",
                                                   url=_MASK_URL + fname))


# Face-Detector-1MB's data/config.py: 250 epochs, decay at 190 and 220, lr 1e-3, batch 32,
# image size 300; Pytorch_Retinaface's cfg_mnet is the same at image size 640.
_LM_RECIPE = TrainRecipe(250, (190, 220), 1e-3, 32, (300, 300), "retinaface", match_iou=0.35,
                         force_min_iou=0.2, neg_pos_ratio=7, loc_weight=2.0,
                         lr_step_unit="iteration")
_MNET_BACKBONE = Checkpoint("retinaface/mobilenetV1X0.25_pretrain.tar",
                            _RETINA_URL + "mobilenetV1X0.25_pretrain.tar",
                            "75c37f8d438b7c6aed2e6b310fd0540c40dabf0dd820770bd7082668dfd7c1c1",
                            "MIT", "biubug6/Pytorch_Retinaface")


# Pytorch_Retinaface's Resnet50_Final.pth (105 MB, keys prefixed "module."), published on
# Google Drive / Baidu; facexlib re-publishes the same file as a release asset.
_R50_CHECKPOINT = Checkpoint(
    "retinaface/Resnet50_Final.pth",
    "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
    "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d", "MIT",
    "biubug6/Pytorch_Retinaface")
# cfg_re50 (data/config.py): batch 24, 100 epochs, decay at 70 and 90, image size 840,
# loc weight 2; train.py as for cfg_mnet (lr 1e-3, SGD 0.9, wd 5e-4, per-iteration steps).
# The backbone is torchvision's resnet50 (its own init); the rest keeps torch's defaults.
_R50_RECIPE = replace(_LM_RECIPE, epochs=100, milestones=(70, 90), batch_size=24,
                      input_size=(840, 840), init="torchvision_resnet")
# cfg_re50 'pretrain': torchvision.models.resnet50(pretrained=True), the ImageNet weights
# torchvision now serves as resnet50-0676ba61.pth (the name carries the sha256's start)
_R50_BACKBONE = Checkpoint("torchvision/resnet50-0676ba61.pth",
                           "https://download.pytorch.org/models/resnet50-0676ba61.pth",
                           "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
                           "BSD-3-Clause", "pytorch/vision")
_R50_LITE_REFUSAL = ("retinaface-r50 is not a mobile model (27.4 M parameters, a 105 MB "
                     "fp32 .nb, 33 GMACs at 640x480); export it with --format inference or "
                     "onnx, or use retinaface-mnet for Paddle Lite")


def _lm_record(name: str, description: str, builder, priors: PriorBoxes, ckpt: Checkpoint,
               params: int, flops: int, ap: Dict, onednn_skip_passes: Tuple[str, ...] = (),
               recipe: TrainRecipe = _LM_RECIPE, backbone: Optional[Checkpoint] = None,
               lite_refusal: Optional[str] = None, int8_cpu: bool = False) -> ModelRecord:
    return ModelRecord(onednn_skip_passes=onednn_skip_passes, train=recipe, backbone=backbone,
                       lite_refusal=lite_refusal, int8_cpu=int8_cpu,
                       backbone_prefix="body." if backbone else "",
        id=name, description=description, builder=builder, priors=priors, preprocess=_LM_PRE,
        detection=_LM_DETECT, evaluation=_LM_EVAL, checkpoint=ckpt, landmarks=True,
        params=params, flops=flops, flops_input=(640, 480), published_ap=ap)


def _fd1mb(fname: str, sha: str) -> Checkpoint:
    return Checkpoint(f"fd1mb/{fname}", _FD1MB_URL + fname, sha, "MIT",
                      "biubug6/Face-Detector-1MB-with-landmark")


# Published WIDER FACE val AP (easy, medium, hard) from the upstream READMEs, per setting.
_PUBLISHED = {
    "ulfd-slim-320": {"320x240": (0.770, 0.671, 0.395)},
    "ulfd-rfb-320": {"320x240": (0.787, 0.698, 0.438)},
    "ulfd-slim-640": {"640x480": (0.853, 0.819, 0.539)},
    "ulfd-rfb-640": {"640x480": (0.855, 0.822, 0.579)},
    "slim-lm": {"640": (0.850, 0.808, 0.595), "320": (0.795, 0.683, 0.345)},
    "rfb-lm": {"640": (0.865, 0.828, 0.622), "320": (0.814, 0.710, 0.363)},
    "mnet-lm": {"640": (0.873, 0.836, 0.638), "320": (0.811, 0.697, 0.376)},
    "retinaface-mnet": {"origin": (0.9070, 0.8816, 0.7378)},
    # Pytorch_Retinaface README, ResNet-50: original image scale, and "same parameter with
    # Mxnet" (test_widerface.py's multi-size setting, not a setting of `paddleface eval`)
    "retinaface-r50": {"origin": (0.9548, 0.9404, 0.8443),
                       "mxnet-setting": (0.9482, 0.9384, 0.8960)},
}


def _published(name: str) -> Dict[str, Dict[str, float]]:
    return {setting: dict(zip(("easy", "medium", "hard"), ap))
            for setting, ap in _PUBLISHED[name].items()}


def _blazeface():
    def build():
        from .models import BlazeFaceNet
        return BlazeFaceNet()
    return build


_BLAZE_URL = "https://raw.githubusercontent.com/zineos/blazeface/main/weights/pretrain/"
_BLAZE_PRIORS = PriorBoxes(((8, 11), (14, 19, 26, 38, 64, 149)), (8, 16))
# tools/test.py (the demo): confidence 0.3, top 2000, NMS 0.1, keep 1000, shown above 0.3
_BLAZE_DETECT = DetectionProtocol(0.3, 2000, 0.1, 1000, final_threshold=0.3)
# config.py cfg_blaze: batch 256, 200 epochs, decay at 130/160/175/185, loss weights 1/6/0.1
_BLAZE_RECIPE = TrainRecipe(200, (130, 160, 175, 185), 1e-3, 256, (320, 320), "retinaface",
                            match_iou=0.35, force_min_iou=0.2, neg_pos_ratio=7, loc_weight=1.0,
                            conf_weight=6.0, landm_weight=0.1, lr_step_unit="iteration")


def _blaze_record(side: int, sha: str, params: int, flops: int) -> ModelRecord:
    fname = f"Blaze_Final_{side}.pth"
    pre = Preprocess("BGR", (104.0, 117.0, 123.0), 1.0, "letterbox", size=(side, side),
                     resize_dtype="float32", stride=16)
    # evaluator/test_widerface.py: pad to a square, resize, score > 0.01, every survivor into
    # NMS 0.5 (no top-k, no keep limit), boxes clamped to [1e-5, 1], widths without +1
    ev = EvalProtocol(DetectionProtocol(0.01, -1, 0.5, -1, clamp_min=1e-5), box_format="int",
                      preprocess=replace(pre, resize="square_pad"))
    return ModelRecord(
        id=f"blazeface-{side}", description=f"BlazeFace with 5 landmarks, letterbox {side}",
        builder=_blazeface(), priors=_BLAZE_PRIORS, preprocess=pre, detection=_BLAZE_DETECT,
        evaluation=ev, checkpoint=Checkpoint(f"blazeface/{fname}", _BLAZE_URL + fname, sha,
                                             "none stated",
                                             "zineos/blazeface"),
        landmarks=True, params=params, flops=flops, flops_input=(side, side),
        published_ap={f"{side}x{side}": dict(zip(("easy", "medium", "hard"),
                                          (0.7828, 0.7154, 0.3941) if side == 320 else
                                          (0.8771, 0.8167, 0.6391)))},
        train=replace(_BLAZE_RECIPE, input_size=(side, side)))


def _lightweight(backbone: str):
    def build():
        from .models.lightweight import LightweightRetinaFace
        return LightweightRetinaFace(backbone)
    return build


def _lwfd_record(name: str, backbone: str, batch: int, params: int, flops: int,
                 ap: Tuple[float, float, float]) -> ModelRecord:
    """midasklr/LightWeightFaceDetector: no checkpoint is reachable, the AP is its README's."""
    return ModelRecord(
        id=name, description=f"LightWeightFaceDetector, RetinaFace heads on {backbone}",
        builder=_lightweight(backbone),
        priors=PriorBoxes(((64, 128), (256, 512)), (16, 32)),  # its data/config.py
        preprocess=_LM_PRE, detection=_LM_DETECT, evaluation=_LM_EVAL, checkpoint=None,
        landmarks=True, params=params, flops=flops, flops_input=(320, 240),
        published_ap={"published (full val)": dict(zip(("easy", "medium", "hard"), ap))},
        # data/config.py: 120 epochs, decay at 80 and 100, image size 640, loc weight 2
        train=replace(_LM_RECIPE, epochs=120, milestones=(80, 100), batch_size=batch,
                      input_size=(640, 640)))


REGISTRY: Dict[str, ModelRecord] = {r.id: r for r in [
    _ulfd_record("ulfd-slim-320", False, 320, 240, 264_732, 81_410_560,
                 "cd24abce45da5dbc7cfd8167cd3d5f955382dfc9d9ae9459f0026abd3c2e38a4",
                 _published("ulfd-slim-320")),
    _ulfd_record("ulfd-slim-640", False, 640, 480, 264_732, 323_125_760,
                 "02ca778098127c46d2b2680f1c398c7b993c12a424e94c34e6d608beb73481e4",
                 _published("ulfd-slim-640")),
    _ulfd_record("ulfd-rfb-320", True, 320, 240, 281_100, 100_418_560,
                 "c722b4427cc71642768baef6e15c659931b56f07425e5d2b0ec033ad41b145b3",
                 _published("ulfd-rfb-320"), int8_cpu=True),
    _ulfd_record("ulfd-rfb-640", True, 640, 480, 281_100, 399_157_760,
                 "bf34512b1a93dc234178e8a701ecf25c6afddf335a3226accf62982536e160b5",
                 _published("ulfd-rfb-640"), int8_cpu=True),
    _ulfd_mask_record(320, 240, 288_982, 100_904_960,
                      "e5a5ed228cd574c8cfe206192712188ced9208fa7d48d51ffa7943669526a460"),
    _ulfd_mask_record(640, 480, 288_982, 401_093_120,
                      "c2933b1fbbd79b3aea64752733be5b5e5648a38b1a4b7e0eb447141bffb4539a"),
    _lm_record("slim-lm", "Face-Detector-1MB slim with 5 landmarks, any input size",
               _tiny_lm(False), _TINY_LM_PRIORS,
               _fd1mb("slim_Final.pth",
                      "76cdb587b2cf5f91b3836b66a652a0f7a91891758cd4fb0b07e4b7527af1c651"),
               348_032, 347_317_760, _published("slim-lm"), int8_cpu=True),
    _lm_record("rfb-lm", "Face-Detector-1MB RFB with 5 landmarks, any input size",
               _tiny_lm(True), _TINY_LM_PRIORS,
               _fd1mb("RBF_Final.pth",
                      "b22c45855bff5c4eb84e9973e2ee8a980639aa194ec66f33a87ce712f9d44c28"),
               364_400, 423_349_760, _published("rfb-lm")),
    _lm_record("mnet-lm", "Face-Detector-1MB RetinaFace-mobilenet0.25, small anchors",
               _retinaface(0.0), _MNET_LM_PRIORS,
               _fd1mb("mobilenet0.25_Final.pth",
                      "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1"),
               433_296, 735_859_200, _published("mnet-lm"),
               backbone=_MNET_BACKBONE),
    _lm_record("retinaface-mnet", "Pytorch_Retinaface mobilenet0.25, original anchors",
               _retinaface(0.1), _RETINA_PRIORS,
               Checkpoint("retinaface/mobilenet0.25_Final.pth", _RETINA_URL + "mobilenet0.25_Final.pth",
                          "eb3e68e0692a7cfc8d99a93ec98063ccbd5bb866aafaf25453d27b500b7b514d", "MIT",
                          "biubug6/Pytorch_Retinaface"),
               433_296, 735_859_200, _published("retinaface-mnet"),
               onednn_skip_passes=("conv_activation_onednn_fuse_pass",),
               recipe=replace(_LM_RECIPE, input_size=(640, 640)), backbone=_MNET_BACKBONE),
    _lm_record("retinaface-r50", "Pytorch_Retinaface ResNet-50, original anchors",
               _retinaface_r50(), _RETINA_PRIORS, _R50_CHECKPOINT,
               27_351_584, 33_198_489_600, _published("retinaface-r50"),
               recipe=_R50_RECIPE, backbone=_R50_BACKBONE, lite_refusal=_R50_LITE_REFUSAL),
    _blaze_record(320, "1be0bce373ef2fd080ad06838fa285ade1c1da940329ffddbe4435c6e6722421",
                  179_312, 289_766_400),
    _blaze_record(640, "82d69f96f158f5a4c729b11c90083bfe1f65dde378be6e158b5cf74e6ecb9473",
                  179_312, 1_159_065_600),
    _lwfd_record("lwfd-mnv2-0.1", "mobilenetv2_0.1", 64, 313_464, 49_848_160,
                 (0.853, 0.689, 0.299)),
    _lwfd_record("lwfd-mnv3-small", "mobilenetv3_small", 32, 689_904, 119_374_656,
                 (0.934, 0.833, 0.385)),
    _lwfd_record("lwfd-effnet-b0", "efficientnet_b0", 8, 4_287_452, 634_760_640,
                 (0.932, 0.815, 0.370)),
]}


def get_record(model_id: str) -> ModelRecord:
    """The record of ``model_id``, or a one-sentence error listing the known ids."""
    try:
        return REGISTRY[model_id]
    except KeyError:
        raise PaddleFaceError(f"unknown model id {model_id!r}; known ids: "
                              f"{', '.join(REGISTRY)}") from None


def list_models():
    return list(REGISTRY.values())
