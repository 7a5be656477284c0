"""ULFD ``--pretrained-ssd``: what the start loads and re-initialises, and the first epoch,
ours beside the upstream recipe in PyTorch.

    python bench/pretrained_ssd_init.py [--seeds 0,1,2] [--iterations N] [--threads 1]

1. Tensor by tensor, the network right after the start: ours (tools/train.py's Trainer:
   the torch-default initialisation, then ``init_from_pretrained_ssd``) against the upstream's
   ``SSD.init_from_pretrained_ssd`` done on this project's PyTorch ULFD RFB
   (bench/torch_ulfd.py, the upstream module names): torch's default initialisation under
   ``torch.manual_seed``, the checkpoint's tensors except the two heads copied over
   (``model_dict.update`` then ``load_state_dict``), ``xavier_uniform_`` on every Conv2d
   weight of the heads, head biases left as built. Loaded tensors (BatchNorm statistics,
   extras, backbone) must be equal; the re-initialised head tensors are random on both
   sides, so their bound and standard deviation are compared.
2. The first epoch on the outcome split (bench/train_outcome.py's split: 238 trainval
   images, batch 24, lr 1e-2, momentum 0.9, weight decay 5e-4): per seed, ours is one epoch
   of the Trainer (its mean training loss and the val loss after it); the PyTorch side trains
   its upstream-initialised network on exactly the same batches (our augmentation and
   matching, which the replay and tests/test_augment_distribution.py hold to the upstream)
   and is validated the same way (eval mode, the 248 held-out images, ``test()``'s mean of
   per-batch losses). The val loss after the first epoch is in the upstream outcome JSON too.
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, shared_dir  # noqa: E402
from bench.train_outcome import build_split  # noqa: E402

HEADS = ("classification_headers", "regression_headers")


def torch_upstream_start(checkpoint: Path, seed: int):
    """The upstream ``--pretrained_ssd`` start on bench/torch_ulfd.py's network."""
    import torch
    from bench.torch_ulfd import TorchULFDRFB
    torch.manual_seed(seed)
    net = TorchULFDRFB()
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    loaded = {k: v for k, v in loaded.items() if not k.startswith(HEADS)}
    state = net.state_dict()
    state.update(loaded)
    net.load_state_dict(state)
    for head in (net.classification_headers, net.regression_headers):
        for m in head.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.xavier_uniform_(m.weight)
    return net, set(loaded)


def paddle_names(torch_state):
    return {k.replace("running_mean", "_mean").replace("running_var", "_variance"):
            v.detach().numpy() for k, v in torch_state.items() if "num_batches" not in k}


def expected_bound(key: str, shape) -> float:
    """Head tensors: xavier-uniform bound for conv weights, torch's default bias bound."""
    if key.endswith(".weight"):
        rf = int(np.prod(shape[2:]))
        return math.sqrt(6.0 / (shape[1] * rf + shape[0] * rf))
    return float("nan")  # filled in from the weight's fan-in


def compare_start(ours: dict, theirs: dict, loaded: set) -> dict:
    """Loaded tensors: max |ours - theirs|; head tensors: bound and std on both sides."""
    loaded = {k.replace("running_mean", "_mean").replace("running_var", "_variance")
              for k in loaded if "num_batches" not in k}
    missing = sorted(set(ours) ^ set(theirs))
    groups = {}
    for k in sorted(theirs):
        if k in loaded:
            kind = ("BatchNorm statistics" if k.endswith(("_mean", "_variance")) else
                    "extras" if k.startswith("extras") else "backbone (base_net)")
            d = float(np.abs(ours[k].astype(np.float64) - theirs[k]).max())
            g = groups.setdefault(kind, {"tensors": 0, "max_abs_diff": 0.0})
            g["tensors"] += 1
            g["max_abs_diff"] = max(g["max_abs_diff"], d)
    heads = []
    for k in sorted(theirs):
        if not k.startswith(HEADS):
            continue
        w = theirs[k.rsplit(".", 1)[0] + ".weight"]
        fan_in = int(np.prod(w.shape[1:]))
        bound = (expected_bound(k, w.shape) if k.endswith(".weight") else 1 / math.sqrt(fan_in))
        heads.append({"tensor": k, "bound": bound,
                      "ours_max_abs": float(np.abs(ours[k]).max()),
                      "upstream_max_abs": float(np.abs(theirs[k]).max()),
                      "ours_std": float(ours[k].std()), "upstream_std": float(theirs[k].std()),
                      "uniform_std": bound / math.sqrt(3)})
    not_loaded = sorted(k for k in theirs if k not in loaded and not k.startswith(HEADS))
    return {"loaded": groups, "heads": heads, "neither_loaded_nor_head": not_loaded,
            "key_mismatch": missing}


def torch_epoch(net, batches, lr, momentum, weight_decay):
    import torch
    from bench.torch_ulfd import multibox_loss
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    losses = []
    for x, loc_t, conf_t, _ in batches:
        opt.zero_grad()
        conf, loc = net(torch.from_numpy(x))
        reg, cls = multibox_loss(conf, loc, torch.from_numpy(conf_t).long(), torch.from_numpy(loc_t))
        (reg + cls).backward()
        opt.step()
        losses.append((reg + cls).item())
    return losses


def torch_val_loss(net, val_set, batch_size):
    import torch
    from bench.torch_ulfd import multibox_loss
    net.eval()
    totals = []
    with torch.no_grad():
        for start in range(0, len(val_set), batch_size):
            items = [val_set[i] for i in range(start, min(start + batch_size, len(val_set)))]
            x, loc_t, conf_t, _ = (np.stack(a) for a in zip(*items))
            conf, loc = net(torch.from_numpy(x))
            reg, cls = multibox_loss(conf, loc, torch.from_numpy(conf_t).long(), torch.from_numpy(loc_t))
            totals.append(float(reg + cls))
    return float(np.mean(totals))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--iterations", type=int, default=None,
                   help="stop the epoch after this many iterations (default: the whole epoch)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "output/bench/train_outcome"),
                   help="where the split is (or will be) converted")
    p.add_argument("--json")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import paddle
    import torch
    torch.set_num_threads(args.threads)
    from paddleface.registry import get_record
    from paddleface.training.trainer import TrainConfig, Trainer, ValSet
    from paddleface.datasets.voc import VOCFaceDataset
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    checkpoint = shared_dir() / "weights/ulfd/version-RFB-320.pth"
    tree = build_split(Path(args.out) / "split")
    record = get_record("ulfd-rfb-320")
    r = record.train
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"start": [], "epoch": []}
    val_set = None
    ref = json.loads((shared_dir() / "reference/train/outcome_ulfd_rfb320.json").read_text())
    upstream_val0 = [u["val_loss_by_epoch"]["0"] for u in ref["pretrained_ssd"]["runs"]]
    for seed in seeds:
        trainer = Trainer(TrainConfig(model=record.id, data_root=str(tree), epochs=1, seed=seed,
                                      workers=0, pretrained_ssd=str(checkpoint), save_every=0,
                                      val_every=1, val_root=str(tree), max_iters=args.iterations,
                                      output_dir=str(Path(args.out) / f"pretrained-init-{seed}")))
        tnet, loaded = torch_upstream_start(checkpoint, seed)
        start = compare_start({k: v.numpy() for k, v in trainer.net.state_dict().items()},
                              paddle_names(tnet.state_dict()), loaded)
        report["start"].append({"seed": seed, **start})
        if seed == seeds[0]:
            print("\n== the start, tensor by tensor (seed %d) ==" % seed)
            print("| loaded | tensors | max abs difference, ours - upstream |\n|---|---|---|")
            for kind, g in start["loaded"].items():
                print(f"| {kind} | {g['tensors']} | {g['max_abs_diff']:.1e} |")
            print(f"neither loaded nor a head tensor: {start['neither_loaded_nor_head'] or 'none'};"
                  f" key mismatch: {start['key_mismatch'] or 'none'}")
            print("\n| re-initialised head tensor | bound | max abs ours / upstream | std ours / "
                  "upstream / uniform |\n|---|---|---|---|")
            for h in start["heads"]:
                print(f"| {h['tensor']} | {h['bound']:.4f} | {h['ours_max_abs']:.4f} / "
                      f"{h['upstream_max_abs']:.4f} | {h['ours_std']:.4f} / {h['upstream_std']:.4f}"
                      f" / {h['uniform_std']:.4f} |")
        # the same batches for both: the trainer's loader for epoch 0
        batches = [tuple(t.numpy() for t in b) for b in trainer._loader(0)]
        if args.iterations:
            batches = batches[:args.iterations]
        t0 = time.process_time()
        result = trainer.train()
        ours = result["history"][0]
        t1 = time.process_time()
        theirs = torch_epoch(tnet, batches, r.lr, r.momentum, r.weight_decay)
        if val_set is None:
            val_set = ValSet(VOCFaceDataset(str(tree), "test"), record, trainer.size)
        theirs_val = torch_val_loss(tnet, val_set, trainer.batch_size)
        t2 = time.process_time()
        row = {"seed": seed, "iterations": len(batches),
               "ours_train_loss": ours["loss"], "torch_train_loss": float(np.mean(theirs)),
               "ours_val_loss": ours.get("val_loss"), "torch_val_loss": theirs_val,
               "ours_losses": ours["losses"], "torch_losses": theirs,
               "cpu_s": [t1 - t0, t2 - t1]}
        report["epoch"].append(row)
        print(f"seed {seed}: {len(batches)} iterations; mean training loss ours {row['ours_train_loss']:.4f},"
              f" torch {row['torch_train_loss']:.4f}; val loss ours {row['ours_val_loss']:.4f}, "
              f"torch {theirs_val:.4f}", flush=True)
    e = report["epoch"]
    print("\n== first epoch (mean over seeds %s; upstream outcome runs: val loss %s) ==" %
          (", ".join(map(str, seeds)), ", ".join(f"{v:.4f}" for v in upstream_val0)))
    print("| | mean training loss | val loss after the epoch |\n|---|---|---|")
    for side in ("ours", "torch"):
        tl = [x[f"{side}_train_loss"] for x in e]
        vl = [x[f"{side}_val_loss"] for x in e]
        print(f"| {'PaddleFace' if side == 'ours' else 'PyTorch, upstream start'} | "
              f"{np.mean(tl):.4f} (sd {np.std(tl, ddof=1) if len(tl) > 1 else 0:.4f}; "
              f"{', '.join(f'{v:.3f}' for v in tl)}) | {np.mean(vl):.4f} (sd "
              f"{np.std(vl, ddof=1) if len(vl) > 1 else 0:.4f}; {', '.join(f'{v:.3f}' for v in vl)}) |")
    if len(e) > 1:
        from scipy import stats
        for what in ("train_loss", "val_loss"):
            d = [x[f"ours_{what}"] - x[f"torch_{what}"] for x in e]
            t = stats.ttest_rel([x[f"ours_{what}"] for x in e], [x[f"torch_{what}"] for x in e])
            print(f"{what}: ours - torch per seed {', '.join(f'{v:+.4f}' for v in d)}; "
                  f"paired t {t.statistic:+.2f}, p {t.pvalue:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
