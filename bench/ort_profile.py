"""Where ONNX Runtime spends a model's time: its per-op profile, by op type and by node.

    python bench/ort_profile.py [--models ulfd-rfb-320 rfb-lm retinaface-mnet blazeface-640]
        [--threads 1] [--runs 100] [--top 8] [--level all|extended|basic]

Each model runs our cached ONNX export (the one ``engine="onnxruntime"`` runs) at its default
input on crowd.jpg (the any-size models at 640x480, the letterboxed ones at the letterbox of
crowd.jpg), in its own process with ONNX Runtime's profiler on. The table gives, per op type
of the *optimised* graph (after ONNX Runtime's fusions and layout changes), the share of the
summed kernel time, the multiply-accumulates of those ops (convolutions only) and their
GMAC/s; then the slowest nodes. CPU time (``time.process_time``) and the load average are
printed beside wall time: the machine is shared.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


FUSED_INTO_CONV = {"BatchNormalization", "Relu", "LeakyRelu", "Clip", "Add", "Sigmoid",
                   "Identity"}


def conv_macs(model_path: Path, shape):
    """({tensor name: conv id}, {conv id: MACs}) for every Conv of the (unoptimised) ONNX
    graph at input ``shape``. ONNX Runtime's NCHWc graph names a fused conv after the output
    of the last node it absorbed (BN, activation, Add), so every output along a conv's chain
    of such single-input nodes names that conv."""
    import onnx
    from onnx import shape_inference
    model = onnx.load(str(model_path))
    inp = model.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, shape):
        d.dim_value = v
    model = shape_inference.infer_shapes(model)
    dims = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in list(model.graph.value_info) + list(model.graph.output)}
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    macs, conv_of, shapes = {}, {}, {}
    for n in model.graph.node:
        if n.op_type == "Conv" and n.output[0] in dims:
            w = inits[n.input[1]]
            o = dims[n.output[0]]
            macs[n.output[0]] = int(o[1] * o[2] * o[3] * w[1] * w[2] * w[3])
            conv_of[n.output[0]] = n.output[0]
            groups = next((a.i for a in n.attribute if a.name == "group"), 1)
            shapes[n.output[0]] = (f"{w[2]}x{w[3]} {w[1] * groups}->{w[0]}"
                                   f"{' dw' if groups > 1 else ''} @{o[3]}x{o[2]}")
        elif n.op_type in FUSED_INTO_CONV:
            for i in n.input:
                if i in conv_of:
                    conv_of[n.output[0]] = conv_of[i]
                    break
    return conv_of, macs, shapes


def worker(model: str, threads: int, runs: int, level: str, image: str) -> None:
    import numpy as np
    import onnxruntime as ort
    from paddleface.detector import FaceDetector
    from paddleface.image_io import read_image
    det = FaceDetector(model, device="cpu", engine="onnxruntime", threads=threads)
    x = det.prepare(read_image(image)).tensor[None]
    path = det.engine.path
    conv_of, conv_mac, conv_shape = conv_macs(path, x.shape)
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = levels[level]
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for _ in range(10):
            sess.run(None, {name: x})
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(runs):
            sess.run(None, {name: x})
        wall = (time.perf_counter() - t0) / runs * 1000
        cpu = (time.process_time() - c0) / runs * 1000
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_type = collections.defaultdict(float)
    by_node = collections.defaultdict(float)
    node_type = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        node = e["name"][:-len("_kernel_time")]
        if node.endswith("_nchwc"):
            node = node[:-len("_nchwc")]
        op = e["args"].get("op_name", "?")
        by_type[op] += e["dur"]
        by_node[node] += e["dur"]
        node_type[node] = op
    n_runs = runs + 10
    total = sum(by_type.values()) / n_runs / 1000  # ms per run
    # each conv's MACs go to the first profiled node (in time order) whose name is on its chain
    macs, counted = {}, set()
    for node in sorted(by_node, key=lambda k: -by_node[k]):
        conv = conv_of.get(node)
        if conv is not None and conv not in counted:
            counted.add(conv)
            macs[node] = conv_mac[conv]
    type_macs = collections.defaultdict(int)
    for node, op in node_type.items():
        type_macs[op] += macs.get(node, 0)
    print(json.dumps({"model": model, "shape": list(x.shape), "wall_ms": wall, "cpu_ms": cpu,
                      "kernel_ms": total, "gmac": sum(conv_mac.values()) / 1e9,
                      "gmac_found": sum(macs.values()) / 1e9,
                      "by_type": {k: [v / n_runs / 1000, type_macs[k] / 1e9]
                                  for k, v in by_type.items()},
                      "by_node": sorted(([conv_shape.get(conv_of.get(k), k), node_type[k],
                                          v / n_runs / 1000, macs.get(k, 0) / 1e9]
                                         for k, v in by_node.items()), key=lambda r: -r[2])}))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+",
                    default=["ulfd-rfb-320", "rfb-lm", "retinaface-mnet", "blazeface-640"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--level", default="all", choices=["all", "extended", "basic"])
    ap.add_argument("--image", default=None)
    ap.add_argument("--worker", metavar="MODEL")
    args = ap.parse_args()
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    image = args.image or str(shared / "images" / "crowd.jpg")
    if args.worker:
        return worker(args.worker, args.threads, args.runs, args.level, image)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.threads} thread(s), graph optimisation level {args.level}, {image}")
    for model in args.models:
        r = subprocess.run([sys.executable, __file__, "--worker", model, "--threads",
                            str(args.threads), "--runs", str(args.runs), "--level", args.level,
                            "--image", image], capture_output=True, text=True)
        if r.returncode:
            print(f"{model}: failed: {r.stderr.strip()[-400:]}")
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        n, c, h, w = res["shape"]
        print(f"\n## {model} at {w}x{h}: {res['gmac']:.3f} GMAC, wall {res['wall_ms']:.2f} ms, "
              f"CPU {res['cpu_ms']:.2f} ms, kernels {res['kernel_ms']:.2f} ms "
              f"({res['gmac_found']:.3f} GMAC matched to kernels) -> "
              f"{res['gmac'] / res['cpu_ms'] * 1000:.1f} GMAC per CPU-second")
        print(f"{'op type':28} {'ms':>7} {'share':>6} {'GMAC':>7} {'GMAC/s':>7}")
        for op, (ms, gmac) in sorted(res["by_type"].items(), key=lambda kv: -kv[1][0]):
            rate = f"{gmac / ms * 1000:7.1f}" if gmac else "      -"
            print(f"{op:28} {ms:7.3f} {ms / res['kernel_ms']:6.1%} {gmac:7.3f} {rate}")
        print(f"slowest nodes:")
        for node, op, ms, gmac in res["by_node"][:args.top]:
            rate = f"{gmac / ms * 1000:6.1f} GMAC/s" if gmac else ""
            print(f"  {node[:32]:32} {op:14} {ms:7.3f} ms {ms / res['kernel_ms']:6.1%} "
                  f"{gmac:6.3f} GMAC {rate}")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
