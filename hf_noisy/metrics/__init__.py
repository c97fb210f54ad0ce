"""Mask AP, Boundary AP and box AP (COCO and LVIS rules), and annotation-quality scores.

Lightweight to import (numpy only): the evaluation engine (faster-coco-eval, OpenCV) loads on first use, and
nothing here imports torch, the hub or the leaderboard.

* :func:`evaluate` — the one entry point: a ground truth and COCO results (a list, or a results file read in
  bounded memory, on ``num_proc`` processes with the same numbers) in, ``{iou_type: Evaluation}`` out (``segm``,
  ``bbox``, ``boundary``), under a protocol: ``"auto"`` (LVIS for an LVIS ground truth), ``"coco"`` or ``"lvis"``.
  :func:`evaluate_coco` / :func:`evaluate_lvis` are the same with the protocol fixed.
* :func:`get_protocol` — the protocols (:mod:`.protocol`): detections per image (``max_detections``: COCO 100,
  LVIS 300), stat names, row filter and federated rules; :func:`is_lvis` tells an LVIS ground truth.
* :class:`InstanceSegmentationAP` — the same numbers from batches of per-image masks (torch, numpy or RLE) during
  a validation loop: ``update`` / ``compute`` / ``reset``, ``merge`` / ``sync`` across processes; it keeps a few
  bytes per detection, never the masks (:mod:`.stateful`); :mod:`.lightning` wraps it as a ``torchmetrics.Metric``
  (extra ``[torchmetrics]``, not imported here).
* :func:`load_predictions` / :func:`prepare_predictions` — COCO results files; bad input raises
  :class:`PredictionError`.
* :func:`boundary_rle` — the boundary of a mask as used by Boundary IoU.
* :func:`score_quality` — noisy annotations scored against the clean ones (see :mod:`.quality`).
* :func:`evaluate_module_path` — the Hugging Face ``evaluate`` module of these numbers, installed with the
  package: ``evaluate.load(evaluate_module_path())`` (extra ``[metric]``).
"""

from .boundary import DEFAULT_DILATION_RATIO, boundary_rle, dilation_pixels
from .coco_eval import evaluate_coco
from .driver import Evaluation, evaluate
from .lvis_eval import evaluate_lvis
from .predictions import PredictionError, check_ground_truth, load_predictions, prepare_predictions
from .protocol import (COCO, IOU_TYPES, LVIS, LVIS_MAX_DETS, LVIS_STAT_NAMES, STAT_NAMES, Protocol, get_protocol,
                       is_lvis, protocol_for)
from .quality import QualityReport, score_quality
from .scoring import available_cpus
from .stateful import InstanceSegmentationAP, MetricStateError, all_gather_object

__all__ = [
    "COCO",
    "DEFAULT_DILATION_RATIO",
    "IOU_TYPES",
    "LVIS",
    "LVIS_MAX_DETS",
    "LVIS_STAT_NAMES",
    "STAT_NAMES",
    "all_gather_object",
    "available_cpus",
    "Evaluation",
    "MetricStateError",
    "InstanceSegmentationAP",
    "PredictionError",
    "Protocol",
    "QualityReport",
    "boundary_rle",
    "dilation_pixels",
    "evaluate",
    "evaluate_coco",
    "evaluate_module_path",
    "evaluate_lvis",
    "get_protocol",
    "is_lvis",
    "protocol_for",
    "check_ground_truth",
    "load_predictions",
    "prepare_predictions",
    "score_quality",
]


def evaluate_module_path() -> str:
    """The path of hf-noisy's ``evaluate`` metric script, ``mask_boundary_ap.py``, inside the installed package:
    what ``evaluate.load`` takes, from any working folder and from an installed (non-editable) hf-noisy.

    ``evaluate.load(evaluate_module_path())`` gives mask AP, Boundary AP and box AP from per-image predictions
    and references (``evaluate.load(evaluate_module_path(), "lvis")``: LVIS's federated rules); the same
    script is published as the Space ``noisy-seg/mask_boundary_ap`` (``hf-noisy push-metric``). Needs the
    ``[metric]`` extra (``evaluate``, ``datasets``).
    """
    from pathlib import Path

    return str(Path(__file__).resolve().with_name("mask_boundary_ap.py"))
