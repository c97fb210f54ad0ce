"""Per-image inputs (the ``evaluate`` module's format) turned into a COCO ground truth and COCO results.

One image's **prediction**::

    {"masks": [RLE, ...], "scores": [float, ...], "labels": [category id, ...],
     "image_size": [height, width] (optional, checked against the reference), "boxes": [[x, y, w, h], ...] (optional)}

One image's **reference**::

    {"image_id": int (optional; default: position in the stream), "height": int, "width": int,
     "annotations": [{"segmentation": polygons or RLE, "category_id": int, "iscrowd": 0/1 (default 0),
                      "id": int (optional), "area": float (optional), "bbox": [x, y, w, h] (optional)}, ...],
     "neg_category_ids": [int, ...], "not_exhaustive_category_ids": [int, ...] (optional; LVIS)}

RLE ``counts`` may be str or a list of ints (uncompressed). The categories are the given category dicts (e.g.
LVIS's, whose ``frequency`` groups APr/APc/APf) or, by default, every id used by a reference (annotations and
LVIS lists) or a prediction. Boxes, when given, set the detections' area as in pycocotools' ``loadRes`` (see
:mod:`hf_noisy.metrics.predictions`).
"""

from __future__ import annotations

from typing import Any

from ..coco import LVIS_IMAGE_LISTS
from .predictions import PredictionError

__all__ = ["coco_from_images", "flatten"]


def coco_from_images(predictions: list[dict], references: list[dict],
                     categories: list[dict] | None = None) -> tuple[dict, list[dict]]:
    """``(gt, results)``: a COCO ground-truth dict and a COCO results list. Raises :class:`PredictionError`
    on malformed input (ground-truth problems surface later as :class:`hf_noisy.coco.CocoFormatError`)."""
    if len(predictions) != len(references):
        raise PredictionError(f"{len(predictions)} predictions but {len(references)} references (one each per image)")
    images, annotations, results, used = [], [], [], set()
    for index, (prediction, reference) in enumerate(zip(predictions, references)):
        where = f"image #{index}"
        if not isinstance(prediction, dict) or not isinstance(reference, dict):
            raise PredictionError(f"{where}: prediction and reference must be objects")
        image_id = reference.get("image_id", index)
        height, width = reference.get("height"), reference.get("width")
        image = {"id": image_id, "height": height, "width": width, "file_name": str(image_id)}
        for key in LVIS_IMAGE_LISTS:
            if key in reference:
                image[key] = reference[key]
                used.update(reference[key] if isinstance(reference[key], list) else ())
        images.append(image)
        if "image_size" in prediction and list(prediction["image_size"]) != [height, width]:
            raise PredictionError(f"{where}: prediction image_size {prediction['image_size']!r} differs from the "
                                  f"reference's [height, width] = [{height}, {width}]")
        for ann in _list(reference, "annotations", where):
            if not isinstance(ann, dict):
                raise PredictionError(f"{where}: every reference annotation must be an object")
            ann = {"iscrowd": 0, **ann, "image_id": image_id}
            ann.setdefault("id", len(annotations) + 1)
            annotations.append(ann)
            used.add(ann.get("category_id"))
        masks, scores, labels = (_list(prediction, key, where) for key in ("masks", "scores", "labels"))
        boxes = prediction.get("boxes")
        if not len(masks) == len(scores) == len(labels) or (boxes is not None and len(boxes) != len(masks)):
            raise PredictionError(f"{where}: masks, scores, labels (and boxes) must have the same length")
        for k, (mask, score, label) in enumerate(zip(masks, scores, labels)):
            result = {"image_id": image_id, "category_id": label, "segmentation": mask, "score": score}
            if boxes is not None:
                result["bbox"] = list(boxes[k])
            results.append(result)
            used.add(label)
    if categories is None:
        ids = sorted(c for c in used if isinstance(c, int) and not isinstance(c, bool))
        categories = [{"id": c, "name": str(c)} for c in ids]
    elif not isinstance(categories, list) or not all(isinstance(c, dict) for c in categories):
        raise PredictionError("categories must be a list of category objects ({'id', 'name', 'frequency', ...})")
    else:
        categories = [{"name": str(c.get("id")), **c} for c in categories]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results


def _list(item: dict, key: str, where: str) -> list:
    value = item.get(key)
    if not isinstance(value, list):
        raise PredictionError(f"{where}: field '{key}' must be a list, got {type(value).__name__}")
    return value


def flatten(evaluations: dict[str, Any], per_category: bool = False) -> dict[str, float]:
    """``{f"{iou_type}_{stat}": value}`` (e.g. ``segm_AP``, ``boundary_AP50``, ``bbox_ARl``), plus
    ``f"{iou_type}_AP_cat{category_id}"`` per category when ``per_category``."""
    flat = {}
    for iou_type, evaluation in evaluations.items():
        flat.update({f"{iou_type}_{name}": value for name, value in evaluation.stats.items()})
        if per_category:
            flat.update({f"{iou_type}_AP_cat{k}": value for k, value in evaluation.per_category.items()})
    return flat
