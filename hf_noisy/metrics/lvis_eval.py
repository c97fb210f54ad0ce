"""LVIS evaluation (Gupta et al., CVPR 2019): mask AP, box AP and Boundary AP under LVIS's federated rules.

LVIS is annotated *federatedly*: each image says which categories were checked. The rules, as in the ``lvis``
package's ``LVISEval`` (v0.5.3):

* **Top detections per image.** Only the ``max_dets`` (300) highest-scoring detections of an image are kept,
  over all its categories (not per category); ties keep the order of the results list.
* **Unlisted categories are not penalised.** A detection of category ``c`` on image ``i`` counts only if ``c``
  is in the image's positive set (it has a ground-truth annotation of ``c``) or in its ``neg_category_ids``;
  other detections are dropped (after the top-``max_dets`` cut, as in ``lvis``).
* **Not exhaustively annotated categories.** A detection of a category in the image's
  ``not_exhaustive_category_ids`` that matches no ground truth is ignored, not a false positive.
* **Summary numbers** (:data:`LVIS_STAT_NAMES`): AP at IoU 0.50:0.95, 0.50 and 0.75; AP for small (area
  < 32²), medium and large (>= 96²) objects; AP over the rare, common and frequent categories (the category's
  ``frequency``: ``"r"``, ``"c"``, ``"f"``); and AR at ``max_dets`` over all, small, medium and large objects
  (the ``lvis`` package's ``AR@300``, ``ARs@300``, ...). Undefined numbers are ``-1.0``.

Matching, accumulation and the IoU types are the COCO engine's (:mod:`.coco_eval`: faster-coco-eval's C++ in
its ``lvis_style`` mode, whose numbers equal the ``lvis`` package's; Boundary AP uses ``min(mask IoU, boundary
IoU)`` as boundary-iou-api's ``lvis_instance_api``).

Area ranges: an object is in a range ``[lo, hi]`` when ``lo <= area <= hi``, as in the ``lvis`` package (and
pycocotools); boundary-iou-api's LVIS port uses ``area < hi`` instead, so its Boundary APs/APm/APl/ARs/ARm/ARl
differ from these exactly when some area equals 32² or 96² (the other numbers are unaffected). Crowd regions do
not exist in LVIS; a ground truth with ``iscrowd = 1`` keeps the COCO crowd rule here (boundary-iou-api does the
same; the ``lvis`` package would count it as an ordinary object).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from ..coco import LVIS_FREQUENCIES, LVIS_IMAGE_LISTS
from .boundary import DEFAULT_DILATION_RATIO
from .coco_eval import IOU_TYPES, Evaluation, Predictions, check_num_proc, check_options, evaluation, run_engine

__all__ = ["LVIS_MAX_DETS", "LVIS_STAT_NAMES", "evaluate_lvis", "federated", "is_lvis", "top_per_image",
           "federated_rows", "top_rows"]

#: The LVIS summary numbers, in the ``lvis`` package's order (``AR``/``ARs``/``ARm``/``ARl`` are its
#: ``AR@300``/``ARs@300``/``ARm@300``/``ARl@300`` for the default ``max_dets``).
LVIS_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR", "ARs", "ARm", "ARl")

#: LVIS's official limit of detections per image.
LVIS_MAX_DETS = 300

def is_lvis(gt: dict) -> bool:
    """Whether a ground truth is LVIS-style: an image carries ``neg_category_ids`` or
    ``not_exhaustive_category_ids``, or a category carries ``frequency``."""
    images, categories = gt.get("images") or [], gt.get("categories") or []
    return any(isinstance(image, dict) and any(key in image for key in LVIS_IMAGE_LISTS) for image in images) or any(
        isinstance(category, dict) and "frequency" in category for category in categories)


def top_per_image(detections: list[dict], max_dets: int) -> list[dict]:
    """The ``max_dets`` highest-scoring detections of each image (ties: list order), in list order."""
    by_image: dict[int, list[int]] = defaultdict(list)
    for index, det in enumerate(detections):
        by_image[det["image_id"]].append(index)
    dropped: set[int] = set()
    for indices in by_image.values():
        if len(indices) > max_dets:
            dropped.update(sorted(indices, key=lambda i: -detections[i]["score"])[max_dets:])
    return [det for index, det in enumerate(detections) if index not in dropped]


def federated(detections: list[dict], gt: dict) -> list[dict]:
    """The detections whose category is in their image's positive set or ``neg_category_ids``."""
    listed: dict[int, set[int]] = {image["id"]: set(image.get("neg_category_ids", ())) for image in gt["images"]}
    for ann in gt["annotations"]:
        listed[ann["image_id"]].add(ann["category_id"])
    return [det for det in detections if det["category_id"] in listed[det["image_id"]]]


def top_rows(columns: dict[str, np.ndarray], max_dets: int) -> np.ndarray:
    """:func:`top_per_image` on detection columns (``position``, ``id``, ``score``): a mask of the rows kept."""
    order = np.lexsort((columns["id"], -columns["score"], columns["position"]))
    position = columns["position"][order]
    first = np.searchsorted(position, position, side="left")
    keep = np.zeros(len(order), bool)
    keep[order] = np.arange(len(order)) - first < max_dets
    return keep


def federated_rows(columns: dict[str, np.ndarray], gt: dict, position: dict[int, int]) -> np.ndarray:
    """:func:`federated` on detection columns (``position``, ``category``): a mask of the rows kept.
    ``position`` maps image ids to the columns' positions."""
    categories = np.array(sorted({category["id"] for category in gt["categories"]}), np.int64)
    width = len(categories) + 1

    def keys(positions: list[int], category_ids: list[int]) -> np.ndarray:
        ids = np.asarray(category_ids, np.int64)
        at = np.searchsorted(categories, ids)
        known = (at < len(categories)) & (categories[np.minimum(at, len(categories) - 1)] == ids)
        return np.asarray(positions, np.int64)[known] * width + at[known]

    listed_positions, listed_categories = [], []
    for image in gt["images"]:
        negatives = [c for c in image.get("neg_category_ids", ()) if isinstance(c, int)]
        listed_positions += [position[image["id"]]] * len(negatives)
        listed_categories += negatives
    for ann in gt["annotations"]:
        listed_positions.append(position[ann["image_id"]])
        listed_categories.append(ann["category_id"])
    listed = keys(listed_positions, listed_categories)
    return np.isin(columns["position"].astype(np.int64) * width + np.searchsorted(categories, columns["category"]),
                   listed)


def evaluate_lvis(
    gt: dict,
    predictions: Predictions,
    iou_types: Iterable[str] = IOU_TYPES,
    *,
    dilation_ratio: float = DEFAULT_DILATION_RATIO,
    max_dets: int = LVIS_MAX_DETS,
    num_proc: int = 1,
) -> dict[str, Evaluation]:
    """Evaluate detections against an LVIS ground truth under LVIS's federated rules (module docstring).

    Args:
        gt: a validated LVIS (or COCO) instance dict (see :func:`hf_noisy.coco.validate_coco`); images may carry
            ``neg_category_ids`` and ``not_exhaustive_category_ids``, categories ``frequency``. An image without
            them has an empty negative set; a category without ``frequency`` is in no frequency group.
        predictions: COCO results (see :mod:`hf_noisy.metrics.predictions`), or the path of a COCO results
            file, read in bounded memory; validated here.
        iou_types: any of :data:`~hf_noisy.metrics.IOU_TYPES`.
        dilation_ratio: boundary width as a fraction of the image diagonal (``boundary`` only).
        max_dets: detections kept per image (over all categories).
        num_proc: processes that evaluate images (1: this one); the numbers are the same for any value.

    Returns:
        ``{iou_type: Evaluation}`` in the order of ``iou_types``, ``stats`` keyed by :data:`LVIS_STAT_NAMES`,
        ``rules == "lvis"``.
    """
    from faster_coco_eval.core.cocoeval import Params

    iou_types = check_options(iou_types, dilation_ratio, max_dets, 1)
    check_num_proc(num_proc)
    # Only categories with ground truth can have a defined AP or AR: evaluate those, report all (-1 elsewhere).
    with_gt = sorted({ann["category_id"] for ann in gt["annotations"]})
    accumulated = run_engine(gt, predictions, iou_types, dilation_ratio, [max_dets], with_gt, num_proc,
                             lvis_max_dets=max_dets)
    frequency = {category["id"]: category.get("frequency") for category in gt["categories"]}
    category_ids = tuple(sorted(frequency))
    position = {category_id: k for k, category_id in enumerate(category_ids)}
    results = {}
    iou_thresholds = np.asarray(Params(iouType="segm").iouThrs)
    evaluated = with_gt
    for iou_type, (precision, recall) in accumulated.items():
        # The means skip undefined (-1) entries, so the evaluated categories alone give the same numbers.
        groups = [[k for k, c in enumerate(evaluated) if frequency[c] == label] for label in LVIS_FREQUENCIES]
        stats = _stats(precision[..., -1], recall[..., -1], iou_thresholds, groups)
        rows = [position[c] for c in evaluated]
        results[iou_type] = evaluation(iou_type, _all_categories(precision, rows, len(category_ids), axis=2),
                                       _all_categories(recall, rows, len(category_ids), axis=1), stats,
                                       category_ids, "lvis")
    return results


def _all_categories(values: np.ndarray, rows: list[int], count: int, axis: int) -> np.ndarray:
    """``values`` (category axis ``axis``, in the order of ``rows``) spread over all ``count`` categories, ``-1``
    (undefined) for the others."""
    shape = list(values.shape)
    shape[axis] = count
    out = np.full(shape, -1.0)
    index: list[Any] = [slice(None)] * len(shape)
    index[axis] = rows
    out[tuple(index)] = values
    return out


def _mean(values: np.ndarray) -> float:
    """Mean of the defined (> -1) entries, ``-1.0`` when there is none (the ``lvis`` package's rule)."""
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0


def _stats(precision: np.ndarray, recall: np.ndarray, iou_thresholds: np.ndarray,
           groups: list[list[int]]) -> dict[str, float]:
    """The :data:`LVIS_STAT_NAMES` numbers from ``precision[T, R, K, A]`` and ``recall[T, K, A]`` (areas in the
    order all, small, medium, large)."""
    at50, at75 = (int(np.flatnonzero(iou_thresholds == t)[0]) for t in (0.5, 0.75))
    stats = {
        "AP": _mean(precision[:, :, :, 0]),
        "AP50": _mean(precision[at50, :, :, 0]),
        "AP75": _mean(precision[at75, :, :, 0]),
        "APs": _mean(precision[:, :, :, 1]),
        "APm": _mean(precision[:, :, :, 2]),
        "APl": _mean(precision[:, :, :, 3]),
    }
    for label, group in zip(("APr", "APc", "APf"), groups):
        stats[label] = _mean(precision[:, :, group, 0])
    for label, area in zip(("AR", "ARs", "ARm", "ARl"), range(4)):
        stats[label] = _mean(recall[:, :, area])
    return stats
