"""COCO-style evaluation of instance segmentations: ``segm`` (mask AP), ``bbox`` (box AP) and ``boundary``
(Boundary AP, Cheng et al. CVPR 2021).

Engine: matching and accumulation run in faster-coco-eval's C++ ``COCOeval_faster`` (numbers identical to
pycocotools' ``COCOeval``); boundaries are computed here, on a window around each instance
(:mod:`hf_noisy.metrics.boundary`), instead of on the full image. For ``boundary`` the IoU of a detection
with a non-crowd ground truth is ``min(mask IoU, boundary IoU)``; with a crowd region it is the mask IoU under
the crowd rule (intersection over the detection's area), as in boundary-iou-api.

Ground-truth conventions: ``area`` as stored in the file decides the small/medium/large range (as in
pycocotools); a missing ``area`` is the mask's pixel count, a missing ``bbox`` the mask's tight box
``[x, y, w, h]``, a missing ``iscrowd`` 0. An annotation without ``segmentation`` (``bbox`` scoring only) has
its box as its mask. Crowd regions are ignored (never counted as missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..coco import LVIS_FREQUENCIES
from .boundary import DEFAULT_DILATION_RATIO, boundary_rle

__all__ = ["IOU_TYPES", "STAT_NAMES", "Evaluation", "evaluate_coco"]

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


def ground_truth_annotations(gt: dict) -> list[dict]:
    """Annotations with the fields evaluation reads (copies; the caller's dict is not touched)."""
    from pycocotools import mask as mask_utils

    from ..masks import box_polygon, segmentation_to_rle

    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    annotations = []
    for ann in gt["annotations"]:  # a box-only annotation (bbox scoring only) gets its box as its mask
        rle = segmentation_to_rle(ann["segmentation"] if "segmentation" in ann else box_polygon(ann["bbox"]),
                                  *sizes[ann["image_id"]])
        annotations.append({
            "id": ann["id"], "image_id": ann["image_id"], "category_id": ann["category_id"],
            "segmentation": rle, "iscrowd": int(ann.get("iscrowd", 0)),
            "area": float(ann["area"]) if "area" in ann else float(mask_utils.area(rle)),
            "bbox": [float(v) for v in ann["bbox"]] if "bbox" in ann else [float(v) for v in mask_utils.toBbox(rle)],
        })
    return annotations


def _coco(images: list, categories: list, annotations: list):
    from faster_coco_eval import COCO

    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    coco.createIndex()
    return coco


def _make_evaluator(iou_type: str):
    """A ``COCOeval_faster`` whose boundary IoU reads the ``boundary`` RLE already stored on each annotation."""
    from faster_coco_eval import COCOeval_faster

    class _Evaluator(COCOeval_faster):
        def _prepare(self) -> None:
            # Decode masks to RLE as usual, but keep the precomputed (windowed) boundaries.
            compute_boundary = self.params.compute_boundary
            self.params.compute_boundary = False
            try:
                super()._prepare()
            finally:
                self.params.compute_boundary = compute_boundary

        def _prepare_freq_group(self) -> list:
            # LVIS rules only: category indices by frequency; a category without ``frequency`` is in no group
            # (faster-coco-eval would raise a KeyError).
            categories = self.cocoGt.load_cats(self.params.catIds)
            return [[k for k, c in enumerate(categories) if c.get("frequency") == label] for label in LVIS_FREQUENCIES]

    return _Evaluator


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


def run_evaluator(gt: dict, ground_truth: list[dict], detections: list[dict], iou_types: list[str],
                  dilation_ratio: float, max_dets: list[int], lvis_style: bool,
                  category_ids: list[int] | None = None) -> dict[str, Any]:
    """``{iou_type: evaluated and accumulated COCOeval_faster}``. ``ground_truth`` and ``detections`` are
    evaluable annotations (see :func:`ground_truth_annotations` and
    :func:`hf_noisy.metrics.prepare_predictions`); boundaries are added here when ``boundary`` is asked for.
    ``category_ids`` (non-empty), when given, limits the evaluation to those categories (default: all)."""
    if "boundary" in iou_types:
        for ann in ground_truth + detections:
            ann["boundary"] = boundary_rle(ann["segmentation"], dilation_ratio)
    evaluators = {}
    for iou_type in iou_types:
        gt_coco = _coco(gt["images"], gt["categories"], ground_truth)
        dt_coco = _coco(gt["images"], gt["categories"], detections)
        evaluator = _make_evaluator(iou_type)(gt_coco, dt_coco, iou_type, print_function=_quiet, lvis_style=lvis_style)
        evaluator.params.maxDets = list(max_dets)
        if category_ids:
            evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluators[iou_type] = evaluator
    return evaluators


def evaluate_coco(
    gt: dict,
    predictions: list,
    iou_types: Iterable[str] = IOU_TYPES,
    *,
    dilation_ratio: float = DEFAULT_DILATION_RATIO,
    max_dets: int = 100,
) -> dict[str, Evaluation]:
    """Evaluate detections against a COCO ground truth, once per IoU type.

    Args:
        gt: a validated COCO instance dict (see :func:`hf_noisy.coco.validate_coco`).
        predictions: COCO results (see :mod:`hf_noisy.metrics.predictions`); validated here.
        iou_types: any of :data:`IOU_TYPES`.
        dilation_ratio: boundary width as a fraction of the image diagonal (``boundary`` only).
        max_dets: detections kept per image and category (the third detection limit).

    Returns:
        ``{iou_type: Evaluation}`` in the order of ``iou_types``.
    """
    from .predictions import prepare_predictions

    iou_types = check_options(iou_types, dilation_ratio, max_dets, 10)
    detections = prepare_predictions(predictions, gt, iou_types)
    evaluators = run_evaluator(gt, ground_truth_annotations(gt), detections, iou_types, dilation_ratio,
                               [1, 10, max_dets], lvis_style=False)
    category_ids = tuple(sorted(category["id"] for category in gt["categories"]))
    results = {}
    for iou_type, evaluator in evaluators.items():
        evaluator.summarize()
        stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats[: len(STAT_NAMES)])}
        results[iou_type] = evaluation(iou_type, evaluator.eval["precision"], evaluator.eval["recall"], stats,
                                       category_ids, "coco")
    return results


def _quiet(*_: Any) -> None:
    """faster-coco-eval's print hook: evaluation prints nothing."""


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
