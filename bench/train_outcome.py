"""Train ULFD RFB-320 the way the upstream outcome runs did and print ours beside theirs.

    python bench/train_outcome.py [--starts scratch,pretrained] [--runs 1] [--out DIR]
    python bench/train_outcome.py --starts scratch --runs 4 --seeds 0,1,2,3 --jobs 4 --threads 1
    python bench/train_outcome.py --starts scratch --runs 4 --report-only   (what has finished)

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
An interrupted run continues from its last finished epoch (tools/train.py --resume).

With several runs it also prints, per logged epoch, our mean and sample sd beside the
upstream runs and a Welch t test (scipy; unequal variances) of ours against theirs, and
plots every curve to a PNG (--plot). ``--report-only`` trains nothing: it reports the epochs
each run has logged so far (its train.log), so a partial result can be read while runs go on.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

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


EPOCH_LINE = re.compile(r"^epoch (\d+): loss .*?, val loss ([-+.\w]+?)(?:,|$)")


def logged_val_loss(log: Path) -> Dict[int, float]:
    """{0-based epoch: val loss} from the ``epoch N: ...`` lines a run has printed so far
    (a resumed run appends to the same log; the last line of an epoch wins)."""
    out: Dict[int, float] = {}
    if log.is_file():
        for line in log.read_text(errors="replace").splitlines():
            m = EPOCH_LINE.match(line.strip())
            if m:
                out[int(m.group(1)) - 1] = float(m.group(2))
    return out


def train_command(start: str, seed: int, tree: Path, out: Path, epochs: int, milestones: str,
                  workers: int, threads: int):
    """The command and environment of one run; ``--resume`` when an earlier, interrupted
    attempt left ``last.pdstate`` behind."""
    env = dict(os.environ, EPOCHS=str(epochs), MILESTONES=milestones, DATA_ROOT=str(tree),
               OUTPUT_DIR=str(out), WORKERS=str(workers), OMP_NUM_THREADS=str(threads))
    extra = [a.format(weights=shared_dir() / "weights") for a in STARTS[start]]
    cmd = ["sh", str(ROOT / "train-version-RFB.sh"), "--val-root", str(tree), "--val-every", "5",
           "--save-every", "0", "--seed", str(seed)] + extra
    if (out / "last.pdstate").is_file():
        cmd.append("--resume")
    return cmd, env


def train_all(start: str, seeds: List[int], tree: Path, out: Path, epochs: int, milestones: str,
              workers: int, threads: int, jobs: int) -> Dict[int, dict]:
    """Train every seed not finished yet, ``jobs`` runs at a time; {seed: history.json}."""
    pending = [s for s in seeds if not (out / f"{start}-{s}" / "history.json").is_file()]
    running: Dict[int, tuple] = {}
    failed = []
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            d = out / f"{start}-{seed}"
            d.mkdir(parents=True, exist_ok=True)
            cmd, env = train_command(start, seed, tree, d, epochs, milestones, workers, threads)
            print(f"[{start} seed {seed}] {' '.join(cmd)}", flush=True)
            log = open(d / "train.log", "a")
            running[seed] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
                             log, time.time(), d)
        time.sleep(5)
        for seed, (proc, log, t0, d) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[seed]
            if proc.returncode != 0:
                failed.append(seed)
                print(f"[{start} seed {seed}] failed (exit {proc.returncode}); see {d / 'train.log'}",
                      flush=True)
                continue
            hist = d / "history.json"
            result = json.loads(hist.read_text())
            result["train_seconds"] = result.get("train_seconds", 0.0) + time.time() - t0
            hist.write_text(json.dumps(result, indent=1))
            print(f"[{start} seed {seed}] finished in {time.time() - t0:.0f} s", flush=True)
    if failed:
        raise SystemExit(f"runs with seeds {failed} failed")
    return {s: json.loads((out / f"{start}-{s}" / "history.json").read_text()) for s in seeds}


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


def welch(ours: List[float], upstream: List[float]) -> Optional[dict]:
    """Welch's two-sample t test (unequal variances) of our runs against the upstream runs."""
    if len(ours) < 2 or len(upstream) < 2:
        return None
    from scipy import stats
    res = stats.ttest_ind(ours, upstream, equal_var=False)
    return {"t": float(res.statistic), "p": float(res.pvalue), "df": float(res.df)}


def plot_curves(path: Path, start: str, upstream: List[dict], ours: Dict[int, Dict[int, float]]):
    """Every validation-loss curve: the upstream runs and ours, by upstream epoch index."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for i, r in enumerate(upstream):
        e = sorted(int(k) for k in r["val_loss_by_epoch"])
        ax.plot(e, [r["val_loss_by_epoch"][str(k)] for k in e], "o-", color="tab:blue", alpha=0.6,
                label="upstream (PyTorch)" if i == 0 else None)
    for i, (seed, val) in enumerate(sorted(ours.items())):
        e = sorted(val)
        ax.plot(e, [val[k] for k in e], "s--", color="tab:orange", alpha=0.8,
                label="PaddleFace" if i == 0 else None)
    ax.set_xlabel("epoch (0-based, as upstream logs it)")
    ax.set_ylabel("validation loss")
    ax.set_title(f"ULFD RFB-320, {start}: {len(upstream)} upstream runs, {len(ours)} of ours")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def spread_table(start: str, upstream: List[dict], ours: Dict[int, Dict[int, float]]) -> List[dict]:
    """Per logged epoch: each upstream run, their mean/sd, our mean/sd (runs that reached the
    epoch) and the Welch t test; printed as a Markdown table."""
    epochs = sorted(int(e) for e in upstream[0]["val_loss_by_epoch"])
    print(f"\n== {start}: validation loss, {len(ours)} runs of ours (seeds "
          f"{', '.join(map(str, sorted(ours)))}) against {len(upstream)} upstream runs ==")
    print("| epoch | " + " | ".join(f"upstream {r['run']}" for r in upstream) +
          " | upstream mean (sd) | ours: n, mean (sd) | ours - upstream | Welch t | p |")
    print("|---" * (len(upstream) + 6) + "|")
    rows = []
    for e in epochs:
        u = [r["val_loss_by_epoch"][str(e)] for r in upstream]
        o = [val[e] for val in ours.values() if e in val]
        um, us = float(np.mean(u)), float(np.std(u, ddof=1))
        om = float(np.mean(o)) if o else math.nan
        osd = float(np.std(o, ddof=1)) if len(o) > 1 else math.nan
        test = welch(o, u)
        rows.append({"epoch": e, "upstream": u, "upstream_mean": um, "upstream_sd": us,
                     "ours": o, "ours_mean": om, "ours_sd": osd, "welch": test})
        print(f"| {e} | " + " | ".join(f"{v:.4f}" for v in u) + f" | {um:.4f} ({us:.4f}) | "
              + (f"{len(o)}, {om:.4f} ({osd:.4f})" if o else "0, -") + " | "
              + (f"{om - um:+.4f}" if o else "-") + " | "
              + (f"{test['t']:+.2f} | {test['p']:.3f}" if test else "- | -") + " |")
    return rows


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
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="OMP threads per run")
    p.add_argument("--seeds", help="comma-separated training seeds (default 0..runs-1)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; report the epochs the runs have logged so far")
    p.add_argument("--plot", help="the curves' PNG (default OUT/val_loss_START.png)")
    p.add_argument("--out", default=str(ROOT / "output/bench/train_outcome"))
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()  # train-version-RFB.sh runs from the repository root
    seeds = ([int(v) for v in args.seeds.split(",")] if args.seeds else list(range(args.runs)))
    ref = json.loads((shared_dir() / "reference/train/outcome_ulfd_rfb320.json").read_text())
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    tree = build_split(out / "split")
    images = heldout_images(out / "split")
    report, ok = {}, True
    # runs still going (--report-only) or shorter than the upstream's 30 epochs (--epochs):
    # the bands are judged on the epochs reached
    partial = args.report_only or args.epochs < 30
    for start in args.starts.split(","):
        ups = ref[REF_KEY[start]]["runs"]
        if not args.report_only:
            train_all(start, seeds, tree, out, args.epochs, args.milestones, args.workers,
                      args.threads, args.jobs)
        curves, ours = {}, []
        for seed in seeds:
            d = out / f"{start}-{seed}"
            hist = d / "history.json"
            if hist.is_file():
                h = json.loads(hist.read_text())
                val = {e["epoch"] - 1: e["val_loss"] for e in h["history"] if "val_loss" in e}
                ap = evaluate(d / "last.pdparams", images, d / "eval" / "predictions")
                seconds = h.get("train_seconds")
            else:  # still training (or interrupted): the epochs logged so far, no AP
                val, ap, seconds = logged_val_loss(d / "train.log"), {}, None
            if val:
                curves[seed] = val
            ours.append({"seed": seed, "finished": hist.is_file(), "val_loss_by_epoch": val,
                         "ap": ap, "train_seconds": seconds})
        for r in ours:
            done = max(r["val_loss_by_epoch"], default=-1) + 1
            print(f"seed {r['seed']}: {'finished' if r['finished'] else 'not finished'}, "
                  f"last logged epoch index {done - 1 if done else '-'}"
                  + (f", {r['train_seconds']:.0f} s" if r["train_seconds"] else ""))
        spread = spread_table(start, ups, curves)
        plot = Path(args.plot) if args.plot else out / f"val_loss_{start}.png"
        if curves:
            plot_curves(plot, start, ups, curves)
            print(f"plot: {plot}")
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
            reached = [v for v in o if v is not None]
            inside = all(v is not None and lo <= v <= hi for v in o)
            if partial:  # runs still going or shortened: judge the epochs they have reached
                inside = all(lo <= v <= hi for v in reached)
            ok &= inside
            rows.append({"epoch": e, "upstream": u, "band": [lo, hi], "ours": o, "inside": inside})
            print(" | ".join([str(e)] + [f"{v:.4f}" for v in u] + [f"[{lo:.4f}, {hi:.4f}]"] +
                             [f"{v:.4f}" if v is not None else "-" for v in o] +
                             ["not reached" if not reached else "yes" if inside else "NO"]))
        print(f"\n== {start}: held-out AP (248 images, ULFD protocol) ==")
        ap_rows = []
        for s in ("easy", "medium", "hard"):
            u = [r[s] for r in ups]
            lo, hi = min(u) - 0.02, max(u) + 0.02
            o = [r["ap"].get(s) for r in ours]
            inside = all(v is not None and lo <= v <= hi for v in o)
            if partial:
                inside = all(lo <= v <= hi for v in o if v is not None)
            if start == "pretrained":  # from scratch the AP is ~0.001 and only the loss counts
                ok &= inside
            ap_rows.append({"setting": s, "upstream": u, "range": [lo, hi], "ours": o,
                            "inside": inside})
            print(f"{s}: upstream {' / '.join(f'{v:.4f}' for v in u)} -> [{lo:.4f}, {hi:.4f}]; "
                  f"ours {' / '.join(f'{v:.4f}' for v in o if v is not None)} "
                  f"{'(no finished run)' if all(v is None for v in o) else 'inside' if inside else 'OUTSIDE'}")
        report[start] = {"val_loss": rows, "ap": ap_rows, "runs": ours, "spread": spread}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    note = " (of the epochs reached)" if partial else ""
    print(f"\nall inside the upstream bands{note}" if ok else
          f"\nsome values are outside the bands{note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
