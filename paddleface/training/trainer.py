"""The Paddle dygraph trainer (tools/train.py, train-version-*.sh).

Every default comes from the model's registry record (:class:`TrainRecipe`); the loop is
SGD with momentum, multi-step or cosine LR with optional warm-up, atomic checkpoints,
exact resume, VisualDL logs and optional validation (loss and WIDER AP).
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..datasets.voc import VOCFaceDataset
from ..errors import PaddleFaceError
from ..preprocess import normalize
from ..registry import ModelRecord, get_record
from .augment import Sample, augment
from .init import INITIALISERS, xavier_uniform_conv_weights
from .step import TargetEncoder, compute_loss, make_optimizer, train_step


@dataclass
class TrainConfig:
    model: str
    data_root: str
    output_dir: str = "output/train"
    split: str = "trainval"
    epochs: Optional[int] = None
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    milestones: Optional[Tuple[int, ...]] = None
    input_size: Optional[Tuple[int, int]] = None
    schedule: str = "multistep"  # or "cosine"
    warmup_epochs: int = 0
    workers: int = 2
    seed: int = 0
    pretrained: str = "none"  # none | upstream | backbone | PATH (.pdparams / .pth)
    pretrained_ssd: Optional[str] = None  # ULFD's --pretrained_ssd: all but the heads
    base_net: Optional[str] = None  # ULFD's --base_net: the backbone only
    resume: bool = False
    save_every: int = 10
    val_every: int = 5
    val_root: Optional[str] = None  # a VOC tree whose "test" split gives the val loss
    val_images: Optional[str] = None  # WIDER images + gt for the val AP
    val_gt: Optional[str] = None
    max_iters: Optional[int] = None  # stop after this many iterations (smoke runs, tests)
    amp: bool = False
    device: Optional[str] = None
    log_dir: Optional[str] = None
    ids: Optional[List[str]] = field(default=None, repr=False)  # restrict the training images
    quiet: bool = False  # no progress inside an epoch (the per-epoch line stays)
    progress_interval: float = 30.0  # seconds between progress lines when stderr is no terminal


def read_faces(voc: VOCFaceDataset, index: int, record: ModelRecord):
    """Image ``index`` of ``voc`` (BGR uint8) and its faces as a :class:`Sample` in pixels,
    with the record's reader offset applied (ULFD reads VOC coordinates minus 1)."""
    image, ann = voc[index]
    off = record.train.voc_box_offset
    lms = np.where(ann.has_lm[:, None, None], ann.landmarks + off, ann.landmarks)
    return Sample(image, ann.boxes + off, lms.astype(np.float32), ann.has_lm, ann.labels)


class TrainSet:
    """VOC images -> (image CHW float32, loc_t, conf_t, landm_t) with the record's augmentation
    and matching. Randomness is a function of (seed, epoch, index), so a resumed run sees the
    same samples as an uninterrupted one."""

    def __init__(self, voc: VOCFaceDataset, record: ModelRecord, size: Tuple[int, int], seed: int):
        self.voc, self.record, self.size, self.seed = voc, record, size, seed
        self.encode = TargetEncoder(record, size)
        self.epoch = 0
        self.order = np.arange(len(voc))

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i):
        index = int(self.order[i])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        s = read_faces(self.voc, index, self.record)
        s = augment(s, self.record.train.augmentation, self.size, self.record.preprocess.mean, rng)
        loc_t, conf_t, landm_t = self.encode(s.boxes, s.has_lm, s.landmarks, s.labels)
        return normalize(self.record.preprocess, s.image), loc_t, conf_t, landm_t


class ValSet:
    """The validation split as upstream's ``test()`` sees it (ULFD's TestTransform): the whole
    image resized to the training size (bilinear, uint8), no augmentation; faces normalised by
    the original size; the same matching as training."""

    def __init__(self, voc: VOCFaceDataset, record: ModelRecord, size: Tuple[int, int]):
        self.voc, self.record, self.size = voc, record, size
        self.encode = TargetEncoder(record, size)

    def __len__(self):
        return len(self.voc)

    def __getitem__(self, index):
        import cv2
        s = read_faces(self.voc, index, self.record)
        h, w = s.image.shape[:2]
        scale = np.array([w, h], np.float32)
        resized = cv2.resize(s.image, self.size, interpolation=cv2.INTER_LINEAR)
        loc_t, conf_t, landm_t = self.encode(s.boxes / np.tile(scale, 2), s.has_lm,
                                             s.landmarks / scale, s.labels)
        return normalize(self.record.preprocess, resized), loc_t, conf_t, landm_t


def _atomic_save(obj, path: Path) -> None:
    import paddle
    from ..weights import atomic_write
    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def load_pretrained(net, record: ModelRecord, spec: str) -> str:
    """Initialise ``net``: "none", "upstream" (the converted release), "backbone" (the
    record's ImageNet backbone through the x2paddle import), "backbone:FILE" (an ImageNet
    backbone file of the same layout: a PyTorch .pth or a Paddle .pdparams) or a weights file."""
    import paddle
    from ..weights import check_state_dict, download, load_weights, resolve_weights
    if spec == "none":
        return "upstream (torch-default) initialisation"
    if spec == "backbone" or spec.startswith("backbone:"):
        if record.backbone is None:
            raise PaddleFaceError(f"{record.id} has no ImageNet backbone checkpoint; use "
                                  "--pretrained none, upstream or a weights file")
        if spec.startswith("backbone:"):
            src = Path(spec[len("backbone:"):])
        else:
            env = os.environ.get("PADDLEFACE_WEIGHTS")
            src = Path(env) / record.backbone.path if env else None
            if src is None or not src.is_file():
                from dataclasses import replace
                src = download(replace(record, checkpoint=record.backbone),
                               instead="pass --pretrained backbone:FILE")
        params = read_weights_file(str(src))
        # the classifier is not part of the detector (torchvision's IntermediateLayerGetter)
        params = {record.backbone_prefix + k: v for k, v in params.items()
                  if not k.startswith("fc.")}
        own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        expected = {k: own[k] for k in own if k.startswith(record.backbone_prefix)}
        check_state_dict(f"{record.id} backbone", src, params, expected)
        net.set_state_dict({k: paddle.to_tensor(v) for k, v in params.items()})
        return f"ImageNet backbone {src}"
    if spec == "upstream" or Path(spec).suffix != "":
        path = resolve_weights(record, None if spec == "upstream" else spec)
        load_weights(net, path, record)
        return f"weights {path}"
    raise PaddleFaceError(f"--pretrained must be none, upstream, backbone, backbone:FILE or a "
                          f"weights file, not {spec!r}")


def read_weights_file(path: str) -> Dict[str, np.ndarray]:
    """A ``.pdparams`` file, or a PyTorch checkpoint through the x2paddle import."""
    from ..weights import PADDLE_SUFFIXES, import_torch_params, read_paddle_state
    p = Path(path)
    if not p.is_file():
        raise PaddleFaceError(f"{p}: no such weights file")
    if p.suffix in PADDLE_SUFFIXES:
        return {k: np.asarray(v) for k, v in read_paddle_state(p).items()}
    return import_torch_params(p)


def _sublayers_under(net, prefixes):
    return [layer for name, layer in net.named_sublayers()
            if any(name == p or name.startswith(p + ".") for p in prefixes)]


def init_from_pretrained_ssd(net, record: ModelRecord, path: str) -> str:
    """ULFD's ``init_from_pretrained_ssd``: every tensor but the prediction heads from a whole
    checkpoint of this model; the heads' conv weights xavier-uniform, their biases as built."""
    import paddle
    from ..weights import check_state_dict
    heads = record.train.head_prefixes
    if not heads:
        raise PaddleFaceError(f"--pretrained-ssd is ULFD's option; {record.id} names no heads")
    params = read_weights_file(path)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    check_state_dict(record.id, Path(path), params, expected)
    keep = {k: paddle.to_tensor(v) for k, v in params.items()
            if not any(k == h or k.startswith(h + ".") for h in heads)}
    net.set_state_dict(keep)
    for layer in _sublayers_under(net, heads):
        xavier_uniform_conv_weights(layer)
    return f"pretrained SSD {path} (heads re-initialised)"


def init_from_base_net(net, record: ModelRecord, path: str) -> str:
    """ULFD's ``init_from_base_net``: the backbone from ``path`` (its keys with or without the
    backbone prefix); every other conv weight xavier-uniform, biases as built."""
    import paddle
    from ..weights import check_state_dict
    base = record.train.base_prefix
    if not base:
        raise PaddleFaceError(f"--base-net is ULFD's option; {record.id} names no base net")
    params = read_weights_file(path)
    params = {k if k.startswith(base + ".") else f"{base}.{k}": v for k, v in params.items()}
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items() if k.startswith(base + ".")}
    check_state_dict(f"{record.id} base net", Path(path), params, expected)
    net.set_state_dict({k: paddle.to_tensor(v) for k, v in params.items()})
    others = [name for name, _ in net.named_children() if name != base]
    for layer in _sublayers_under(net, others):
        xavier_uniform_conv_weights(layer)
    return f"base net {path} (the other layers xavier-initialised)"


class Trainer:
    def __init__(self, cfg: TrainConfig):
        import paddle
        import paddle.distributed as dist
        self.cfg = cfg
        self.record = get_record(cfg.model)
        if self.record.train is None:
            raise PaddleFaceError(f"{self.record.id} has no training recipe")
        r = self.record.train
        self.epochs = cfg.epochs or r.epochs
        self.lr = cfg.lr if cfg.lr is not None else r.lr
        self.batch_size = cfg.batch_size or r.batch_size
        self.milestones = tuple(cfg.milestones or r.milestones)
        self.size = tuple(cfg.input_size or r.input_size)
        self.out = Path(cfg.output_dir)
        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        if self.world > 1:
            dist.init_parallel_env()
        if cfg.device:
            paddle.set_device(cfg.device)
        starts = [cfg.pretrained != "none", bool(cfg.pretrained_ssd), bool(cfg.base_net)]
        if sum(starts) > 1:
            raise PaddleFaceError("choose one of --pretrained, --pretrained-ssd and --base-net")
        paddle.seed(cfg.seed)
        np.random.seed(cfg.seed)
        voc = VOCFaceDataset(cfg.data_root, cfg.split, ids=cfg.ids, class_names=self.record.labels)
        if len(voc) == 0:
            raise PaddleFaceError(f"{cfg.data_root}: the {cfg.split} list holds no images")
        self.train_set = TrainSet(voc, self.record, self.size, cfg.seed)
        self.net = self.record.build()
        # the upstream trainers' initial weights; any weights loaded below overwrite them
        INITIALISERS[r.init](self.net)
        if cfg.pretrained_ssd:
            self.init_note = init_from_pretrained_ssd(self.net, self.record, cfg.pretrained_ssd)
        elif cfg.base_net:
            self.init_note = init_from_base_net(self.net, self.record, cfg.base_net)
        else:
            self.init_note = load_pretrained(self.net, self.record, cfg.pretrained)
        self.model = paddle.DataParallel(self.net) if self.world > 1 else self.net
        self.epoch_size = math.ceil(len(voc) / self.world / self.batch_size)
        self.scheduler = self._make_scheduler()
        self.optimizer = make_optimizer(self.net, self.record, self.scheduler)
        self.scaler = paddle.amp.GradScaler() if cfg.amp else None
        self.start_epoch, self.step, self.best_ap = 0, 0, -1.0
        self.epoch = 0
        self._val_set: Optional[ValSet] = None
        self.history: List[Dict[str, float]] = []
        if cfg.resume:
            self._resume()
        self.writer = self._visualdl()

    # ------------------------------------------------------------------ set-up
    def _make_scheduler(self):
        """ULFD steps MultiStepLR once per epoch (at the start of every epoch after the first);
        the RetinaFace-family trainers raise the step index at iteration milestone *
        ceil(images / batch). Both are a MultiStepDecay here, stepped per epoch or per
        iteration (``TrainRecipe.lr_step_unit``)."""
        import paddle.optimizer.lr as lr
        per_iter = self.record.train.lr_step_unit == "iteration"
        unit = self.epoch_size if per_iter else 1
        if self.cfg.schedule == "cosine":
            sched = lr.CosineAnnealingDecay(self.lr, T_max=max(1, self.epochs * unit))
        elif self.cfg.schedule == "multistep":
            sched = lr.MultiStepDecay(self.lr, milestones=[m * unit for m in self.milestones],
                                      gamma=0.1)
        else:
            raise PaddleFaceError(f"--schedule must be multistep or cosine, not {self.cfg.schedule!r}")
        if self.cfg.warmup_epochs > 0:
            sched = lr.LinearWarmup(sched, self.cfg.warmup_epochs * unit, self.lr * 0.1, self.lr)
        self.lr_per_iteration = per_iter
        return sched

    def _visualdl(self):
        if self.rank != 0:
            return None
        try:
            from visualdl import LogWriter
        except ImportError:
            print("visualdl is not installed: no VisualDL logs", file=sys.stderr)
            return None
        return LogWriter(logdir=str(self.cfg.log_dir or self.out / "vdl"))

    def _log(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=step)

    # ------------------------------------------------------------------ checkpoints
    def _optimizer_state(self, state: Dict, to_structured: bool) -> Dict:
        """Optimizer keys carry Paddle's generated parameter names (``conv2d_84.w_0_velocity_0``),
        which depend on how many layers the process built before; store structured names."""
        names = {p.name: k for k, p in self.net.named_parameters()}
        if not to_structured:
            names = {v: k for k, v in names.items()}
        out = {}
        for key, value in state.items():
            prefix = next((n for n in names if key.startswith(n + "_")), None)
            out[names[prefix] + key[len(prefix):] if prefix else key] = value
        return out

    def _state_path(self) -> Path:
        return self.out / "last.pdstate"

    def _save(self, epoch: int, tag: str = "last") -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        _atomic_save(self.net.state_dict(), self.out / f"{tag}.pdparams")
        if tag == "last":
            _atomic_save({"epoch": epoch, "step": self.step, "best_ap": self.best_ap,
                          "optimizer": self._optimizer_state(self.optimizer.state_dict(), True),
                          "scheduler": self.scheduler.state_dict(),
                          "history": self.history, "model": self.record.id,
                          "config": {k: v for k, v in asdict(self.cfg).items() if k != "ids"}},
                         self._state_path())

    def _resume(self) -> None:
        import paddle
        state_path = self._state_path()
        if not state_path.is_file():
            raise PaddleFaceError(f"{state_path}: nothing to resume from (no last.pdstate)")
        state = paddle.load(str(state_path))
        if state.get("model") != self.record.id:
            raise PaddleFaceError(f"{state_path}: a checkpoint of {state.get('model')}, "
                                  f"not {self.record.id}")
        self.net.set_state_dict(paddle.load(str(self.out / "last.pdparams")))
        self.optimizer.set_state_dict(self._optimizer_state(state["optimizer"], False))
        self.scheduler.set_state_dict(state["scheduler"])
        self.start_epoch, self.step = int(state["epoch"]) + 1, int(state["step"])
        self.best_ap, self.history = float(state["best_ap"]), list(state["history"])

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int):
        from paddle.io import DataLoader
        rng = np.random.default_rng([self.cfg.seed, epoch, 7])
        order = rng.permutation(len(self.train_set.voc))
        self.train_set.order = order[self.rank::self.world]
        self.train_set.epoch = epoch
        # both upstream loaders keep the last, smaller batch (no drop_last)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False,
                          drop_last=False, num_workers=self.cfg.workers,
                          use_shared_memory=False)

    def _check_loss(self, epoch: int):
        def check(value: float, terms) -> None:
            if not math.isfinite(value):
                raise PaddleFaceError(
                    f"the loss became {value} at epoch {epoch + 1}, iteration {self.step + 1} "
                    f"({', '.join(f'{k}={float(v):.4g}' for k, v in terms.items())}); "
                    f"the last good checkpoint is {self.out / 'last.pdparams'}; "
                    "lower --lr or check the data")
        return check

    def _validate_now(self, epoch: int) -> bool:
        """ULFD's train.py: after epoch 0, 5, 10, ... (0-based, every ``val_every``) and the last."""
        every = self.cfg.val_every
        return bool(every) and epoch % every == 0 or epoch + 1 == self.epochs

    def train(self) -> Dict:
        from .progress import EpochProgress
        self.net.train()
        last_epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, self.epochs):
            self.epoch = epoch
            loader = self._loader(epoch)
            progress = EpochProgress(f"epoch {epoch + 1}/{self.epochs}", len(self.train_set.voc),
                                     enabled=self.rank == 0 and not self.cfg.quiet,
                                     interval=self.cfg.progress_interval)
            t0, seen, losses, lrs = time.time(), 0, [], []
            check = self._check_loss(epoch)
            for batch in loader:
                lrs.append(self.optimizer.get_lr())
                value, terms = train_step(self.model, self.record, self.optimizer, batch,
                                          self.scaler, check)
                if self.lr_per_iteration:
                    self.scheduler.step()
                self.step += 1
                seen += batch[0].shape[0]
                losses.append(value)
                rate = seen * self.world / max(time.time() - t0, 1e-9)
                self._log("train/loss", value, self.step)
                for k, v in terms.items():
                    self._log(f"train/loss_{k}", v, self.step)
                self._log("train/lr", self.optimizer.get_lr(), self.step)
                self._log("train/images_per_s", rate, self.step)
                progress.update(batch[0].shape[0] * self.world, value, self.optimizer.get_lr())
                if self.cfg.max_iters and self.step >= self.cfg.max_iters:
                    break
            progress.close()
            if not self.lr_per_iteration:
                self.scheduler.step()
            entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan"),
                     "losses": losses, "lrs": lrs, "images_per_s": seen * self.world / max(time.time() - t0, 1e-9)}
            if self._validate_now(epoch):
                entry.update(self.validate(epoch + 1))
            self.history.append(entry)
            if self.rank == 0:
                print(f"epoch {epoch + 1}: loss {entry['loss']:.4f}, "
                      f"{entry['images_per_s']:.1f} images/s"
                      + (f", val loss {entry['val_loss']:.4f}" if "val_loss" in entry else "")
                      + (f", val AP easy {entry['ap_easy']:.4f}" if "ap_easy" in entry else ""),
                      flush=True)
            self._save(epoch)
            if self.cfg.save_every and (epoch + 1) % self.cfg.save_every == 0:
                self._save(epoch, f"epoch_{epoch + 1}")
            last_epoch = epoch
            if self.cfg.max_iters and self.step >= self.cfg.max_iters:
                break
        if self.writer is not None:
            self.writer.close()
        return {"epochs_done": last_epoch + 1, "steps": self.step, "history": self.history,
                "checkpoint": str(self.out / "last.pdparams")}

    # ------------------------------------------------------------------ validation
    def validate(self, epoch: int) -> Dict[str, float]:
        import paddle
        out: Dict[str, float] = {}
        if self.rank != 0:
            return out
        self.net.eval()
        try:
            if self.cfg.val_root:
                out.update(self.val_loss(epoch))
            if self.cfg.val_images and self.cfg.val_gt:
                out.update(self.val_ap(epoch))
        finally:
            self.net.train()
        return out

    def val_loss(self, epoch: int) -> Dict[str, float]:
        """Upstream ``test()``: eval mode, batches of the training batch size in list order,
        the mean of the per-batch losses (each normalised by its batch's positives)."""
        import paddle
        if self._val_set is None:  # parse the split's XML once per run
            self._val_set = ValSet(VOCFaceDataset(self.cfg.val_root, "test",
                                                  class_names=self.record.labels),
                                   self.record, self.size)
        vs = self._val_set
        totals, parts = [], {}
        with paddle.no_grad():
            for start in range(0, len(vs), self.batch_size):
                items = [vs[i] for i in range(start, min(start + self.batch_size, len(vs)))]
                batch = [paddle.to_tensor(np.stack(a)) for a in zip(*items)]
                total, terms = compute_loss(self.net, self.record, batch)
                totals.append(float(total))
                for k, v in terms.items():
                    parts.setdefault(k, []).append(float(v))
        out = {"val_loss": float(np.mean(totals))}
        out.update({f"val_loss_{k}": float(np.mean(v)) for k, v in parts.items()})
        for k, v in out.items():
            self._log(f"val/{k[4:]}", v, epoch)
        return out

    def val_ap(self, epoch: int) -> Dict[str, float]:
        from ..evaluation.predict import eval_detector, list_images, predict_widerface
        from ..evaluation.widerface import evaluate, load_ground_truth, read_predictions
        det = eval_detector(self.record, self.record.evaluation.default_long_side,
                            network=self.net, engine="dygraph", device=self.cfg.device)
        with tempfile.TemporaryDirectory() as tmp:
            images = Path(self.cfg.val_images)
            predict_widerface(det, images, Path(tmp), list_images(images), progress=False)
            res = evaluate(read_predictions(tmp), load_ground_truth(self.cfg.val_gt), subset=True)
        self.net.train()
        for k, v in res.ap.items():
            self._log(f"val/ap_{k}", v, epoch)
        if res.ap["easy"] > self.best_ap:
            self.best_ap = res.ap["easy"]
            if self.rank == 0:
                self.out.mkdir(parents=True, exist_ok=True)
                _atomic_save(self.net.state_dict(), self.out / "best.pdparams")
        return {f"ap_{k}": v for k, v in res.ap.items()}


def write_history(result: Dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
