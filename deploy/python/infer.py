"""Face detection with an exported model: ONNX Runtime for model.onnx, paddle.inference for
model.json/.pdmodel + model.pdiparams.

    python deploy/python/infer.py --model-dir output/export/rfb320 PATH... [--out DIR]
        [--json FILE] [--engine auto|onnxruntime|inference] [--device cpu|gpu] [--threads 2]
        [--no-onednn] [--trt] [--threshold T]

``--engine auto`` runs ONNX Runtime when the folder has model.onnx, the device is the CPU
and onnxruntime is installed (the fastest CPU engine here, see the README), else Paddle
Inference.

Everything model-specific comes from the export's deploy.json (preprocessing, anchors,
thresholds); the pre- and post-processing are paddleface's numpy functions, so the results
equal ``paddleface detect``.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from paddleface.cli import detect_inputs, parse_fraction  # noqa: E402
from paddleface.detector import Face  # noqa: E402
from paddleface.errors import PaddleFaceError  # noqa: E402
from paddleface.postprocess import clip_boxes, postprocess_classes  # noqa: E402
from paddleface.preprocess import prepare  # noqa: E402
from paddleface.priors import PriorBoxes  # noqa: E402
from paddleface.registry import DetectionProtocol, Preprocess  # noqa: E402


def pick_engine(model_dir: Path, engine: str, device: str) -> str:
    """"onnxruntime" or "inference" for an export folder, or a one-sentence error."""
    import importlib.util
    has_onnx = (model_dir / "model.onnx").is_file()
    has_paddle = (model_dir / "model.pdiparams").is_file()
    if engine == "auto":
        cpu_ort = not device.startswith("gpu") and importlib.util.find_spec("onnxruntime")
        engine = "onnxruntime" if has_onnx and (cpu_ort or not has_paddle) else "inference"
    if engine == "onnxruntime" and not has_onnx:
        raise PaddleFaceError(f"{model_dir}: no model.onnx for --engine onnxruntime; export "
                              "with `paddleface export ID --format onnx`")
    if engine == "inference" and not has_paddle:
        raise PaddleFaceError(f"{model_dir}: no model.pdiparams for --engine inference; export "
                              "with `paddleface export ID --format inference`")
    return engine


class ExportedDetector:
    def __init__(self, model_dir, device="cpu", threads=2, onednn=True, trt=False,
                 threshold=None, engine="auto"):
        d = Path(model_dir)
        info_path = d / "deploy.json"
        if not info_path.is_file():
            raise PaddleFaceError(f"{info_path}: missing; --model-dir must be a folder written by "
                                  "paddleface export")
        info = json.loads(info_path.read_text())
        pre = info["preprocess"]
        self.pre = Preprocess(**{**pre, "mean": tuple(pre["mean"]),
                                 "size": tuple(pre["size"]) if pre["size"] else None})
        a = info["anchors"]
        self.priors = PriorBoxes(tuple(tuple(m) for m in a["min_sizes"]), tuple(a["steps"]),
                                 tuple(a["variances"]), a["clip"], a["centers"])
        self.protocol = DetectionProtocol(**info["detection"])
        self.labels = tuple(info.get("labels", ("face",)))  # exports before labels: one class
        if threshold is not None:
            from dataclasses import replace
            self.protocol = replace(self.protocol, final_threshold=threshold,
                                    score_threshold=min(threshold, self.protocol.score_threshold))
        shape = info["input_shape"]
        self.fixed_size = (shape[3], shape[2]) if shape[2] and shape[3] and shape[2] > 0 else None
        self.engine = pick_engine(d, engine, device)
        if self.engine == "onnxruntime":
            if device.startswith("gpu"):
                raise PaddleFaceError("--engine onnxruntime runs on the CPU only: use --device cpu")
            from paddleface.engine import OnnxRuntimeEngine
            eng = OnnxRuntimeEngine(d / "model.onnx", threads=threads)
        else:
            from paddleface.engine import InferenceEngine
            eng = InferenceEngine(d / "model", device=device, threads=threads, onednn=onednn,
                                  tensorrt=trt, skip_passes=info.get("onednn_skip_passes", ()))
        self.run = lambda x: [o for o in eng(x) if o is not None]

    def detect(self, image):
        p = prepare(self.pre, image, self.fixed_size)
        outs = self.run(p.tensor[None])
        loc, conf = outs[0][0], outs[1][0]
        landms = outs[2][0] if len(outs) > 2 else None
        h, w = p.tensor.shape[1:]
        boxes, scores, points, labels = postprocess_classes(
            loc, conf, landms, self.priors(h, w), self.priors.variances, self.protocol,
            p.to_pixels, p.offset, num_labels=len(self.labels))
        boxes = clip_boxes(boxes, p.image_size)
        return [Face(b, float(s), None if points is None else points[i], self.labels[labels[i]])
                for i, (b, s) in enumerate(zip(boxes, scores))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--engine", default="auto", choices=["auto", "onnxruntime", "inference"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-onednn", action="store_true")
    ap.add_argument("--trt", action="store_true", help="TensorRT on GPU")
    ap.add_argument("--threshold", type=parse_fraction, help="score threshold, 0 to 1")
    args = ap.parse_args(argv)
    try:
        det = ExportedDetector(args.model_dir, args.device, args.threads, not args.no_onednn,
                               args.trt, args.threshold, args.engine)
    except PaddleFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return detect_inputs(det.detect, args.paths, args.out, args.json,
                         {"model_dir": args.model_dir})

if __name__ == "__main__":
    sys.exit(main())
