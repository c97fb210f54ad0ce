"""LVIS evaluation (Gupta et al., CVPR 2019) of mask AP, box AP and Boundary AP under LVIS's federated rules:
:func:`evaluate_lvis`.

The rules (top detections per image, unlisted categories, not exhaustively annotated categories, APr/APc/APf)
are :data:`hf_noisy.metrics.protocol.LVIS`'s and documented there; the work is the driver's (:mod:`.driver`).
"""

from __future__ import annotations

from typing import Iterable

from .boundary import DEFAULT_DILATION_RATIO
from .driver import Evaluation, Predictions, evaluate
from .protocol import IOU_TYPES, LVIS, LVIS_MAX_DETS, LVIS_STAT_NAMES, is_lvis

__all__ = ["LVIS_MAX_DETS", "LVIS_STAT_NAMES", "evaluate_lvis", "is_lvis"]


def evaluate_lvis(gt: dict, predictions: Predictions, iou_types: Iterable[str] = IOU_TYPES, *,
                  dilation_ratio: float = DEFAULT_DILATION_RATIO, max_dets: int = LVIS_MAX_DETS,
                  num_proc: int = 1, progress: bool = False) -> dict[str, Evaluation]:
    """:func:`hf_noisy.metrics.evaluate` under LVIS rules, whatever the ground truth (a COCO file too: every
    image then has an empty negative set): ``max_dets`` detections per image, stats by :data:`LVIS_STAT_NAMES`,
    ``rules == "lvis"``. Kept, like :func:`~hf_noisy.metrics.evaluate_coco`, for the explicit call."""
    return evaluate(gt, predictions, LVIS, iou_types, dilation_ratio=dilation_ratio, max_dets=max_dets,
                    num_proc=num_proc, progress=progress)
