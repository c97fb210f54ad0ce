"""Mask AP, Boundary AP and box AP (COCO and LVIS rules), and annotation-quality scores.

Lightweight to import: the evaluation engine (faster-coco-eval, OpenCV) loads on first use.

* :func:`evaluate_coco` — the 12 COCO summary numbers, per-category AP and raw precision/recall per IoU type
  (``segm``, ``bbox``, ``boundary``).
* :func:`evaluate_lvis` / :func:`is_lvis` — the same under LVIS's federated rules (AP, AP50, AP75, APs/m/l,
  APr/c/f, AR/s/m/l at 300 detections per image); see :mod:`.lvis_eval`.
* :func:`load_predictions` / :func:`prepare_predictions` — COCO results files; bad input raises
  :class:`PredictionError`. :func:`evaluate_coco` and :func:`evaluate_lvis` also take a results file's path and
  read it in bounded memory, and ``num_proc`` processes (:func:`available_cpus`) with the same numbers.
* :func:`boundary_rle` — the boundary of a mask as used by Boundary IoU.
* :func:`score_quality` — noisy annotations scored against the clean ones (see :mod:`.quality`).
"""

from .boundary import DEFAULT_DILATION_RATIO, boundary_rle, dilation_pixels
from .coco_eval import IOU_TYPES, STAT_NAMES, Evaluation, evaluate_coco
from .lvis_eval import LVIS_MAX_DETS, LVIS_STAT_NAMES, evaluate_lvis, is_lvis
from .predictions import PredictionError, check_ground_truth, load_predictions, prepare_predictions
from .quality import QualityReport, score_quality
from .scoring import available_cpus

__all__ = [
    "DEFAULT_DILATION_RATIO",
    "IOU_TYPES",
    "LVIS_MAX_DETS",
    "LVIS_STAT_NAMES",
    "STAT_NAMES",
    "available_cpus",
    "Evaluation",
    "PredictionError",
    "QualityReport",
    "boundary_rle",
    "dilation_pixels",
    "evaluate_coco",
    "evaluate_lvis",
    "is_lvis",
    "check_ground_truth",
    "load_predictions",
    "prepare_predictions",
    "score_quality",
]
