"""Runs inside the Paddle Lite toolchain (Python 3.10, paddlepaddle 2.6.2, paddlelite 2.13rc0).

    python deploy/lite/lite_tool.py export ID WEIGHTS.pdparams OUT_DIR WxH [--int8] [--calib IMAGES.npz]
    python deploy/lite/lite_tool.py run MODEL.nb INPUT.npy OUTPUT.npz [--outputs 2|3] [--repeat N]
    python deploy/lite/lite_tool.py run-many ID MODEL.nb IMAGES.npz OUTPUT.npz

``export`` builds the network with paddleface's model code under paddle 2.6.2, writes the old
``model.pdmodel`` format with ``paddle.jit.save`` (kept in OUT_DIR for Paddle Inference),
tidies a copy of the program for Lite (see ``fold_conv_bias``) and converts it with Lite's
``opt`` to ``model_x86.nb`` and ``model_arm.nb``; ``arm_kernels.txt`` lists the ARM kernels
the ARM files need (deploy/lite/arm_kernels.txt, build_arm.sh). ``--int8`` adds
``model_{x86,arm}_int8_weights.nb`` (opt's int8 weight quantization: int8 storage, fp32
compute); ``--calib`` adds ``model_{x86,arm}_int8.nb``
(post-training quantization calibrated on the given images: int8 weights and activations).
Every .nb is then rewritten smaller (``shrink_nb``, deploy/lite/nb_format.py): the program
opt wrote, without the attribute fields and attributes the runtime does not read, with shared
strings; an x86 file is kept rewritten only if it gives outputs equal to opt's file.
``run`` executes a .nb file with Lite's MobileConfig predictor (its Python API sets no thread
count: Lite's x86 kernels pick their own).
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nb_format  # noqa: E402

# Attributes Lite's ops do not read (framework and quantization-tool bookkeeping; opt derives
# the int8 scales it needs from the quant ops), and attributes whose value is Lite's default.
# Each costs ~100 bytes of .nb (flatbuffers): 23 KB of the int8 ulfd-rfb-320 file.
BOOKKEEPING_ATTRS = ("op_callstack", "op_role", "op_role_var", "op_namescope", "op_device",
                     "with_quant_attr", "out_threshold", "Out0_threshold", "Output0_threshold",
                     "quantization_type")
DEFAULT_ATTRS = {"data_format": ("NCHW", "AnyLayout"), "padding_algorithm": ("EXPLICIT",)}
QUANTIZED_OPS = ["conv2d", "depthwise_conv2d"]


def fold_conv_bias(program) -> int:
    """Feed each conv bias (shape [C]) straight to its ``elementwise_add`` with ``axis=1``.

    paddle 2.6 writes a biased conv as conv2d -> reshape2(bias to [1, C, 1, 1]) ->
    elementwise_add(axis=-1). Lite's opt does not fold the constant reshape: it keeps one
    reshape op per biased conv (17 in ulfd-rfb-320), cannot fuse the add into the conv, and the
    x86 int8 program it makes from that pattern crashes. Returns the number of folded reshapes.
    """
    block = program.global_block()
    folded = 0
    for i in reversed(range(len(block.ops))):
        op = block.ops[i]
        if op.type != "reshape2" or not block.var(op.input("X")[0]).persistable:
            continue
        bias, reshaped = op.input("X")[0], op.output("Out")[0]
        users = [u for u in block.ops if reshaped in u.input_arg_names]
        if not users or any(u.type != "elementwise_add" or u.input("Y") != [reshaped]
                            for u in users) or len(block.var(bias).shape) != 1:
            continue
        for u in users:
            u._rename_input(reshaped, bias)
            u._set_attr("axis", 1)
        block._remove_op(i)
        folded += 1
    return folded


def strip_bookkeeping(program) -> None:
    for op in program.global_block().ops:
        for name in BOOKKEEPING_ATTRS:
            if op.has_attr(name):
                op._remove_attr(name)
        for name, defaults in DEFAULT_ATTRS.items():
            if op.has_attr(name) and op.attr(name) in defaults:
                op._remove_attr(name)


def tidy_for_lite(src_prefix: str, dst_prefix: str, strip: bool = True) -> int:
    """Load a saved inference model, fold conv biases, drop bookkeeping attributes (which
    Paddle's quantization passes still read: ``strip=False`` for their input), save."""
    import paddle
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        program, feeds, fetches = paddle.static.load_inference_model(src_prefix, exe)
        folded = fold_conv_bias(program)
        if strip:
            strip_bookkeeping(program)
        program._sync_with_cpp()
        block = program.global_block()
        paddle.static.save_inference_model(dst_prefix, [block.var(f) for f in feeds], fetches,
                                           exe, program=program)
    return folded


def give_weights_headroom(program, scope) -> None:
    """Requantize the int8 conv weights to 7 bits (kept in int8, scale doubled).

    Lite's x86 int8 convolution multiplies unsigned 8-bit activations by signed 8-bit weights
    with a saturating 16-bit pairwise sum (255 * 127 * 2 > 32767): with full-range weights the
    x86 .nb of ulfd-rfb-320 lost 0.14 Easy AP. Weights within +-64 cannot saturate (255 * 64 * 2
    < 32767). The ARM kernels need no headroom: they multiply signed int8 activations (within
    +-127) by int8 weights, smull + smlal summing two products in int16 (2 * 127 * 127 <
    32767), or sdot in int32; the ARM file keeps the full 8-bit weights.
    """
    import paddle
    block = program.global_block()
    producer = {name: op for op in block.ops for name in op.output_arg_names}
    for op in block.ops:
        if op.type != "fake_channel_wise_dequantize_max_abs":
            continue
        conv = producer[op.input("X")[0]]
        weight = scope.find_var(conv.input("Filter")[0]).get_tensor()
        scales = scope.find_var(op.input("Scales")[0]).get_tensor()
        w = np.array(weight)
        weight.set(np.round(w / 2).astype(w.dtype), paddle.CPUPlace())
        scales.set((np.array(scales) * 2).astype(np.float32), paddle.CPUPlace())


def quantize_post_training(record, src_prefix: str, calib: Path, dst_prefix: str,
                           headroom_prefix: str) -> int:
    """Paddle's post-training quantization of the conv layers (int8 weights per channel, int8
    activations per tensor from histograms of the calibration images), saved to
    ``dst_prefix`` (for ARM) and with weight headroom to ``headroom_prefix`` (for x86).
    Returns the number of calibration images."""
    import paddle
    from paddle.static.quantization import PostTrainingQuantization

    from paddleface.preprocess import normalize
    images = np.load(calib)
    keys = images.files

    class Calibration(paddle.io.Dataset):
        def __len__(self):
            return len(keys)

        def __getitem__(self, i):
            return {"image": normalize(record.preprocess, images[keys[i]])}

    src, dst = Path(src_prefix), Path(dst_prefix)
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        ptq = PostTrainingQuantization(
            executor=exe, model_dir=str(src.parent), model_filename=src.name + ".pdmodel",
            params_filename=src.name + ".pdiparams", scope=scope,
            data_loader=paddle.io.DataLoader(Calibration(), batch_size=1, shuffle=False),
            batch_nums=len(keys), algo="hist", quantizable_op_type=QUANTIZED_OPS,
            weight_quantize_type="channel_wise_abs_max", optimize_model=True, onnx_format=False)
        program = ptq.quantize()
        ptq.save_quantized_model(str(dst.parent), model_filename=dst.name + ".pdmodel",
                                 params_filename=dst.name + ".pdiparams")
        give_weights_headroom(program, scope)
        head = Path(headroom_prefix)
        ptq.save_quantized_model(str(head.parent), model_filename=head.name + ".pdmodel",
                                 params_filename=head.name + ".pdiparams")
    return len(keys)


def arm_kernel_lines(record_dir: Path) -> list:
    """The kernels opt recorded for one ARM model (``record_model_info``), as lines of
    deploy/lite/arm_kernels.txt: kernel, kernel source, op source."""
    def lines(name):
        return (record_dir / name).read_text().split()
    kernels, kernel_srcs = lines(".tailored_kernels_list"), lines(".tailored_kernels_source_list")
    op_src = dict(zip(lines(".tailored_ops_list"), lines(".tailored_ops_source_list")))
    return [f"{k} {src} {op_src[k.split(',')[0]]}" for k, src in zip(kernels, kernel_srcs)]


def predict(nb: Path, x: np.ndarray, n_outputs: int) -> list:
    from paddlelite.lite import MobileConfig, create_paddle_predictor
    cfg = MobileConfig()
    cfg.set_model_from_file(str(nb))
    predictor = create_paddle_predictor(cfg)
    predictor.get_input(0).from_numpy(x)
    predictor.run()
    return [np.array(predictor.get_output(i).numpy()) for i in range(n_outputs)]


def shrink_nb(nb: Path, probe: np.ndarray = None, n_outputs: int = 2) -> dict:
    """Rewrite opt's ``nb`` with a smaller program (``nb_format.shrink_program``); parameters
    are kept byte for byte. With ``probe`` (an input, for an x86 file) the rewritten file must
    give outputs equal to opt's file, else opt's file is kept. Returns the program bytes
    before and after."""
    header, program, params = nb_format.split_nb(nb.read_bytes())
    shrunk = nb_format.shrink_program(nb_format.decode(program))
    new = nb_format.encode(shrunk)
    if nb_format.decode(new) != shrunk:
        raise SystemExit(f"lite_tool: the rewritten program of {nb} does not read back")
    tmp = nb.with_name(nb.stem + ".rewritten.nb")
    tmp.write_bytes(nb_format.join_nb(header, new, params))
    if probe is not None:
        same = all(np.array_equal(a, b) for a, b in zip(predict(nb, probe, n_outputs),
                                                        predict(tmp, probe, n_outputs)))
        if not same:
            tmp.unlink()
            print(f"lite_tool: the rewritten {nb.name} computes other outputs; opt's file kept",
                  file=sys.stderr)
            return {"program_opt": len(program), "program": len(program)}
    os.replace(tmp, nb)
    return {"program_opt": len(program), "program": len(new)}


def run_opt(prefix: Path, place: str, out: Path, weight_int8: bool = False,
            arm_kernels: set = None, probe: np.ndarray = None, n_outputs: int = 2,
            programs: dict = None) -> int:
    """opt to ``out``.nb, then ``shrink_nb`` (``probe``: an input that checks the rewrite of an
    x86 file; the program bytes go to ``programs``); for ARM, the kernels the file needs are
    added to ``arm_kernels`` (build_arm.sh builds the ARM runtime with a listed set of kernels
    only)."""
    from paddlelite.lite import Opt
    opt = Opt()
    opt.set_model_file(str(prefix) + ".pdmodel")
    opt.set_param_file(str(prefix) + ".pdiparams")
    opt.set_valid_places(place)
    opt.set_model_type("naive_buffer")
    opt.set_optimize_out(str(out))
    if weight_int8:
        opt.set_quant_model(True)
        opt.set_quant_type("QUANT_INT8")
    if arm_kernels is not None:
        opt.record_model_info(True)  # writes the lists into the folder ``out``
    opt.run()
    if arm_kernels is not None:
        arm_kernels.update(arm_kernel_lines(out))
        shutil.rmtree(out, ignore_errors=True)
    nb = out.with_suffix(".nb")
    if not nb.is_file():
        raise SystemExit(f"lite_tool: opt did not write {nb}")
    bytes_ = shrink_nb(nb, probe if place == "x86" else None, n_outputs)
    if programs is not None:
        programs[out.name] = bytes_
    return nb.stat().st_size


def export(args):
    import paddle

    from paddleface.registry import get_record
    from paddleface.weights import load_weights
    record = get_record(args.id)
    w, h = (int(v) for v in args.size.split("x"))
    net = record.build()
    load_weights(net, Path(args.weights), record)
    net.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "paddle26"
    paddle.jit.save(net, str(work / "traced"),
                    input_spec=[paddle.static.InputSpec([1, 3, h, w], "float32", "image")])
    paddle.enable_static()
    folded = tidy_for_lite(str(work / "traced"), str(work / "model"))
    # model.pdmodel of the export is the traced program, for Paddle Inference
    # (deploy/python/infer.py): paddle 3's oneDNN fused_elementwise_add ignores the axis=1 of
    # the folded biases ("Broadcast dimension mismatch"); only opt gets the tidied program.
    for suffix in (".pdmodel", ".pdiparams"):
        shutil.copyfile(work / f"traced{suffix}", out / f"model{suffix}")
    written, programs = {}, {}
    kernels = set()
    # checks the rewrite of each x86 file (shrink_nb)
    check = dict(probe=np.random.default_rng(0).normal(size=(1, 3, h, w)).astype(np.float32),
                 n_outputs=3 if record.landmarks else 2, programs=programs)
    for place in ("x86", "arm"):
        needs = kernels if place == "arm" else None
        written[f"model_{place}"] = run_opt(work / "model", place, out / f"model_{place}",
                                            arm_kernels=needs, **check)
        if args.int8:
            written[f"model_{place}_int8_weights"] = run_opt(
                work / "model", place, out / f"model_{place}_int8_weights", weight_int8=True,
                arm_kernels=needs, **check)
    report = {"paddle": paddle.__version__, "folded_bias_reshapes": folded}
    if args.calib:
        tidy_for_lite(str(work / "traced"), str(work / "folded"), strip=False)
        report["calibration_images"] = quantize_post_training(
            record, str(work / "folded"), Path(args.calib), str(work / "quantized_arm"),
            str(work / "quantized_x86"))
        for place in ("x86", "arm"):
            tidy_for_lite(str(work / f"quantized_{place}"), str(work / f"tidy_{place}"))
            written[f"model_{place}_int8"] = run_opt(
                work / f"tidy_{place}", place, out / f"model_{place}_int8",
                arm_kernels=kernels if place == "arm" else None, **check)
    shutil.rmtree(work, ignore_errors=True)
    # what the ARM files need from the runtime, in deploy/lite/arm_kernels.txt's format
    (out / "arm_kernels.txt").write_text("".join(f"{k}\n" for k in sorted(kernels)))
    report["nb_bytes"] = written
    report["nb_program_bytes"] = programs
    print(json.dumps(report))


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
    e.add_argument("--int8", action="store_true", help="also opt's int8 weight quantization")
    e.add_argument("--calib", help="IMAGES.npz (uint8, resized): post-training int8 quantization")
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
