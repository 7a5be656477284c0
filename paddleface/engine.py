"""Ways to run a network: Paddle dygraph, or a Paddle Inference predictor of its static graph.

Both map an (N, 3, H, W) float32 batch to numpy ``(loc, conf, landms or None)``. Paddle
Inference with oneDNN is several times faster on CPU than dygraph (ulfd-rfb-320: 4.6 ms
against 17 ms here), so the detector uses it by default on CPU.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from .registry import ModelRecord

# Passes that break graphs of ours under oneDNN in Paddle 3.3.1: the reshape fusion fails to
# build on the (conv, transpose, reshape) head pattern; the conv + concat + activation fusion
# fails on the RetinaFace SSH modules ("attr fuse_activation not found"). Records add their own
# (ModelRecord.onednn_skip_passes).
ONEDNN_BROKEN_PASSES = ("operator_reshape_onednn_fuse_pass",
                        "conv_concat_activation_onednn_fuse_pass")


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
            cfg.set_cpu_math_library_num_threads(threads or os.cpu_count() or 1)
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


def cached_static_model(net, record: ModelRecord, weights_path: Path,
                        input_size: Optional[Tuple[int, int]] = None) -> Path:
    """The static graph of ``net`` under $PADDLEFACE_HOME/inference, exported once per
    (weights file, input shape, model code and Paddle version: a new release must not run a
    graph traced by the old code)."""
    import paddle

    from .weights import home, sha256_of
    code = b"".join(f.read_bytes() for f in sorted((Path(__file__).parent / "models").glob("*.py")))
    key = hashlib.sha256(f"{sha256_of(weights_path)}{input_spec_shape(record, input_size)}"
                         f"{hashlib.sha256(code).hexdigest()}{paddle.__version__}"
                         .encode()).hexdigest()[:16]
    out_dir = home() / "inference" / f"{record.id}-{key}"
    prefix = out_dir / "model"
    if not (out_dir / "deploy.json").is_file():
        tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
        save_static(net, record, tmp, input_size)
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process won the race: use its copy
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return prefix
