"""MkDocs hook: pages that hold the line ``<!-- registry-table -->`` get the model table made
from ``paddleface.registry`` at build time, so the zoo page cannot drift from the code."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PLACEHOLDER = "<!-- registry-table -->"


def input_rule(record) -> str:
    p = record.preprocess
    if p.resize == "long_side":
        return f"any size (long side {p.long_side})"
    if p.resize == "fixed":
        return f"{p.size[0]}x{p.size[1]}"
    return f"{p.resize} {max(p.size)}"


def published(record) -> str:
    return "; ".join(f"{setting}: {ap['easy']:.3f} / {ap['medium']:.3f} / {ap['hard']:.3f}"
                     for setting, ap in record.published_ap.items()) or "-"


def registry_table() -> str:
    """One Markdown row per registry id: input, size, cost, landmarks, AP, licence, weights."""
    from paddleface.registry import REGISTRY
    rows = ["| id | what | input | params | GMACs @ input | landmarks | published AP "
            "Easy / Medium / Hard | licence | weights |", "|---|---|---|---|---|---|---|---|---|"]
    for r in REGISTRY.values():
        ck = r.checkpoint
        weights = f"`{ck.path}` from {ck.upstream}" if ck else "none published: train them"
        rows.append(f"| `{r.id}` | {r.description} | {input_rule(r)} | {r.params / 1e3:.0f}k | "
                    f"{r.flops / 1e9:.3f} @ {r.flops_input[0]}x{r.flops_input[1]} | "
                    f"{'5 points' if r.landmarks else 'no'} | {published(r)} | "
                    f"{ck.license if ck else '-'} | {weights} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs) -> str:
    if PLACEHOLDER in markdown:
        markdown = markdown.replace(PLACEHOLDER, registry_table())
    return markdown
