"""Latency table: paddle dygraph, Paddle Inference (oneDNN off / on), Paddle Lite x86, ONNX
Runtime and OpenCV DNN (both on our ONNX export), network alone and end to end.

    python bench/latency.py [--models ulfd-slim-320 ulfd-rfb-320 rfb-lm] [--runs 100]
        [--threads 1 2] [--backends ...]

rfb-lm runs at 640x480. Each (model, backend, threads) is measured in its own process:
median of --runs runs after 10 warm-up runs; this is repeated --repeats times, interleaved
over the backends, and the fastest repeat is kept (run-to-run variation on a shared 2-core VM
is +-30%). "e2e" is the whole detection of a decoded photo
(preprocessing, network, decoding, NMS) with paddleface's numpy pre/post-processing, the same
for every backend. Lite's Python API sets no thread count (its x86 kernels choose).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BACKENDS = ["dygraph", "inference", "inference-onednn", "lite-x86", "onnxruntime", "opencv-dnn"]
SIZES = {"rfb-lm": (640, 480)}


def bench_preprocess(rec, size):
    """The record's preprocessing with a fixed (width, height) resize: every backend runs the
    exported graph's input shape."""
    from dataclasses import replace
    return replace(rec.preprocess, resize="fixed", size=size)


def worker(backend, model, threads, export_dir, runs, image):
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from paddleface.image_io import read_image
    from paddleface.postprocess import postprocess
    from paddleface.preprocess import prepare
    from paddleface.registry import get_record
    rec = get_record(model)
    size = SIZES.get(model, rec.preprocess.size)
    d = Path(export_dir)
    if backend == "dygraph":
        import paddle
        paddle.set_device("cpu")
        from paddleface.detector import load_network
        from paddleface.engine import DygraphEngine
        net, _ = load_network(rec)
        eng = DygraphEngine(net)
        run = lambda x: eng(x)  # noqa: E731
    elif backend.startswith("inference"):
        from paddleface.engine import InferenceEngine
        eng = InferenceEngine(d / "inference" / "model", "cpu", threads,
                              onednn=backend.endswith("onednn"),
                              skip_passes=rec.onednn_skip_passes)
        run = lambda x: eng(x)  # noqa: E731
    elif backend == "onnxruntime":
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(d / "onnx" / "model.onnx"), o, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        run = lambda x: sess.run(None, {name: x}) + [None]  # noqa: E731
    elif backend == "opencv-dnn":
        import cv2
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromONNX(str(d / "onnx" / "model.onnx"))
        names = net.getUnconnectedOutLayersNames()

        def run(x):
            net.setInput(x)
            outs = net.forward(names)
            return list(outs) + [None]
    else:
        raise SystemExit(f"unknown backend {backend}")
    img = read_image(image)
    pre = bench_preprocess(rec, size)
    x = prepare(pre, img).tensor[None]
    run(x)
    # ONNX output order follows the graph; pick loc (last dim 4) and conf (last dim 2)
    def split(outs):
        outs = [o for o in outs if o is not None]
        loc = next(o for o in outs if o.shape[-1] == 4)
        conf = next(o for o in outs if o.shape[-1] == 2)
        lm = next((o for o in outs if o.shape[-1] == 10), None)
        return loc, conf, lm

    def detect():
        p = prepare(pre, img)
        loc, conf, lm = split(run(p.tensor[None]))
        h, w = p.tensor.shape[1:]
        return postprocess(loc[0], conf[0], None if lm is None else lm[0], rec.priors(h, w),
                           rec.priors.variances, rec.detection, p.to_pixels)

    def median(fn):
        for _ in range(10):
            fn()
        t = []
        for _ in range(runs):
            s = time.perf_counter()
            fn()
            t.append((time.perf_counter() - s) * 1000)
        return statistics.median(t)
    net_ms = median(lambda: run(x))
    e2e_ms = median(detect)
    print(json.dumps({"net": net_ms, "e2e": e2e_ms, "faces": len(detect()[1])}))


def lite_worker(model, export_dir, runs, image):
    """Lite runs in the 3.10 toolchain: the network through lite_tool.py, the rest here."""
    from paddleface.export import run_lite
    from paddleface.image_io import read_image
    from paddleface.postprocess import postprocess
    from paddleface.preprocess import prepare
    from paddleface.registry import get_record
    rec = get_record(model)
    size = SIZES.get(model, rec.preprocess.size)
    img = read_image(image)
    pre = bench_preprocess(rec, size)
    p = prepare(pre, img)
    outs, net_ms = run_lite(Path(export_dir) / "lite" / "model_x86.nb", p.tensor[None],
                            3 if rec.landmarks else 2, repeat=runs)
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        q = prepare(pre, img)
        h, w = q.tensor.shape[1:]
        postprocess(outs[0][0], outs[1][0], outs[2][0] if len(outs) > 2 else None,
                    rec.priors(h, w), rec.priors.variances, rec.detection, q.to_pixels)
        t.append((time.perf_counter() - s) * 1000)
    print(json.dumps({"net": net_ms, "e2e": net_ms + statistics.median(t)}))


def export_all(model, d: Path):
    from paddleface.export import export_model
    from paddleface.registry import get_record
    rec = get_record(model)
    size = SIZES.get(model)
    sizes = {}
    for fmt in ("inference", "onnx", "lite"):
        try:
            export_model(rec, fmt, d / fmt, input_size=size)
        except Exception as e:  # a missing toolchain leaves that column empty
            print(f"# {model}: {fmt} export failed: {e}", file=sys.stderr)
            continue
        files = {"inference": ["model.json", "model.pdiparams"], "onnx": ["model.onnx"],
                 "lite": ["model_x86.nb"]}[fmt]
        sizes[fmt] = sum((d / fmt / f).stat().st_size for f in files if (d / fmt / f).exists())
    return sizes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["ulfd-slim-320", "ulfd-rfb-320", "rfb-lm"])
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image", default=None)
    ap.add_argument("--worker", nargs=4, metavar=("BACKEND", "MODEL", "THREADS", "DIR"))
    args = ap.parse_args()
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    image = args.image or str(shared / "images" / "crowd.jpg")
    if args.worker:
        b, m, t, d = args.worker
        if b == "lite-x86":
            return lite_worker(m, d, args.runs, image)
        return worker(b, m, int(t), d, args.runs, image)
    print(f"{'model':14} {'backend':18} {'thr':>3} {'net ms':>8} {'e2e ms':>8} {'file KB':>8}")
    ratios = []
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            sizes = export_all(model, Path(tmp))
            for threads in args.threads:
                backends = [b for b in args.backends
                            if b != "lite-x86" or threads == args.threads[0]]
                best, failed = {}, {}
                for _ in range(args.repeats):
                    for b in backends:
                        r = subprocess.run([sys.executable, __file__, "--runs", str(args.runs),
                                            "--image", image, "--worker", b, model, str(threads),
                                            tmp], capture_output=True, text=True)
                        if r.returncode != 0:
                            failed[b] = r.stderr.strip()[-200:]
                            continue
                        res = json.loads(r.stdout.strip().splitlines()[-1])
                        old = best.get(b, {"net": float("inf"), "e2e": float("inf")})
                        best[b] = {k: min(old[k], res[k]) for k in ("net", "e2e")}
                for b in backends:
                    thr = "-" if b == "lite-x86" else str(threads)
                    if b not in best:
                        print(f"{model:14} {b:18} {thr:>3}   failed: {failed.get(b)}")
                        continue
                    fmt = {"dygraph": None, "inference": "inference", "inference-onednn": "inference",
                           "lite-x86": "lite", "onnxruntime": "onnx", "opencv-dnn": "onnx"}[b]
                    kb = f"{sizes[fmt] / 1024:.0f}" if fmt in sizes else "-"
                    print(f"{model:14} {b:18} {thr:>3} {best[b]['net']:8.2f} {best[b]['e2e']:8.2f} "
                          f"{kb:>8}", flush=True)
                if "inference-onednn" in best and "onnxruntime" in best:
                    ratios.append((model, threads,
                                   best["inference-onednn"]["net"] / best["onnxruntime"]["net"]))
    for model, threads, ratio in ratios:
        print(f"Paddle Inference (oneDNN) / ONNX Runtime, {model}, {threads} thread(s): "
              f"{ratio:.2f}x (goal 1.2x)")


if __name__ == "__main__":
    main()
