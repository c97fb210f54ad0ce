"""Mask AP, Boundary AP and box AP (COCO-style), and annotation-quality scores.

Lightweight to import: the evaluation engine (faster-coco-eval, OpenCV) loads on first use.

* :func:`evaluate_coco` — the 12 COCO summary numbers, per-category AP and raw precision/recall per IoU type
  (``segm``, ``bbox``, ``boundary``).
* :func:`load_predictions` / :func:`prepare_predictions` — COCO results files; bad input raises
  :class:`PredictionError`.
* :func:`boundary_rle` — the boundary of a mask as used by Boundary IoU.
* :func:`score_quality` — noisy annotations scored against the clean ones (see :mod:`.quality`).
"""

from .boundary import DEFAULT_DILATION_RATIO, boundary_rle, dilation_pixels
from .coco_eval import IOU_TYPES, STAT_NAMES, Evaluation, evaluate_coco
from .predictions import PredictionError, load_predictions, prepare_predictions
from .quality import QualityReport, score_quality

__all__ = [
    "DEFAULT_DILATION_RATIO",
    "IOU_TYPES",
    "STAT_NAMES",
    "Evaluation",
    "PredictionError",
    "QualityReport",
    "boundary_rle",
    "dilation_pixels",
    "evaluate_coco",
    "load_predictions",
    "prepare_predictions",
    "score_quality",
]
