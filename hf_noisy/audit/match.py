"""Per-image matching of predictions to annotations: class-agnostic mask IoU, greedy by IoU.

The IoUs are the evaluation engine's (:func:`hf_noisy.metrics.engine.pairwise_iou`); the matching rule is the
audit's own, not AP's: AP matches detections in score order within a category, the audit asks which
prediction of any class best explains each annotation.

Greedy rather than Hungarian: instance masks of one image rarely overlap, so the two agree almost always, and
greedy is the rule COCO evaluation itself follows (one prediction per annotation, best overlap first). Ties
are broken by prediction order (the caller sorts predictions by descending score), then annotation order, so
the result is deterministic.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..masks import RLE
from ..metrics.engine import pairwise_iou

__all__ = ["iou_matrix", "greedy_match"]


def iou_matrix(predictions: Sequence[RLE], annotations: Sequence[RLE], crowd: Sequence[bool] | None = None) -> np.ndarray:
    """Mask IoU of every prediction (rows) with every annotation (columns), ``float64``; for a ``crowd``
    annotation, pycocotools' rule: the share of the prediction it covers. The evaluation's own IoU
    (:func:`hf_noisy.metrics.engine.pairwise_iou`), so an audit match and an AP match see the same numbers."""
    return pairwise_iou(predictions, annotations, crowd if crowd is not None else [0] * len(annotations))


def greedy_match(ious: np.ndarray, min_iou: float) -> dict[int, int]:
    """``{annotation index: prediction index}``: pairs taken by descending IoU (at least ``min_iou``), each
    prediction and annotation used once."""
    rows, cols = np.nonzero(ious >= min_iou)
    order = np.lexsort((cols, rows, -ious[rows, cols]))
    used_rows, matched = set(), {}
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_rows or c in matched:
            continue
        used_rows.add(r)
        matched[c] = r
    return matched
