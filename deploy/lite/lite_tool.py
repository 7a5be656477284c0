"""Runs inside the Paddle Lite toolchain (Python 3.10, paddlepaddle 2.6.2, paddlelite 2.13rc0).

    python deploy/lite/lite_tool.py export ID WEIGHTS.pdparams OUT_DIR WxH [--int8]
    python deploy/lite/lite_tool.py run MODEL.nb INPUT.npy OUTPUT.npz [--outputs 2|3] [--repeat N]
    python deploy/lite/lite_tool.py run-many ID MODEL.nb IMAGES.npz OUTPUT.npz

``export`` builds the network with paddleface's model code under paddle 2.6.2, writes the old
``model.pdmodel`` format with ``paddle.jit.save`` and converts it with Lite's ``opt`` to
``model_x86.nb`` and ``model_arm.nb`` (``--int8``: opt's int8 weight quantization as well).
``run`` executes a .nb file with Lite's MobileConfig predictor (its Python API sets no thread
count: Lite's x86 kernels pick their own).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def export(args):
    import paddle
    from paddlelite.lite import Opt

    from paddleface.registry import get_record
    from paddleface.weights import load_weights
    record = get_record(args.id)
    w, h = (int(v) for v in args.size.split("x"))
    net = record.build()
    load_weights(net, Path(args.weights), record)
    net.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(net, str(out / "model"),
                    input_spec=[paddle.static.InputSpec([1, 3, h, w], "float32", "image")])
    written = {}
    targets = [("x86", "model_x86"), ("arm", "model_arm")]
    if args.int8:
        targets += [("x86", "model_x86_int8"), ("arm", "model_arm_int8")]
    for place, name in targets:
        opt = Opt()
        opt.set_model_file(str(out / "model.pdmodel"))
        opt.set_param_file(str(out / "model.pdiparams"))
        opt.set_valid_places(place)
        opt.set_model_type("naive_buffer")
        opt.set_optimize_out(str(out / name))
        if name.endswith("int8"):
            opt.set_quant_model(True)
            opt.set_quant_type("QUANT_INT8")
        opt.run()
        nb = out / f"{name}.nb"
        if not nb.is_file():
            raise SystemExit(f"lite_tool: opt did not write {nb}")
        written[name] = nb.stat().st_size
    print(json.dumps({"paddle": paddle.__version__, "nb_bytes": written}))


def run(args):
    from paddlelite.lite import MobileConfig, create_paddle_predictor
    cfg = MobileConfig()
    cfg.set_model_from_file(args.model)
    predictor = create_paddle_predictor(cfg)
    x = np.load(args.input).astype(np.float32)
    predictor.get_input(0).from_numpy(x)
    times = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        predictor.run()
        times.append(time.perf_counter() - t)
    # asking for an output past the last one aborts the process: the caller says how many
    outs = {f"out{i}": np.array(predictor.get_output(i).numpy()) for i in range(args.outputs)}
    np.savez(args.output, median_ms=np.median(times) * 1000, **outs)


def run_many(args):
    """Every uint8 image (H x W x 3, already resized) of IMAGES.npz, normalised as the record says,
    through the .nb model; outputs saved per key."""
    from paddlelite.lite import MobileConfig, create_paddle_predictor

    from paddleface.preprocess import normalize
    from paddleface.registry import get_record
    record = get_record(args.id)
    cfg = MobileConfig()
    cfg.set_model_from_file(args.model)
    predictor = create_paddle_predictor(cfg)
    images = np.load(args.images)
    n_out = 3 if record.landmarks else 2
    results = {}
    for key in images.files:
        predictor.get_input(0).from_numpy(normalize(record.preprocess, images[key])[None])
        predictor.run()
        for i in range(n_out):
            results[f"{key}/{i}"] = np.array(predictor.get_output(i).numpy())[0]
    np.savez(args.output, **results)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("id")
    e.add_argument("weights")
    e.add_argument("out")
    e.add_argument("size")
    e.add_argument("--int8", action="store_true")
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("input")
    r.add_argument("output")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--outputs", type=int, default=2, help="2 (loc, conf) or 3 (with landms)")
    m = sub.add_parser("run-many")
    m.add_argument("id")
    m.add_argument("model")
    m.add_argument("images")
    m.add_argument("output")
    args = p.parse_args()
    {"export": export, "run": run, "run-many": run_many}[args.cmd](args)


if __name__ == "__main__":
    main()
