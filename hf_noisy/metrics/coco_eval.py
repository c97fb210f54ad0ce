"""COCO-style evaluation of instance segmentations: ``segm`` (mask AP), ``bbox`` (box AP) and ``boundary``
(Boundary AP, Cheng et al. CVPR 2021).

Engine: images are matched one at a time and accumulated from compact per-detection results
(:mod:`hf_noisy.metrics.engine`, in chunks, on ``num_proc`` processes: :mod:`hf_noisy.metrics.scoring`), with
numbers identical bit for bit to faster-coco-eval's C++ ``COCOeval_faster`` (itself equal to pycocotools'
``COCOeval``); a results file is read in bounded memory (:mod:`hf_noisy.metrics.stream`). Boundaries are
computed on a window around each instance (:mod:`hf_noisy.metrics.boundary`), instead of on the full image. For ``boundary`` the IoU of a detection
with a non-crowd ground truth is ``min(mask IoU, boundary IoU)``; with a crowd region it is the mask IoU under
the crowd rule (intersection over the detection's area), as in boundary-iou-api.

Ground-truth conventions: ``area`` as stored in the file decides the small/medium/large range (as in
pycocotools); a missing ``area`` is the mask's pixel count, a missing ``bbox`` the mask's tight box
``[x, y, w, h]``, a missing ``iscrowd`` 0. An annotation without ``segmentation`` (``bbox`` scoring only) has
its box as its mask. Crowd regions are ignored (never counted as missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Any, Iterable, Union

import numpy as np

from .boundary import DEFAULT_DILATION_RATIO

__all__ = ["IOU_TYPES", "STAT_NAMES", "Evaluation", "Predictions", "evaluate_coco"]

#: A COCO results list, or the path of a COCO results JSON file (read in bounded memory).
Predictions = Union[list, str, os.PathLike]

#: Supported IoU types, in the order results are reported.
IOU_TYPES = ("segm", "bbox", "boundary")

#: The 12 COCO summary numbers, in pycocotools' order. ``AR1``/``AR10``/``AR100`` are the recalls at the three
#: detection limits ``(1, 10, max_dets)``; AP and the area-range numbers use ``max_dets`` (100 by default).
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@dataclass(frozen=True)
class Evaluation:
    """The result of one IoU type, under COCO rules (:func:`evaluate_coco`) or LVIS rules
    (:func:`hf_noisy.metrics.evaluate_lvis`).

    Attributes:
        iou_type: ``"segm"``, ``"bbox"`` or ``"boundary"``.
        stats: the summary numbers, by :data:`STAT_NAMES` key (COCO) or
            :data:`hf_noisy.metrics.LVIS_STAT_NAMES` key (LVIS); ``-1.0`` where undefined (no ground truth in that
            range or frequency group), as pycocotools and the ``lvis`` package report them.
        per_category: AP (IoU 0.50:0.95, all areas, the last detection limit) per category id; ``-1.0`` for a
            category without ground truth.
        precision: ``eval["precision"]``, shape ``[T=10 IoU thresholds, R=101 recall thresholds, K categories,
            A=4 area ranges, M detection limits]`` (M = 3 under COCO rules, 1 under LVIS rules), ``-1`` where
            undefined.
        recall: ``eval["recall"]``, shape ``[T, K, A, M]``.
        category_ids: the category id of each index ``K`` (sorted).
        rules: ``"coco"`` or ``"lvis"``.
    """

    iou_type: str
    stats: dict[str, float]
    per_category: dict[int, float]
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    category_ids: tuple[int, ...]
    rules: str = "coco"


def evaluable_annotation(ann: dict, height: int, width: int) -> dict:
    """A ground-truth annotation with the fields evaluation reads (a copy; ``ann`` is not touched)."""
    from pycocotools import mask as mask_utils

    from ..masks import box_polygon, segmentation_to_rle

    # a box-only annotation (bbox scoring only) gets its box as its mask, as pycocotools' loadRes does
    rle = segmentation_to_rle(ann["segmentation"] if "segmentation" in ann else box_polygon(ann["bbox"]),
                              height, width)
    return {
        "id": ann["id"], "image_id": ann["image_id"], "category_id": ann["category_id"],
        "segmentation": rle, "iscrowd": int(ann.get("iscrowd", 0)),
        "area": float(ann["area"]) if "area" in ann else float(mask_utils.area(rle)),
        "bbox": [float(v) for v in ann["bbox"]] if "bbox" in ann else [float(v) for v in mask_utils.toBbox(rle)],
    }


def check_options(iou_types: Iterable[str], dilation_ratio: float, max_dets: int, min_max_dets: int) -> list[str]:
    """The IoU types, deduplicated in order; raises :class:`~hf_noisy.errors.HfNoisyError` on a bad option."""
    from ..errors import HfNoisyError

    iou_types = list(dict.fromkeys(iou_types))
    unknown = [name for name in iou_types if name not in IOU_TYPES]
    if unknown or not iou_types:
        raise HfNoisyError(f"unknown IoU type(s) {unknown or iou_types}; choose from {', '.join(IOU_TYPES)}")
    if not (isinstance(max_dets, int) and not isinstance(max_dets, bool) and max_dets >= min_max_dets):
        raise HfNoisyError(f"max_dets must be an integer >= {min_max_dets}, got {max_dets!r}")
    if not 0 < dilation_ratio <= 1:
        raise HfNoisyError(f"dilation_ratio must be in (0, 1], got {dilation_ratio!r}")
    return iou_types


def check_num_proc(num_proc: int) -> None:
    """Raises :class:`~hf_noisy.errors.HfNoisyError` unless ``num_proc`` is a positive integer."""
    from ..errors import HfNoisyError

    if not (isinstance(num_proc, int) and not isinstance(num_proc, bool) and num_proc >= 1):
        raise HfNoisyError(f"num_proc must be an integer >= 1, got {num_proc!r}")


def run_engine(gt: dict, predictions: Predictions, iou_types: list[str], dilation_ratio: float,
               max_dets: list[int], category_ids: list[int], num_proc: int = 1,
               lvis_max_dets: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{iou_type: (precision [T, R, K, A, M], recall [T, K, A, M])}`` over ``category_ids`` (sorted), as
    faster-coco-eval's ``COCOeval_faster`` accumulates them (in its ``lvis_style`` when ``lvis_max_dets`` is
    set).

    ``predictions`` is a results list or the path of a results file (streamed: see :mod:`.stream`); it is
    validated here. Under LVIS rules each image keeps its ``lvis_max_dets`` best detections over all
    categories, then only those of a category the image lists (see :mod:`.lvis_eval`). Images are evaluated
    in chunks on ``num_proc`` processes (:func:`hf_noisy.metrics.scoring.score`); the numbers do not depend on
    ``num_proc``."""
    from contextlib import ExitStack

    from .engine import Setup, accumulate
    from .predictions import check_ground_truth
    from .scoring import DetectionStore, fill, open_pool, score, spill_directory

    check_ground_truth(gt, iou_types)  # masks for segm/boundary (a box-only ground truth scores bbox only)
    lvis = lvis_max_dets is not None
    setup = Setup(tuple(iou_types), tuple(category_ids), tuple(max_dets), dilation_ratio, lvis)
    with ExitStack() as stack:
        if isinstance(predictions, (str, os.PathLike)):
            size = os.path.getsize(predictions) if os.path.isfile(predictions) else 0
            store = DetectionStore(gt, stack.enter_context(spill_directory()), expected_bytes=size)
            stack.callback(store.close)
        else:
            store = DetectionStore(gt)
        pool = open_pool(num_proc, gt, store)
        if pool is not None:
            stack.enter_context(pool)
        fill(store, predictions, gt, iou_types, pool, num_proc)
        store.finish()
        if lvis:
            from .lvis_eval import federated_rows, top_rows

            store.select(top_rows(store.columns, lvis_max_dets))
            store.select(federated_rows(store.columns, gt, store.position))
        store.sort()
        matches = score(gt, store, setup, pool, num_proc)
    return {iou_type: accumulate(matches, iou_type, setup) for iou_type in iou_types}


def evaluate_coco(
    gt: dict,
    predictions: Predictions,
    iou_types: Iterable[str] = IOU_TYPES,
    *,
    dilation_ratio: float = DEFAULT_DILATION_RATIO,
    max_dets: int = 100,
    num_proc: int = 1,
) -> dict[str, Evaluation]:
    """Evaluate detections against a COCO ground truth, once per IoU type.

    Args:
        gt: a validated COCO instance dict (see :func:`hf_noisy.coco.validate_coco`).
        predictions: COCO results (see :mod:`hf_noisy.metrics.predictions`), or the path of a COCO results
            file, read in bounded memory (:mod:`hf_noisy.metrics.stream`); validated here.
        iou_types: any of :data:`IOU_TYPES`.
        dilation_ratio: boundary width as a fraction of the image diagonal (``boundary`` only).
        max_dets: detections kept per image and category (the third detection limit).
        num_proc: processes that evaluate images (1: this one); the numbers are the same for any value.

    Returns:
        ``{iou_type: Evaluation}`` in the order of ``iou_types``.
    """
    from .engine import coco_stats

    iou_types = check_options(iou_types, dilation_ratio, max_dets, 10)
    check_num_proc(num_proc)
    category_ids = tuple(sorted(category["id"] for category in gt["categories"]))
    accumulated = run_engine(gt, predictions, iou_types, dilation_ratio, [1, 10, max_dets], list(category_ids),
                             num_proc)
    results = {}
    for iou_type, (precision, recall) in accumulated.items():
        stats = dict(zip(STAT_NAMES, coco_stats(precision, recall)))
        results[iou_type] = evaluation(iou_type, precision, recall, stats, category_ids, "coco")
    return results


def evaluation(iou_type: str, precision: Any, recall: Any, stats: dict[str, float], category_ids: tuple[int, ...],
               rules: str) -> Evaluation:
    """An :class:`Evaluation` from accumulated precision ``[T, R, K, A, M]`` and recall ``[T, K, A, M]`` (``K``
    indexed like ``category_ids``) and the summary numbers."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    per_category = {}
    for k, category_id in enumerate(category_ids):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_category[category_id] = float(values.mean()) if values.size else -1.0
    return Evaluation(iou_type, stats, per_category, precision, recall, category_ids, rules)
