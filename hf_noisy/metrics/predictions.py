"""Detection results in COCO results format: read, validate, and turn into evaluable annotations.

A result is ``{"image_id": int, "category_id": int, "segmentation": RLE, "score": float}`` with an optional
``bbox`` ``[x, y, w, h]``. ``segmentation`` is compressed RLE (``counts`` a str) or uncompressed RLE (``counts``
a list of ints) whose ``size`` is the image's ``[height, width]``; polygons (a list of ``[x1, y1, x2, y2, ...]``)
are accepted too and rasterised as pycocotools does.

Area rule (pycocotools ``COCO.loadRes``, kept so that numbers match it): when the *first* result has a
non-empty ``bbox``, every result must have one and a result's ``area`` (used for the small/medium/large
ranges) is the box area ``w * h``; otherwise the area is the mask's pixel count and a missing ``bbox`` is the
mask's tight box. Results get ids ``1..n`` in list order.

Box-only results (a ``bbox`` and no ``segmentation``, a box detector's output) are scored for ``bbox`` exactly
as ``loadRes`` scores them: the box is the detection, its area the box area, and its mask the box as a
polygon (:func:`hf_noisy.masks.box_polygon`). Mask-based IoU types (``segm``, ``boundary``) need a mask on
every detection and every ground truth: asking for them gives an error naming the first one without.

An empty list is valid: it scores 0 AP / 0 AR wherever the ground truth has instances.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

from ..errors import HfNoisyError

__all__ = ["MASK_IOU_TYPES", "PredictionError", "check_ground_truth", "load_predictions", "predictions_of",
           "prepare_predictions"]


class PredictionError(HfNoisyError):
    """Detection results that cannot be evaluated; the message names the result (by index) and the field."""


def load_predictions(path: str | os.PathLike) -> list:
    """Read a COCO results JSON file (a list of results; validated by :func:`prepare_predictions`)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: no such file")
    return predictions_of(path.read_bytes(), str(path))


def predictions_of(data: bytes, source: str) -> list:
    """:func:`load_predictions` of a file's bytes ``data`` (``source``: its name, for messages)."""
    from ..coco import CocoFormatError, parse_coco_bytes

    try:
        results = parse_coco_bytes(data, source=source)
    except CocoFormatError as err:
        raise PredictionError(str(err)) from None
    if not isinstance(results, list):
        raise PredictionError(f"{source}: COCO results must be a JSON list of detections, got "
                              f"{type(results).__name__}")
    return results


def _finite(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


#: IoU types that compare masks: they need a ``segmentation`` on every detection and ground truth.
MASK_IOU_TYPES = ("segm", "boundary")
_BOX_ONLY = "boxes alone are scored for box AP only: iou_types=['bbox'] (hf-noisy evaluate --iou-types bbox)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    from ..coco import _short as short

    return short(value)


def _need(masks: list[str]) -> str:
    return " and ".join(masks) + (" need" if len(masks) > 1 else " needs")


def check_ground_truth(gt: dict, iou_types: Iterable[str], *, source: str = "ground truth") -> None:
    """Raise :class:`~hf_noisy.coco.CocoFormatError` (naming ``source``) when a mask-based IoU type is asked
    for and a ground-truth annotation has no ``segmentation`` (a box-only ground truth is scored for ``bbox``)."""
    from ..coco import CocoFormatError

    masks = [name for name in iou_types if name in MASK_IOU_TYPES]
    if not masks:
        return
    for ann in gt.get("annotations", ()):  # a view of images and categories only has none to check
        if "segmentation" not in ann:
            raise CocoFormatError(f"missing, and {_need(masks)} masks ({_BOX_ONLY})", source=source,
                                  where=f"annotation {ann['id']}", field="segmentation")


def prepare_predictions(results: Any, gt: dict, iou_types: Iterable[str] = ("segm", "bbox", "boundary"), *,
                        box_area: bool | None = None) -> list[dict]:
    """Validated copies of ``results`` as annotations of a result set, ready for evaluation.

    Each returned dict has ``id``, ``image_id``, ``category_id``, ``segmentation`` (compressed RLE, str
    counts), ``score``, ``bbox``, ``area`` and ``iscrowd = 0``. ``gt`` is a validated COCO dict (its images
    and categories define the valid ids and sizes). ``iou_types`` are the types to be scored: with ``bbox``
    alone, box-only results are accepted (see the module docstring). Raises :class:`PredictionError` (and
    :class:`~hf_noisy.coco.CocoFormatError` for a ground truth without masks, see :func:`check_ground_truth`).
    ``box_area``: the area rule when ``results`` continue a results list whose first detection decided it
    (``None``: this list's first result decides, as ``loadRes``).
    """
    from pycocotools import mask as mask_utils

    from ..masks import box_polygon, check_rle, segmentation_to_rle

    iou_types = list(iou_types)
    check_ground_truth(gt, iou_types)
    masks = [name for name in iou_types if name in MASK_IOU_TYPES]
    if not isinstance(results, list):
        raise PredictionError(f"results must be a list of detections, got {type(results).__name__}")
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    categories = {category["id"] for category in gt["categories"]}
    if box_area is None:
        box_area = bool(results) and isinstance(results[0], dict) and bool(results[0].get("bbox"))
    prepared = []
    for index, result in enumerate(results):
        where = f"detection #{index}"
        if not isinstance(result, dict):
            raise PredictionError(f"{where}: must be an object, got {type(result).__name__}")
        for key in ("image_id", "category_id", "score"):
            if key not in result:
                raise PredictionError(f"{where}: field '{key}' missing")
        image_id, category_id, score = result["image_id"], result["category_id"], result["score"]
        if not _is_int(image_id) or image_id not in sizes:
            raise PredictionError(f"{where}: field 'image_id': unknown image id {_short(image_id)}")
        if not _is_int(category_id) or category_id not in categories:
            raise PredictionError(f"{where}: field 'category_id': unknown category id {_short(category_id)}")
        if not _finite(score):
            raise PredictionError(f"{where}: field 'score': must be a finite number, got {_short(score)}")
        height, width = sizes[image_id]
        bbox = result.get("bbox")
        if bbox is not None and bbox != []:
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_finite, bbox)) or min(bbox[2:]) < 0:
                raise PredictionError(f"{where}: field 'bbox': must be [x, y, w, h] finite with w, h >= 0, "
                                      f"got {_short(bbox)}")
        elif box_area:
            raise PredictionError(f"{where}: field 'bbox' missing, but the first detection has one (a bbox sets "
                                  "the area of every detection, as in pycocotools' loadRes)")
        else:
            bbox = None
        if "segmentation" in result:
            rle = _mask(result["segmentation"], height, width, image_id, where, check_rle, segmentation_to_rle)
        elif masks:
            raise PredictionError(f"{where}: field 'segmentation' missing, and {_need(masks)} masks "
                                  f"({_BOX_ONLY})")
        elif bbox is None:
            raise PredictionError(f"{where}: field 'segmentation' missing, and no 'bbox' either")
        elif not box_area:
            raise PredictionError(f"{where}: field 'segmentation' missing, but the first detection has no bbox, "
                                  "so areas are mask areas (as in pycocotools' loadRes): give the first one a bbox")
        else:  # a box-only detection, as loadRes makes it: the box as a polygon
            rle = segmentation_to_rle(box_polygon(bbox), height, width)
        if bbox is None:
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
        area = bbox[2] * bbox[3] if box_area else float(mask_utils.area(rle))
        prepared.append({"id": index + 1, "image_id": image_id, "category_id": category_id, "segmentation": rle,
                         "score": float(score), "bbox": [float(v) for v in bbox], "area": area, "iscrowd": 0})
    return prepared


def _mask(segmentation: Any, height: int, width: int, image_id: int, where: str, check_rle,
          segmentation_to_rle) -> dict:
    """A detection's ``segmentation`` checked and as compressed RLE (str counts)."""
    if isinstance(segmentation, list):
        if not segmentation or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                       and all(map(_finite, p)) for p in segmentation):
            raise PredictionError(f"{where}: field 'segmentation': polygons must be lists of >= 3 finite (x, y) points")
    elif not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), (str, list)):
        raise PredictionError(f"{where}: field 'segmentation': must be an RLE object {{'size', 'counts'}} or polygons")
    elif segmentation.get("size") != [height, width]:
        raise PredictionError(
            f"{where}: field 'segmentation': RLE size {_short(segmentation.get('size'))} does not match image "
            f"{image_id}'s [height, width] = [{height}, {width}]"
        )
    elif isinstance(segmentation["counts"], list) and not all(map(_is_int, segmentation["counts"])):
        raise PredictionError(f"{where}: field 'segmentation': uncompressed RLE counts must be integers")
    try:
        if isinstance(segmentation, dict):
            check_rle(segmentation)
        return segmentation_to_rle(segmentation, height, width)
    except (HfNoisyError, ValueError, IndexError, TypeError, OverflowError) as err:  # MaskError: the codec refused it
        raise PredictionError(f"{where}: field 'segmentation': invalid RLE: {err}") from None
