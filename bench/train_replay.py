"""Replay an upstream trainer step by step through this project's trainer code and print both
loss curves side by side.

    python bench/train_replay.py --family ulfd|lm [--iters N] [--json OUT] [--plot OUT.png]
        [--control]

The reference (shared/reference/train/replay_*) was made by the upstream PyTorch code on CPU:
its initial weights, inputs, batch order, per-iteration losses and the weights after the
first iteration. Ours: init.pth through the x2paddle import, then the functions tools/train.py
runs (paddleface.training.step). Printed: the loss at every 10th iteration, the checks of
the issue (iteration 0, iterations 1-2, weights after one step, 10-iteration moving average,
mean of the last 50) and, with --control, a second Paddle run whose input images carry a
relative noise of 1e-7 (below float32 rounding of the input): how far float32 rounding alone
moves this computation.

--json writes {"total_loss": [...], "after_1_step_max_rel": float, ...}; the total is
regression + classification (ULFD) or 2 loc + conf + landmarks (lm).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import shared_dir  # noqa: E402
from paddleface.training.replay import (FAMILIES, Replay, drift_of, moving_average,  # noqa: E402
                                        torch_2_threads_total)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def checks(ours, ups, drift_ma, after_1):
    """The issue's criteria on the iterations run: (name, measured, bound, passed)."""
    n = len(ours)
    out = [("iteration 0 loss", rel(ours[0], ups[0]), 1e-5)]
    for i in (1, 2):
        if n > i:
            out.append((f"iteration {i} loss", rel(ours[i], ups[i]), 3e-4))
    out.append(("weights after 1 step (max over tensors)", after_1, 1e-4))
    ma_o, ma_u = moving_average(ours), moving_average(ups)
    ma_bound = max(2 * (drift_ma or 0.0), 0.02)
    out.append(("10-iteration moving average (max)",
                float(np.max(np.abs(ma_o - ma_u) / np.abs(ma_u))), ma_bound))
    if n >= 50:
        out.append(("mean of the last 50 iterations", rel(np.mean(ours[-50:]), np.mean(ups[-50:])),
                    0.03))
    return [(name, float(value), float(bound), bool(value <= bound)) for name, value, bound in out]


def _ulfd_torch():
    from bench.torch_ulfd import TorchULFDRFB, multibox_loss

    def total(net, x, loc_t, conf_t, landm_t):
        conf, loc = net(x)
        reg, cls = multibox_loss(conf, loc, conf_t, loc_t)
        return reg + cls
    return TorchULFDRFB(), total


def _lm_torch():
    from bench.torch_lm import TorchRFBLandmark, multibox_loss_lm

    def total(net, x, loc_t, conf_t, landm_t):
        loss_l, loss_c, loss_landm = multibox_loss_lm(*net(x), loc_t, conf_t, landm_t)
        return 2 * loss_l + loss_c + loss_landm  # FD-1MB's train.py: loc weight 2
    return TorchRFBLandmark(), total


# family -> () -> (this project's PyTorch network, (net, x, loc_t, conf_t, landm_t) -> total)
TORCH_STEPS = {"ulfd": _ulfd_torch, "lm": _lm_torch}


def torch_control(replay, iterations, noise, seed=12345):
    """This project's PyTorch step of the family's network and loss (bench/torch_ulfd.py,
    bench/torch_lm.py) on the same batches and targets, with ``noise`` relative input noise
    (0 = none). Returns the losses and (max per-tensor difference from after_1_step.pth,
    tensors within 1e-4, tensors compared)."""
    losses, per_tensor = torch_control_per_tensor(replay, iterations, noise, seed)
    rels = list(per_tensor.values())
    return losses, ((max(rels), sum(r <= 1e-4 for r in rels), len(rels)) if rels
                    else (float("nan"), 0, 0))


def torch_control_per_tensor(replay, iterations, noise, seed=12345):
    """As torch_control, but the per-tensor difference from after_1_step.pth itself:
    (losses, {tensor name: max |torch - upstream| / max |upstream|}) over the tensors that
    are not zero in exact arithmetic."""
    import torch
    from paddleface.training.replay import tensor_rel
    net, total_loss = TORCH_STEPS[replay.name]()
    net.load_state_dict(torch.load(replay.dir / "init.pth", map_location="cpu", weights_only=True))
    net.train()
    r = replay.record.train
    opt = torch.optim.SGD(net.parameters(), lr=r.lr, momentum=r.momentum,
                          weight_decay=r.weight_decay)
    rng = np.random.default_rng(seed)
    losses, per_tensor = [], {}
    for it in range(iterations):
        b = replay.batch(it)
        x = b[0].numpy()
        if noise:
            x = x * (1 + noise * rng.standard_normal(x.shape)).astype(np.float32)
        opt.zero_grad()
        total = total_loss(net, torch.from_numpy(x), torch.from_numpy(b[1].numpy()),
                           torch.from_numpy(b[2].numpy()).long(), torch.from_numpy(b[3].numpy()))
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
        if it == 0:
            ref = replay.reference_after_1_step()
            sd = {k.replace("running_mean", "_mean").replace("running_var", "_variance"):
                  v.detach().numpy() for k, v in net.state_dict().items() if "num_batches" not in k}
            per_tensor = {k: tensor_rel(sd[k], ref[k]) for k in ref if np.abs(ref[k]).max() > 1e-8}
    return losses, per_tensor


def plot(path, fam, ours, ups, second, control):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    it = np.arange(len(ours))
    ax.plot(it, ups, color="#888", lw=1, label="upstream PyTorch (1 thread)")
    if second:
        ax.plot(it, second[:len(ours)], color="#bbb", lw=1, ls=":", label="upstream PyTorch (2 threads)")
    ax.plot(it, ours, color="#c0392b", lw=1, label="PaddleFace trainer")
    if control:
        ax.plot(it, control, color="#e59866", lw=1, ls="--", label="PaddleFace, input +1e-7 noise")
    w = 10
    if len(ours) >= w:
        x = np.arange(w - 1, len(ours))
        ax.plot(x, moving_average(ups), color="#333", lw=2, label="upstream, 10-it. mean")
        ax.plot(x, moving_average(ours), color="#922b21", lw=2, label="PaddleFace, 10-it. mean")
    ax.set_xlabel("iteration")
    ax.set_ylabel("total training loss")
    ax.set_title(f"Replay of the upstream {'ULFD RFB-320' if fam == 'ulfd' else 'Face-Detector-1MB RFB'} trainer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True, choices=sorted(FAMILIES))
    p.add_argument("--iters", type=int, default=None, help="default: all 150")
    p.add_argument("--json")
    p.add_argument("--plot")
    p.add_argument("--torch-control", action="store_true",
                   help="also run this project's PyTorch step of the family (bench/torch_ulfd.py, "
                        "bench/torch_lm.py) for 3 iterations, without and with 1e-7 input noise")
    p.add_argument("--control", action="store_true",
                   help="also run with 1e-7 relative input noise (the float32 noise floor)")
    args = p.parse_args(argv)
    replay = Replay(shared_dir(), args.family)
    t0 = time.time()

    def progress(i, v):
        if i % 10 == 0:
            print(f"  iteration {i}: {v:.4f}  ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    res = replay.run(args.iters, progress=progress)
    control = None
    if args.control:
        control = replay.run(args.iters, progress=progress, input_noise=1e-7).total_loss
    ours, ups = res.total_loss, res.upstream_total_loss
    second = torch_2_threads_total(replay.trace, replay.family)
    n = len(ours)
    print(f"{args.family}: {replay.record.id}, {n} iterations, batch {replay.order.shape[1]}, "
          f"{time.time() - t0:.0f} s")
    head = ["iteration", "upstream", "ours", "rel"] + (["torch 2 threads"] if second else []) + \
        (["ours +1e-7 noise"] if control else [])
    print(" | ".join(head))
    for i in list(range(0, min(n, 4))) + list(range(9, n, 10)):
        row = [str(i), f"{ups[i]:.4f}", f"{ours[i]:.4f}", f"{rel(ours[i], ups[i]):.1e}"]
        if second:
            row.append(f"{second[i]:.4f}")
        if control:
            row.append(f"{control[i]:.4f}")
        print(" | ".join(row))
    drift_ma = drift_of(replay.trace, replay.family, "max_rel_10_iteration_moving_average")
    results = checks(ours, ups, drift_ma, res.after_1_step_max_rel)
    print("\ncheck | measured | bound | result")
    for name, value, bound, ok in results:
        print(f"{name} | {value:.2e} | {bound:.2e} | {'pass' if ok else 'FAIL'}")
    print(f"(largest after-1-step difference: {res.after_1_step_worst})")
    noise = {}
    if control:
        noise = {"iteration_1_2_rel": [rel(control[i], ours[i]) for i in (1, 2) if i < n],
                 "max_rel_10_iteration_moving_average":
                     float(np.max(np.abs(moving_average(control) - moving_average(ours))
                                  / np.abs(moving_average(ours))))}
        print(f"float32 noise floor (ours vs ours with +1e-7 input noise): iterations 1-2 "
              f"{', '.join(f'{v:.1e}' for v in noise['iteration_1_2_rel'])}; moving average "
              f"{noise['max_rel_10_iteration_moving_average']:.2e}")
    torch_rows = {}
    if args.torch_control:
        print(f"\nPyTorch (bench/torch_{'ulfd' if args.family == 'ulfd' else 'lm'}.py) on the "
              "same batches, against the upstream trace:")
        print("input | iteration 1 rel | iteration 2 rel | after 1 step max rel | tensors within 1e-4")
        for noise in (0.0, 1e-7):
            tl, (mx, within, total) = torch_control(replay, 3, noise)
            torch_rows[str(noise)] = {"total_loss": tl, "after_1_step_max_rel": mx,
                                      "within_1e-4": within, "tensors": total}
            print(f"{'exact' if not noise else '+1e-7 noise'} | {rel(tl[1], ups[1]):.1e} | "
                  f"{rel(tl[2], ups[2]):.1e} | {mx:.1e} | {within} of {total}")
        ref = replay.reference_after_1_step()
        counted = {k: v for k, v in res.per_tensor_rel.items() if np.abs(ref[k]).max() > 1e-8}
        within_ours = sum(v <= 1e-4 for v in counted.values())
        print(f"PaddleFace | {rel(ours[1], ups[1]):.1e} | {rel(ours[2], ups[2]):.1e} | "
              f"{max(counted.values()):.1e} | {within_ours} of {len(counted)}")
        print("(tensors whose upstream values are all below 1e-8, zero in exact arithmetic, "
              "are left out of these two columns)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "total_loss": ours, "after_1_step_max_rel": res.after_1_step_max_rel,
            "after_1_step_worst": res.after_1_step_worst, "upstream_total_loss": ups,
            "checks": [{"check": c, "measured": float(v), "bound": float(b), "pass": bool(ok)}
                       for c, v, b, ok in results],
            "control_total_loss": control, "noise_floor": noise, "torch_control": torch_rows},
            indent=1))
    if args.plot:
        plot(args.plot, args.family, ours, ups, second, control)
        print(f"plot: {args.plot}")
    return 0 if all(ok for *_, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
