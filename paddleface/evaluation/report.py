"""Evaluation outputs people read: the AP table, the PR-curve figure and a JSON summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

from .widerface import SETTINGS, EvalResult


def ap_table(result: EvalResult, published: Optional[Dict[str, float]] = None) -> str:
    rows = [("setting", "AP", "faces") + (("published",) if published else ())]
    for s in SETTINGS:
        row = (s, f"{result.ap[s]:.4f}", str(result.faces[s]))
        if published:
            row += (f"{published[s]:.4f}",)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def plot_pr_curves(result: EvalResult, title: str, path: Path) -> None:
    """Easy, Medium and Hard precision-recall curves on one figure (PNG)."""
    import logging

    import matplotlib
    # its one-time "generated new fontManager" INFO line reaches the terminal once Paddle
    # has configured logging; it says nothing about the evaluation
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for s in SETTINGS:
        recall, precision = result.curves[s]
        ax.plot(recall, precision, label=f"{s} (AP {result.ap[s]:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_summary(result: EvalResult, path: Path, **extra) -> None:
    data = dict(extra, ap={s: round(result.ap[s], 4) for s in SETTINGS}, images=result.images,
                faces=result.faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
