"""Train ULFD RFB-320 the way the upstream outcome runs did and print ours beside theirs.

    python bench/train_outcome.py [--starts scratch,pretrained] [--runs 1] [--out DIR]

The split comes from the shared data (shared/reference/train/outcome_ulfd_rfb320.json):
trainval = the val subset's events 0-29, test = events 30-61, both converted by
data/wider_face_2_voc_add_landmark.py. Each run is

    EPOCHS=30 MILESTONES=20,26 sh train-version-RFB.sh --val-root TREE --val-every 5
        [--pretrained-ssd shared/weights/ulfd/version-RFB-320.pth]

then ``paddleface eval ulfd-rfb-320 --subset`` on the 248 held-out images. The table lists
the validation loss at the upstream's logged epochs (0-based 0, 5, ..., 25, 29, i.e. after
1, 6, ..., 26, 30 epochs) beside the upstream runs and the band they define: [min, max]
widened by t = max(max - min, 1% of the midpoint); then the held-out AP beside the upstream
range +- 0.02. A finished run is reused (its history.json); delete its folder to retrain.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, shared_dir  # noqa: E402

STARTS = {"scratch": [], "pretrained": ["--pretrained-ssd", "{weights}/ulfd/version-RFB-320.pth"]}
REF_KEY = {"scratch": "scratch", "pretrained": "pretrained_ssd"}


def event(name: str) -> int:
    return int(name.split("--")[0])


def split_labels(dest: Path):
    """label.txt of events 0-29 (training format accepts the 4-number lines) and of 30-61."""
    shared = shared_dir()
    subset = set((shared / "widerface/val/subset.txt").read_text().split())
    blocks, name = {}, None
    for line in (shared / "widerface/val/label.txt").read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
            if name in subset:
                blocks[name] = [line]
            else:
                name = None
        elif name:
            blocks[name].append(line)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, keep in (("train", lambda e: e < 30), ("val", lambda e: e >= 30)):
        text = "\n".join(l for n, b in blocks.items() if keep(event(n)) for l in b) + "\n"
        out[part] = dest / f"label_{part}.txt"
        out[part].write_text(text)
    return out


def build_split(dest: Path) -> Path:
    tree = dest / "voc"
    if (tree / "ImageSets/Main/test.txt").is_file() and (tree / "ImageSets/Main/trainval.txt").is_file():
        return tree
    labels = split_labels(dest)
    images = shared_dir() / "widerface/val/images"
    subprocess.run([sys.executable, str(ROOT / "data/wider_face_2_voc_add_landmark.py"), "--quiet",
                    "--sets", "train", "val", "--images", f"train={images}", "--images", f"val={images}",
                    "--label", f"train={labels['train']}", "--label", f"val={labels['val']}",
                    "--out", str(tree)], check=True)
    return tree


def heldout_images(dest: Path) -> Path:
    """A folder of links to the held-out images (events 30-61) for ``paddleface eval``."""
    shared = shared_dir()
    root = dest / "heldout_images"
    for name in (shared / "widerface/val/subset.txt").read_text().split():
        if event(name) >= 30:
            link = root / name
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(shared / "widerface/val/images" / name)
    return root


def train(start: str, run: int, tree: Path, out: Path, epochs: int, milestones: str,
          workers: int, threads: int) -> dict:
    hist = out / "history.json"
    if hist.is_file():
        return json.loads(hist.read_text())
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, EPOCHS=str(epochs), MILESTONES=milestones, DATA_ROOT=str(tree),
               OUTPUT_DIR=str(out), WORKERS=str(workers), OMP_NUM_THREADS=str(threads))
    extra = [a.format(weights=shared_dir() / "weights") for a in STARTS[start]]
    cmd = ["sh", str(ROOT / "train-version-RFB.sh"), "--val-root", str(tree), "--val-every", "5",
           "--save-every", "0", "--seed", str(run)] + extra
    print(f"[{start} run {run}] {' '.join(cmd)}", flush=True)
    t0 = time.time()
    with open(out / "train.log", "w") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    result = json.loads(hist.read_text())
    result["train_seconds"] = time.time() - t0
    hist.write_text(json.dumps(result, indent=1))
    return result


def evaluate(weights: Path, images: Path, pred_dir: Path) -> dict:
    summary = pred_dir.parent / "summary.json"
    if not summary.is_file():
        subprocess.run([sys.executable, "-m", "paddleface", "eval", "ulfd-rfb-320", "--weights",
                        str(weights), "--images", str(images),
                        "--gt", str(shared_dir() / "widerface/ground_truth"), "--subset",
                        "--pred-dir", str(pred_dir)], check=True, stdout=subprocess.DEVNULL)
    found = sorted(pred_dir.parent.rglob("summary.json"))
    data = json.loads(found[0].read_text()) if found else {}
    ap = data.get("ap", data)
    return {k: float(ap[k]) for k in ("easy", "medium", "hard") if k in ap}


def band(values):
    lo, hi = min(values), max(values)
    t = max(hi - lo, 0.01 * (lo + hi) / 2)
    return lo - t, hi + t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starts", default="scratch,pretrained")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--milestones", default="20,26")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(ROOT / "output/bench/train_outcome"))
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    out = Path(args.out)
    ref = json.loads((shared_dir() / "reference/train/outcome_ulfd_rfb320.json").read_text())
    tree = build_split(out / "split")
    images = heldout_images(out / "split")
    report, ok = {}, True
    for start in args.starts.split(","):
        ups = ref[REF_KEY[start]]["runs"]
        ours = []
        for run in range(args.runs):
            d = out / f"{start}-{run}"
            h = train(start, run, tree, d, args.epochs, args.milestones, args.workers, args.threads)
            val = {e["epoch"] - 1: e["val_loss"] for e in h["history"] if "val_loss" in e}
            ap = evaluate(d / "last.pdparams", images, d / "eval" / "predictions")
            ours.append({"val_loss_by_epoch": val, "ap": ap,
                         "train_seconds": h.get("train_seconds")})
        print(f"\n== {start}: validation loss (upstream epoch index; ours = the same epoch) ==")
        epochs = sorted(int(e) for e in ups[0]["val_loss_by_epoch"])
        head = (["epoch"] + [f"upstream {r['run']}" for r in ups] + ["band"] +
                [f"ours {i}" for i in range(len(ours))] + ["inside"])
        print(" | ".join(head))
        rows = []
        for e in epochs:
            u = [r["val_loss_by_epoch"][str(e)] for r in ups]
            lo, hi = band(u)
            o = [r["val_loss_by_epoch"].get(e) for r in ours]
            inside = all(v is not None and lo <= v <= hi for v in o)
            ok &= inside
            rows.append({"epoch": e, "upstream": u, "band": [lo, hi], "ours": o, "inside": inside})
            print(" | ".join([str(e)] + [f"{v:.4f}" for v in u] + [f"[{lo:.4f}, {hi:.4f}]"] +
                             [f"{v:.4f}" if v is not None else "-" for v in o] +
                             ["yes" if inside else "NO"]))
        print(f"\n== {start}: held-out AP (248 images, ULFD protocol) ==")
        ap_rows = []
        for s in ("easy", "medium", "hard"):
            u = [r[s] for r in ups]
            lo, hi = min(u) - 0.02, max(u) + 0.02
            o = [r["ap"].get(s) for r in ours]
            inside = all(v is not None and lo <= v <= hi for v in o)
            if start == "pretrained":  # from scratch the AP is ~0.001 and only the loss counts
                ok &= inside
            ap_rows.append({"setting": s, "upstream": u, "range": [lo, hi], "ours": o,
                            "inside": inside})
            print(f"{s}: upstream {' / '.join(f'{v:.4f}' for v in u)} -> [{lo:.4f}, {hi:.4f}]; "
                  f"ours {' / '.join(f'{v:.4f}' for v in o if v is not None)} "
                  f"{'inside' if inside else 'OUTSIDE'}")
        report[start] = {"val_loss": rows, "ap": ap_rows, "runs": ours}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print("\nall inside the upstream bands" if ok else "\nsome values are outside the bands")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
