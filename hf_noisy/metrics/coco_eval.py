"""COCO evaluation (pycocotools' ``COCOeval`` rules) of mask AP, box AP and Boundary AP: :func:`evaluate_coco`.

The rules are :data:`hf_noisy.metrics.protocol.COCO`'s, the work is the driver's (:mod:`.driver`).
"""

from __future__ import annotations

from typing import Iterable

from .boundary import DEFAULT_DILATION_RATIO
from .driver import Evaluation, Predictions, evaluate
from .protocol import COCO, IOU_TYPES, STAT_NAMES

__all__ = ["IOU_TYPES", "STAT_NAMES", "Evaluation", "evaluate_coco"]


def evaluate_coco(gt: dict, predictions: Predictions, iou_types: Iterable[str] = IOU_TYPES, *,
                  dilation_ratio: float = DEFAULT_DILATION_RATIO, max_dets: int = COCO.max_detections,
                  num_proc: int = 1, progress: bool = False) -> dict[str, Evaluation]:
    """:func:`hf_noisy.metrics.evaluate` under COCO rules, whatever the ground truth (an LVIS file too):
    ``max_dets`` detections per image and category, the 12 :data:`STAT_NAMES`. Kept because "COCO numbers of
    this file" is the most common call (tests, leaderboard references, papers' tables)."""
    return evaluate(gt, predictions, COCO, iou_types, dilation_ratio=dilation_ratio, max_dets=max_dets,
                    num_proc=num_proc, progress=progress)
