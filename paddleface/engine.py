"""Ways to run a network: Paddle dygraph, a Paddle Inference predictor of its static graph,
or ONNX Runtime on the paddle2onnx export of that graph.

Each maps an (N, 3, H, W) float32 batch to numpy ``(loc, conf, landms or None)``. On this
machine's CPU, ONNX Runtime runs our graphs fastest, then Paddle Inference with oneDNN, then
dygraph (ulfd-rfb-320, 1 thread: 2.3, 4.6 and 17 ms; bench/latency.py); ``engine="auto"``
(:func:`choose_engine`) picks accordingly.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import PaddleFaceError
from .registry import ModelRecord

# Passes that break graphs of ours under oneDNN in Paddle 3.3.1: the reshape fusion fails to
# build on the (conv, transpose, reshape) head pattern; the conv + concat + activation fusion
# fails on the RetinaFace SSH modules ("attr fuse_activation not found"). Records add their own
# (ModelRecord.onednn_skip_passes).
ONEDNN_BROKEN_PASSES = ("operator_reshape_onednn_fuse_pass",
                        "conv_concat_activation_onednn_fuse_pass")

ENGINES = ("auto", "onnxruntime", "inference", "dygraph")
ENGINE_TITLES = {"onnxruntime": "ONNX Runtime", "inference": "Paddle Inference + oneDNN",
                 "dygraph": "Paddle dygraph"}
# what each engine needs besides paddle: the ONNX path exports with paddle2onnx
_ENGINE_PACKAGES = {"onnxruntime": ("onnxruntime", "paddle2onnx", "onnx")}


def missing_packages(engine: str) -> List[str]:
    """The Python packages ``engine`` needs that are not installed."""
    import importlib.util
    return [p for p in _ENGINE_PACKAGES.get(engine, ()) if importlib.util.find_spec(p) is None]


def choose_engine(record: ModelRecord, device: str = "cpu",
                  weights_from_file: bool = True) -> Tuple[str, str]:
    """(engine, why) that ``engine="auto"`` runs ``record`` with on ``device``.

    CPU: the first installed engine of ``record.cpu_engines`` (measured fastest first);
    GPU: Paddle Inference; a network given in memory: dygraph (exported graphs are cached
    by the weights file they come from).
    """
    if not weights_from_file:
        return "dygraph", "the network was given in memory, not as a weights file to export"
    if device.startswith("gpu"):
        return "inference", "on GPU Paddle Inference is the engine supported here"
    skipped = []
    for engine in record.cpu_engines:
        missing = missing_packages(engine)
        if not missing:
            why = (f"{ENGINE_TITLES[engine]} is installed and was the fastest CPU engine "
                   "measured here (bench/latency.py)") if not skipped else \
                f"the fastest installed on CPU; {'; '.join(skipped)}"
            return engine, why
        skipped.append(f"{ENGINE_TITLES[engine]} would be faster but {', '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} not installed")
    return "dygraph", "; ".join(skipped)


class DygraphEngine:
    """The network run eagerly (any device, any input size; needed for training)."""

    name = "dygraph"

    def __init__(self, net):
        import paddle
        self._paddle = paddle
        self.net = net
        net.eval()

    def __call__(self, batch: np.ndarray):
        with self._paddle.no_grad():
            loc, conf, landms = self.net(self._paddle.to_tensor(batch))
        return loc.numpy(), conf.numpy(), None if landms is None else landms.numpy()


def input_spec_shape(record: ModelRecord, input_size: Optional[Tuple[int, int]]):
    """[N, 3, H, W] with None for what may vary: fixed-size models pin H and W."""
    if input_size:
        return [None, 3, input_size[1], input_size[0]]
    if record.preprocess.resize == "fixed":
        w, h = record.preprocess.size
        return [None, 3, h, w]
    return [None, 3, None, None]


def save_static(net, record: ModelRecord, out_dir: Path,
                input_size: Optional[Tuple[int, int]] = None) -> Path:
    """``paddle.jit.save`` the network to ``out_dir/model`` (+ deploy.json); returns the prefix."""
    import paddle
    out_dir.mkdir(parents=True, exist_ok=True)
    net.eval()
    shape = input_spec_shape(record, input_size)
    prefix = out_dir / "model"
    paddle.jit.save(net, str(prefix),
                    input_spec=[paddle.static.InputSpec(shape, "float32", "image")])
    (out_dir / "deploy.json").write_text(json.dumps(deploy_info(record, shape), indent=1))
    return prefix


def deploy_info(record: ModelRecord, shape: Sequence) -> dict:
    """What deployment code needs besides the graph: preprocessing, anchors, thresholds."""
    from dataclasses import asdict
    p, a, d = record.preprocess, record.priors, record.detection
    return {
        "model": record.id, "input_shape": list(shape),
        "outputs": ["loc", "conf"] + (["landms"] if record.landmarks else []),
        "preprocess": asdict(p),
        "anchors": {"min_sizes": [list(m) for m in a.min_sizes], "steps": list(a.steps),
                    "variances": list(a.variances), "clip": a.clip, "centers": a.centers},
        "detection": asdict(d),
        # conf column i + 1 is labels[i]; detection runs per class, then merges by score
        "labels": list(record.labels),
        "onednn_skip_passes": list(record.onednn_skip_passes),
    }


def model_files(prefix: Path) -> Tuple[str, str]:
    """(graph file, params file): Paddle 3 writes model.json, Paddle 2 model.pdmodel."""
    graph = prefix.with_suffix(".json")
    if not graph.is_file():
        graph = prefix.with_suffix(".pdmodel")
    return str(graph), str(prefix.with_suffix(".pdiparams"))


def keep_intermediate_tensors() -> None:
    """Stop Paddle's executor from freeing each intermediate tensor after its last use.

    Freed, the tensors are allocated again on the next run and every page of them faults in
    anew: ulfd-rfb-320 at 1 thread spent ~1.8 ms of its 6.4 ms per run on that (one 16->32 1x1
    conv at 120x160 took 1.25 ms instead of 0.25). Kept, they cost the memory of one run's
    intermediates (a few MB for these networks), as ONNX Runtime's arena does. The flag is
    process-wide and read when a predictor is created; CPU only (GPU memory is scarcer).
    """
    import paddle
    paddle.set_flags({"FLAGS_eager_delete_tensor_gb": -1.0})


class InferenceEngine:
    """A ``paddle.inference`` predictor (CPU with or without oneDNN, or GPU)."""

    name = "inference"

    def __init__(self, prefix: Path, device: str = "cpu", threads: Optional[int] = None,
                 onednn: bool = True, gpu_mem_mb: int = 256, tensorrt: bool = False,
                 skip_passes: Sequence[str] = ()):
        from paddle import inference
        self.threads: Optional[int] = None  # GPU
        graph, params = model_files(prefix)
        cfg = inference.Config(graph, params)
        if device.startswith("gpu"):
            dev_id = int(device.split(":")[1]) if ":" in device else 0
            cfg.enable_use_gpu(gpu_mem_mb, dev_id)
            if tensorrt:
                cfg.enable_tensorrt_engine(workspace_size=1 << 28, max_batch_size=1,
                                           min_subgraph_size=3,
                                           precision_mode=inference.PrecisionType.Float32)
        else:
            keep_intermediate_tensors()
            cfg.disable_gpu()
            self.threads = threads or os.cpu_count() or 1
            cfg.set_cpu_math_library_num_threads(self.threads)
            if onednn:
                cfg.enable_mkldnn()
                for p in (*ONEDNN_BROKEN_PASSES, *skip_passes):
                    cfg.delete_pass(p)
            else:
                cfg.disable_mkldnn()
        cfg.disable_glog_info()
        self.onednn = onednn and not device.startswith("gpu")
        self.predictor = inference.create_predictor(cfg)
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._outputs = [self.predictor.get_output_handle(n)
                         for n in self.predictor.get_output_names()]

    def __call__(self, batch: np.ndarray):
        self._input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self.predictor.run()
        outs = [h.copy_to_cpu() for h in self._outputs]
        return outs[0], outs[1], outs[2] if len(outs) > 2 else None


class OnnxRuntimeEngine:
    """An ONNX Runtime CPU session of the paddle2onnx export (outputs ``loc``, ``conf``
    [, ``landms``]); dynamic batch, and dynamic H and W for the any-size models."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: Optional[int] = None):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.path = Path(path)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        self._outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray):
        outs = self.session.run(self._outputs, {self._input: batch})
        return outs[0], outs[1], outs[2] if len(outs) > 2 else None


def _cache_dir(kind: str, record: ModelRecord, weights_path: Path,
               input_size: Optional[Tuple[int, int]], versions: str) -> Path:
    """$PADDLEFACE_HOME/kind/ID-KEY, KEY naming the weights file's content, the input shape,
    the model code and the tool versions: a new release must not run a graph traced by the
    old code."""
    from .weights import home, sha256_of
    code = b"".join(f.read_bytes() for f in sorted((Path(__file__).parent / "models").glob("*.py")))
    key = hashlib.sha256(f"{sha256_of(weights_path)}{input_spec_shape(record, input_size)}"
                         f"{hashlib.sha256(code).hexdigest()}{versions}"
                         .encode()).hexdigest()[:16]
    return home() / kind / f"{record.id}-{key}"


def _build_once(out_dir: Path, build) -> None:
    """``build(tmp_dir)`` into a private folder, then move it to ``out_dir`` atomically."""
    import shutil
    if (out_dir / "deploy.json").is_file():
        return
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    try:
        build(tmp)
        os.replace(tmp, out_dir)
    except OSError:  # another process won the race: use its copy
        if not (out_dir / "deploy.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_static_model(net, record: ModelRecord, weights_path: Path,
                        input_size: Optional[Tuple[int, int]] = None) -> Path:
    """The static graph of ``net`` under $PADDLEFACE_HOME/inference, exported once per
    (weights file, input shape, model code, Paddle version); returns the model prefix."""
    import paddle
    out_dir = _cache_dir("inference", record, weights_path, input_size, paddle.__version__)
    _build_once(out_dir, lambda tmp: save_static(net, record, tmp, input_size))
    return out_dir / "model"


#: largest absolute difference an exported graph may have from the dygraph network
MAX_EXPORT_DIFF = 1e-4


def check_batches(record: ModelRecord, input_size: Optional[Tuple[int, int]]) -> List[np.ndarray]:
    """Network inputs that exercise what an export lets vary, made by the record's own
    preprocessing from seeded random photos: a batch of 2 and, when H and W are dynamic, an
    odd size (203x157 kept as it is; the FPN upsampling crops 2n to 2n - 1)."""
    from dataclasses import replace

    from .preprocess import prepare
    rng = np.random.default_rng(0)
    shape = input_spec_shape(record, input_size)
    spec = record.preprocess
    if shape[2] is not None:  # pinned H and W: every input is resized to them
        spec = replace(spec, resize="fixed", size=(shape[3], shape[2]))

    def tensor(w: int, h: int) -> np.ndarray:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        return prepare(spec, image, long_side=None).tensor

    return [np.stack([tensor(320, 240), tensor(320, 240)]), tensor(203, 157)[None]]


def compare_with_dygraph(net, record: ModelRecord, run, batches: Sequence[np.ndarray]) -> float:
    """Largest absolute output difference between ``run`` and the dygraph ``net`` over
    ``batches`` ((N, 3, H, W) float32 each); NaN if either gives NaN."""
    import paddle
    diffs = []
    for x in batches:
        with paddle.no_grad():
            ref = [t.numpy() for t in net(paddle.to_tensor(x)) if t is not None]
        ours = [o for o in run(x) if o is not None]
        if len(ours) != len(ref):
            raise PaddleFaceError(f"{record.id}: the export has {len(ours)} outputs, the "
                                  f"network {len(ref)}")
        diffs += [float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
                  for a, b in zip(ours, ref)]
    return float("nan") if np.isnan(diffs).any() else max(diffs)


def cached_onnx_model(net, record: ModelRecord, weights_path: Path,
                      input_size: Optional[Tuple[int, int]] = None) -> Path:
    """``net`` exported with paddle2onnx under $PADDLEFACE_HOME/onnx, once per (weights file,
    input shape, model code, Paddle, paddle2onnx and ONNX Runtime versions), and checked
    against dygraph when it is built; returns the path of model.onnx."""
    import onnxruntime
    import paddle
    import paddle2onnx

    from .onnx_export import export_onnx
    versions = f"{paddle.__version__}{paddle2onnx.__version__}{onnxruntime.__version__}"
    out_dir = _cache_dir("onnx", record, weights_path, input_size, versions)

    def build(tmp: Path) -> None:
        path = export_onnx(net, record, tmp / "model.onnx", input_size)
        diff = compare_with_dygraph(net, record, OnnxRuntimeEngine(path, threads=1),
                                    check_batches(record, input_size))
        if not diff <= MAX_EXPORT_DIFF:
            raise PaddleFaceError(f"{record.id}: the ONNX export differs from the dygraph network "
                                  f"by {diff:.3g} (more than {MAX_EXPORT_DIFF}); use "
                                  f"engine='inference'")
        info = deploy_info(record, input_spec_shape(record, input_size))
        info["export"] = {"format": "onnx", "max_abs_diff": diff}
        (tmp / "deploy.json").write_text(json.dumps(info, indent=1))

    _build_once(out_dir, build)
    return out_dir / "model.onnx"
