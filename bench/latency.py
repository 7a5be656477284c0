"""Latency of one graph on every CPU engine, as ratios to the default (engine="auto") one.

    python bench/latency.py [--models ID ... | all] [--threads 1 2]
        [--engines ...] [--runs 300] [--rounds 3] [--warmup 20]

    # every id at its default input, ONNX Runtime only, fp32 beside int8:
    python bench/latency.py --models all --engines onnxruntime onnxruntime-int8 --threads 1

Every engine runs the same network: Paddle Inference (oneDNN on and off) its static graph,
ONNX Runtime and OpenCV DNN our paddle2onnx export, ncnn that export converted by pnnx, MNN
that export converted by MNNConvert, Paddle Lite x86 the .nb of the same weights, dygraph the
network itself; "onnxruntime-int8" is the int8 QDQ model ``precision="int8"`` runs (calibrated
on the shared photos other than the bench photo). Every model runs at its default input for
the bench photo (crowd.jpg, 1600x898): the fixed-size ones at their size, the any-size ones
(e.g. rfb-lm, retinaface-r50) at long side 640 (640x359), the letterboxed ones at the
letterbox (640x368 for blazeface-640). "GMAC" counts the convolutions' multiply-accumulates at
that input (paddleface.profile); "GMAC/s" divides them by the network's fastest-round median
wall time, "/CPU-s" by its CPU time per run (time.process_time; with 1 thread it is immune to
other processes taking the core, with more it also counts ONNX Runtime's spinning threads).
Ids without published weights run a freshly initialised network (speed does not depend on
the values).
The engines besides Paddle and ONNX Runtime are benchmark extras: bench/requirements.txt.

Each (model, engine, threads) runs in its own process: the median of --runs runs after --warmup
(20) warm-up runs. The engines run in interleaved rounds (the order rotating each round), so a
load change on a shared machine hits every engine alike; the table keeps each engine's fastest
round and the median over rounds of its ratio to the default engine in the same round. "e2e" is
the whole detection of the decoded photo with paddleface's numpy pre- and post-processing (the
same for every engine); "diff" is the largest absolute output
difference from the dygraph network. Lite's Python API sets no thread count (its x86
kernels choose), so Lite is listed once, under the first thread count.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENGINES = ["onnxruntime", "onnxruntime-int8", "ncnn", "mnn", "opencv-dnn", "inference-onednn", "inference",
           "lite-x86", "dygraph"]
# the bench's name for each FaceDetector engine
DETECTOR_ENGINE = {"onnxruntime": "onnxruntime", "inference": "inference-onednn",
                   "dygraph": "dygraph"}


def model_size(model, image):
    """(width, height) the model runs at here: the input its own preprocessing makes of
    ``image`` (fixed size, long side 640, or the letterbox)."""
    from paddleface.image_io import read_image
    from paddleface.preprocess import prepare
    from paddleface.registry import get_record
    h, w = prepare(get_record(model).preprocess, read_image(image)).tensor.shape[1:]
    return w, h


def weights_for(model, d: Path):
    """The model's weights file: resolved as FaceDetector does, or (ids without published
    weights) a freshly initialised network saved under ``d``."""
    from paddleface.registry import get_record
    rec = get_record(model)
    if rec.checkpoint is not None:
        return None
    path = d / "init.pdparams"
    if not path.is_file():
        import paddle
        paddle.seed(0)
        net = rec.build()
        net.eval()
        paddle.save(net.state_dict(), str(path))
    return str(path)


def bench_preprocess(rec, size):
    """The record's preprocessing with a fixed (width, height) resize: every engine runs the
    exported graph's input shape."""
    from dataclasses import replace
    return replace(rec.preprocess, resize="fixed", size=size)


def load_engine(engine, model, threads, d: Path):
    """A function (1, 3, H, W) float32 -> list of outputs, each (1, P, k)."""
    import numpy as np
    if engine == "dygraph":
        import paddle
        paddle.set_device("cpu")
        from paddleface.detector import load_network
        from paddleface.engine import DygraphEngine
        from paddleface.registry import get_record
        eng = DygraphEngine(load_network(get_record(model), weights_for(model, d))[0])
        return lambda x: [o for o in eng(x) if o is not None]
    if engine == "onnxruntime-int8":
        from paddleface.engine import OnnxRuntimeEngine
        eng = OnnxRuntimeEngine(d / "int8" / "model.onnx", threads)
        return lambda x: [o for o in eng(x) if o is not None]
    if engine.startswith("inference"):
        from paddleface.engine import InferenceEngine
        from paddleface.registry import get_record
        eng = InferenceEngine(d / "inference" / "model", "cpu", threads,
                              onednn=engine.endswith("onednn"),
                              skip_passes=get_record(model).onednn_skip_passes)
        return lambda x: [o for o in eng(x) if o is not None]
    if engine == "onnxruntime":
        from paddleface.engine import OnnxRuntimeEngine
        eng = OnnxRuntimeEngine(d / "onnx" / "model.onnx", threads)
        return lambda x: [o for o in eng(x) if o is not None]
    if engine == "opencv-dnn":
        import cv2
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromONNX(str(d / "onnx" / "model.onnx"))
        names = net.getUnconnectedOutLayersNames()

        def run(x):
            net.setInput(x)
            return list(net.forward(names))
        return run
    if engine == "ncnn":
        import ncnn
        net = ncnn.Net()
        net.opt.num_threads = threads
        net.opt.use_vulkan_compute = False
        net.load_param(str(d / "ncnn" / "model.ncnn.param"))
        net.load_model(str(d / "ncnn" / "model.ncnn.bin"))
        n_out = sum(1 for line in (d / "ncnn" / "model.ncnn.param").read_text().split()
                    if line.startswith("out") and line[3:].isdigit())

        def run(x):
            ex = net.create_extractor()
            ex.input("in0", ncnn.Mat(x[0]))
            return [np.array(ex.extract(f"out{i}")[1])[None] for i in range(n_out)]
        return run
    if engine == "mnn":
        import MNN.expr as F
        import MNN.nn as nn
        from paddleface.onnx_export import INPUT_NAME, output_names
        from paddleface.registry import get_record
        names = list(output_names(get_record(model)))
        rt = nn.create_runtime_manager(({"numThread": threads, "precision": "high",
                                         "backend": 0},))
        net = nn.load_module_from_file(str(d / "mnn" / "model.mnn"), [INPUT_NAME], names,
                                       runtime_manager=rt)

        def run(x):
            outs = net.forward([F.const(x, list(x.shape), F.NCHW)])
            return [np.array(o.read()) for o in outs]
        return run
    raise SystemExit(f"unknown engine {engine}")


def split_outputs(outs):
    """(loc, conf, landms or None) from outputs in any order: by their last dimension."""
    loc = next(o for o in outs if o.shape[-1] == 4)
    conf = next(o for o in outs if o.shape[-1] == 2)
    return loc, conf, next((o for o in outs if o.shape[-1] == 10), None)


WARMUP = 20  # runs before timing (--warmup; fewer for the big models on a loaded machine)


def median_ms(fn, runs, warmup=None, cpu=None):
    """Median wall ms of ``fn`` over ``runs``; with ``cpu`` (a list) also appends the mean
    CPU ms per run of this process."""
    warmup = WARMUP if warmup is None else warmup
    for _ in range(warmup):
        fn()
    times = []
    c0 = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    if cpu is not None:
        cpu.append((time.process_time() - c0) / runs * 1000)
    return statistics.median(times)


def worker(engine, model, threads, d: Path, runs, image):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2
    import numpy as np
    from paddleface.image_io import read_image
    from paddleface.postprocess import postprocess
    from paddleface.preprocess import prepare
    from paddleface.registry import get_record
    cv2.setNumThreads(1 if engine != "opencv-dnn" else threads)
    rec = get_record(model)
    pre = bench_preprocess(rec, model_size(model, image))
    img = read_image(image)
    ref = np.load(d / "reference.npz")
    if engine == "lite-x86":
        return lite_worker(rec, pre, img, d, runs, ref)
    run = load_engine(engine, model, threads, d)
    x = prepare(pre, img).tensor[None]
    diff = max(float(np.abs(a - ref[k]).max())
               for k, a in zip(("loc", "conf", "landms"), split_outputs(run(x))) if a is not None)

    def detect():
        p = prepare(pre, img)
        loc, conf, lm = split_outputs(run(p.tensor[None]))
        h, w = p.tensor.shape[1:]
        return postprocess(loc[0], conf[0], None if lm is None else lm[0], rec.priors(h, w),
                           rec.priors.variances, rec.detection, p.to_pixels)
    cpu = []
    net_ms = median_ms(lambda: run(x), runs, cpu=cpu)
    e2e_ms = median_ms(detect, max(min(20, runs), runs // 3))
    print(json.dumps({"net": net_ms, "cpu": cpu[0], "e2e": e2e_ms, "diff": diff,
                      "faces": len(detect()[1])}))


def lite_worker(rec, pre, img, d: Path, runs, ref):
    """Lite runs in the 3.10 toolchain (the network through lite_tool.py), the rest here."""
    import numpy as np
    from paddleface.export import run_lite
    from paddleface.postprocess import postprocess
    from paddleface.preprocess import prepare
    p = prepare(pre, img)
    outs, net_ms = run_lite(d / "lite" / "model_x86.nb", p.tensor[None],
                            3 if rec.landmarks else 2, repeat=runs)
    diff = max(float(np.abs(a - ref[k]).max()) for k, a in zip(("loc", "conf", "landms"), outs))
    h, w = p.tensor.shape[1:]

    def pipeline():
        q = prepare(pre, img)
        postprocess(outs[0][0], outs[1][0], outs[2][0] if len(outs) > 2 else None,
                    rec.priors(h, w), rec.priors.variances, rec.detection, q.to_pixels)
    print(json.dumps({"net": net_ms, "cpu": None, "e2e": net_ms + median_ms(pipeline, runs),
                      "diff": diff}))


def convert(model, d: Path, engines, image):
    """Every file the engines read, under ``d``; returns {engine: why it cannot run}."""
    import numpy as np
    import paddle

    from paddleface.detector import load_network
    from paddleface.export import export_model
    from paddleface.image_io import read_image
    from paddleface.preprocess import prepare
    from paddleface.registry import get_record
    from paddleface.profile import count_macs
    rec = get_record(model)
    w, h = size = model_size(model, image)
    unavailable = {}
    weights = weights_for(model, d)
    net, _ = load_network(rec, weights)
    (d / "gmac.json").write_text(json.dumps(count_macs(net, size) / 1e9))
    x = prepare(bench_preprocess(rec, size), read_image(image)).tensor[None]
    with paddle.no_grad():
        ref = [t.numpy() for t in net(paddle.to_tensor(x)) if t is not None]
    np.savez(d / "reference.npz", **dict(zip(("loc", "conf", "landms"), ref)))
    formats = {"inference": "inference", "inference-onednn": "inference", "onnxruntime": "onnx",
               "opencv-dnn": "onnx", "ncnn": "onnx", "mnn": "onnx", "lite-x86": "lite",
               "onnxruntime-int8": "int8"}
    for fmt in dict.fromkeys(formats[e] for e in engines if e in formats):
        try:
            if fmt == "int8":
                from paddleface.quantize import quantize_onnx
                if not (d / "onnx" / "model.onnx").is_file():
                    export_model(rec, "onnx", d / "onnx", weights=weights, input_size=size,
                                 check_image=image)
                photos = [p for p in sorted(Path(image).parent.glob("*.jpg")) if p != Path(image)]
                quantize_onnx(rec, d / "onnx" / "model.onnx", d / "int8" / "model.onnx", photos,
                              input_size=size)
                continue
            export_model(rec, fmt, d / fmt, weights=weights, input_size=size, check_image=image)
        except Exception as e:  # a missing toolchain leaves that engine out
            unavailable.update({e_: f"{fmt} export failed: {e}" for e_ in engines
                                if formats.get(e_) == fmt})
    onnx = d / "onnx" / "model.onnx"
    # fp16=0: pnnx stores ncnn weights as fp16 unless told, which is not the same graph
    tools = {"ncnn": ("pnnx", lambda exe: [exe, str(d / "ncnn" / "model.onnx"),
                                           f"inputshape=[1,3,{h},{w}]", "fp16=0"]),
             "mnn": ("mnnconvert", lambda exe: [exe, "-f", "ONNX", "--modelFile", str(onnx),
                                                "--MNNModel", str(d / "mnn" / "model.mnn"),
                                                "--bizCode", "paddleface"])}
    for engine, (tool, cmd) in tools.items():
        if engine not in engines or engine in unavailable:
            continue
        exe = shutil.which(tool) or str(Path(sys.executable).parent / tool)
        if not Path(exe).is_file():
            unavailable[engine] = f"{tool} not found (pip install -r bench/requirements.txt)"
            continue
        (d / engine).mkdir()
        if engine == "ncnn":  # pnnx writes beside its input (and turns '-' in names into '_')
            shutil.copy(onnx, d / "ncnn" / "model.onnx")
        r = subprocess.run(cmd(exe), capture_output=True, text=True, cwd=d / engine)
        if r.returncode != 0:
            unavailable[engine] = f"{tool} failed: {(r.stderr or r.stdout).strip()[-300:]}"
    return unavailable


def file_kb(d: Path, engine):
    files = {"inference": ["inference/model.json", "inference/model.pdiparams"],
             "onnxruntime": ["onnx/model.onnx"], "ncnn": ["ncnn/model.ncnn.param",
                                                         "ncnn/model.ncnn.bin"],
             "mnn": ["mnn/model.mnn"], "lite-x86": ["lite/model_x86.nb"],
             "onnxruntime-int8": ["int8/model.onnx"]}
    files["inference-onednn"] = files["inference"]
    files["opencv-dnn"] = files["onnxruntime"]
    paths = [d / f for f in files.get(engine, [])]
    return f"{sum(p.stat().st_size for p in paths) / 1024:.0f}" if paths and all(
        p.is_file() for p in paths) else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["ulfd-rfb-320", "ulfd-slim-320", "rfb-lm"],
                    help="registry ids, or 'all' for every id")
    ap.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs before the timed ones")
    ap.add_argument("--image", default=None)
    ap.add_argument("--workdir", help="keep the exported files in WORKDIR/MODEL and reuse them "
                                      "(big models: the exports take minutes)")
    ap.add_argument("--worker", nargs=4, metavar=("ENGINE", "MODEL", "THREADS", "DIR"))
    args = ap.parse_args()
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    image = args.image or str(shared / "images" / "crowd.jpg")
    global WARMUP
    WARMUP = args.warmup
    if args.worker:
        e, m, t, d = args.worker
        return worker(e, m, int(t), Path(d), args.runs, image)
    from paddleface.engine import choose_engine
    from paddleface.registry import REGISTRY, get_record
    models = list(REGISTRY) if args.models == ["all"] else args.models
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'model':24} {'engine':17} {'thr':>3} {'net ms':>7} {'CPU ms':>7} {'e2e ms':>7} "
          f"{'/default':>8} {'GMAC':>6} {'GMAC/s':>6} {'/CPU-s':>6} {'diff':>8} {'file KB':>7}")
    rates = {}  # (model, engine, threads) -> GMAC per CPU-second
    for model in models:
        default = DETECTOR_ENGINE[choose_engine(get_record(model), "cpu")[0]]
        engines = list(dict.fromkeys([default] + args.engines))
        with tempfile.TemporaryDirectory() as tmp:
            if args.workdir:  # keep the exports; a folder that has them is not converted again
                tmp = str(Path(args.workdir) / model)
                Path(tmp).mkdir(parents=True, exist_ok=True)
            d = Path(tmp)
            unavailable = ({} if (d / "reference.npz").is_file() and args.workdir
                           else convert(model, d, engines, image))
            for threads in args.threads:
                todo = [e for e in engines if e not in unavailable
                        and (e != "lite-x86" or threads == args.threads[0])]
                results = {e: [] for e in todo}
                failed = dict(unavailable)
                for rnd in range(args.rounds):
                    order = todo[rnd % len(todo):] + todo[:rnd % len(todo)]
                    for e in order:
                        r = subprocess.run([sys.executable, __file__, "--runs", str(args.runs),
                                            "--warmup", str(args.warmup),
                                            "--image", image, "--worker", e, model,
                                            str(threads), tmp], capture_output=True, text=True)
                        if r.returncode != 0:
                            failed[e] = r.stderr.strip()[-300:]
                            results[e].append(None)
                            continue
                        results[e].append(json.loads(r.stdout.strip().splitlines()[-1]))
                size = model_size(model, image)
                label = model if get_record(model).preprocess.resize == "fixed" \
                    else f"{model}@{size[0]}x{size[1]}"
                gmac = (json.loads((d / "gmac.json").read_text()) if (d / "gmac.json").is_file()
                        else float("nan"))  # a --workdir of an older version of this bench
                base = results.get(default, [])
                for e in engines:
                    thr = "-" if e == "lite-x86" else str(threads)
                    runs = [r for r in results.get(e, []) if r]
                    if not runs:
                        if e != "lite-x86" or threads == args.threads[0]:
                            print(f"{label:16} {e:17} {thr:>3}   not run: {failed.get(e)}")
                        continue
                    ratios = [r["net"] / b["net"] for r, b in zip(results[e], base) if r and b]
                    ratio = f"{statistics.median(ratios):.2f}x" if ratios else "-"
                    net = min(r["net"] for r in runs)
                    cpus = [r["cpu"] for r in runs if r.get("cpu")]
                    cpu = min(cpus) if cpus else None
                    if cpu:
                        rates[(model, e, threads)] = gmac / cpu * 1000
                    print(f"{label:24} {e:17} {thr:>3} {net:7.2f} "
                          f"{(f'{cpu:7.2f}' if cpu else '      -')} "
                          f"{min(r['e2e'] for r in runs):7.2f} {ratio:>8} {gmac:6.3f} "
                          f"{gmac / net * 1000:6.1f} "
                          f"{(f'{gmac / cpu * 1000:6.1f}' if cpu else '     -')} "
                          f"{runs[0]['diff']:8.1e} {file_kb(d, e):>7}", flush=True)
                ranked = sorted((statistics.median(
                    [r["net"] / b["net"] for r, b in zip(results[e], base) if r and b] or
                    [float("inf")]), e) for e in results)
                print(f"# {label}, {threads} thread(s): fastest {ranked[0][1]}; the default "
                      f"({default}) is {'the fastest' if ranked[0][1] == default else 'not the fastest'}")
    ref = "ulfd-rfb-320"
    for (model, e, threads), rate in rates.items():
        base = rates.get((ref, e, threads))
        if base and model != ref:
            print(f"# {model} {e} {threads} thread(s): {rate:.1f} GMAC per CPU-second, "
                  f"{base / rate:.2f}x below {ref}'s {base:.1f}" if rate < base else
                  f"# {model} {e} {threads} thread(s): {rate:.1f} GMAC per CPU-second, "
                  f"at or above {ref}'s {base:.1f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
