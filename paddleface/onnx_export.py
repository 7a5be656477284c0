"""A network's static graph as ONNX (through paddle2onnx), repaired and with deployment names.

The ONNX graph has one input ``image`` (N, 3, H, W) float32 and the outputs ``loc``
(N, P, 4), ``conf`` (N, P, 2) and, for the landmark models, ``landms`` (N, P, 10): the names
``deploy.json`` lists. N is always dynamic; H and W are dynamic for the any-size models
unless an input size is pinned (see :func:`paddleface.engine.input_spec_shape`).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

from .errors import PaddleFaceError
from .registry import ModelRecord

INPUT_NAME = "image"  # the name of the InputSpec in engine.save_static
OPSET = 11


def output_names(record: ModelRecord) -> Tuple[str, ...]:
    """The graph's output names in the order the network returns them."""
    return ("loc", "conf", "landms") if record.landmarks else ("loc", "conf")


def export_onnx(net, record: ModelRecord, path: Path,
                input_size: Optional[Tuple[int, int]] = None) -> Path:
    """Write ``net`` (eval mode, weights loaded) to the ONNX file ``path``; returns ``path``.

    ``input_size`` (width, height) pins H and W; by default they are pinned only for the
    fixed-size models. The export is not checked here: callers compare it with dygraph.
    """
    try:
        import onnx
        import paddle2onnx
    except ImportError as e:
        raise PaddleFaceError(f"the ONNX export needs paddle2onnx and onnx ({e})") from None
    from .engine import model_files, save_static
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        graph, params = model_files(save_static(net, record, Path(tmp), input_size))
        with captured_output(Path(tmp) / "paddle2onnx.log") as log:
            try:
                paddle2onnx.export(graph, params, str(path), opset_version=OPSET)
            except Exception as e:
                raise PaddleFaceError(f"{record.id}: paddle2onnx failed ({e}): "
                                      f"{log.read_text()[-500:]}") from None
        model = onnx.load(str(path))
        if graph.endswith(".json"):
            repair_leaky_relu(Path(graph).read_text(), model)
    rename_outputs(model, output_names(record))
    onnx.save(model, str(path))
    return path


@contextlib.contextmanager
def captured_output(log: Path) -> Iterator[Path]:
    """Send what this process writes to stdout and stderr (C++ included) into ``log``:
    paddle2onnx and Polygraphy print progress lines nobody asked for."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "wb") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def rename_outputs(model, names: Sequence[str]) -> None:
    """Give the graph's outputs ``names`` in order (paddle2onnx writes ``fetch_name_k``)."""
    outputs = list(model.graph.output)
    if len(outputs) != len(names):
        raise PaddleFaceError(f"the ONNX graph has {len(outputs)} outputs, {len(names)} were "
                              f"expected ({', '.join(names)})")
    renames = {o.name: n for o, n in zip(outputs, names) if o.name != n}
    for node in model.graph.node:
        node.output[:] = [renames.get(v, v) for v in node.output]
        node.input[:] = [renames.get(v, v) for v in node.input]
    for o in outputs:
        o.name = renames.get(o.name, o.name)


def repair_leaky_relu(graph_json: str, model) -> None:
    """Give the ONNX LeakyRelu nodes the slopes of the Paddle graph (JSON text of model.json).

    Paddle 3 stores ``negative_slope`` as a double; paddle2onnx 2.1 reads it as a float and
    writes garbage alphas (2.5e-43, 0, NaN seen for retinaface-mnet's 0.1).
    """
    slopes = [float(v) for v in re.findall(
        r'"#":"1\.leaky_relu_?","A":\[\{"AT":\{"#":"0\.a_f64","D":([^}]+)\},"N":"negative_slope"',
        graph_json)]
    nodes = [n for n in model.graph.node if n.op_type == "LeakyRelu"]
    if not nodes:
        return
    if len(set(slopes)) != 1 and len(slopes) != len(nodes):
        raise PaddleFaceError(f"cannot match the ONNX graph's {len(nodes)} LeakyRelu nodes to "
                              f"the Paddle graph's {len(slopes)} slopes")
    alphas = slopes * len(nodes) if len(set(slopes)) == 1 else slopes
    for node, alpha in zip(nodes, alphas):
        for attr in node.attribute:
            if attr.name == "alpha":
                attr.f = alpha
