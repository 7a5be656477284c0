"""Tracking quality against known trajectories, counted by py-motmetrics (a test/bench
dependency, imported here only when called)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .tracking import iou_matrix


def tracking_scores(truth_frames: Sequence[Dict], received: List[Tuple[int, list]],
                    min_iou: float = 0.5) -> dict:
    """``truth_frames[k]``: {object id: [x1, y1, x2, y2]} of frame k; ``received``: (frame k,
    [(track id, box)]) per processed frame. A pair matches at IoU >= ``min_iou``. Returns
    recall, precision, idf1, num_switches and switched_objects (the true ids that changed id).
    (motmetrics 1.4's own IoU helper calls np.asfarray, gone in numpy 2: the distance matrix is
    made here.)"""
    import motmetrics as mm
    acc = mm.MOTAccumulator(auto_id=False)
    for k, hyps in received:
        gt = truth_frames[k]
        ids = [int(i) for i in gt]
        gboxes = np.array([gt[i] for i in gt], dtype=float).reshape(-1, 4)
        hboxes = np.array([b for _, b in hyps], dtype=float).reshape(-1, 4)
        dist = 1.0 - iou_matrix(gboxes, hboxes)
        dist[dist > 1.0 - min_iou] = np.nan
        acc.update(ids, [h for h, _ in hyps], dist, frameid=k)
    summary = mm.metrics.create().compute(
        acc, metrics=["recall", "precision", "idf1", "num_switches"], name="clip")
    events = acc.mot_events
    switched = sorted({int(o) for o in events[events.Type == "SWITCH"].OId})
    return {k: float(summary[k].iloc[0]) for k in summary.columns} | {"switched_objects": switched}
