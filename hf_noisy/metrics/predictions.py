"""Detection results in COCO results format: read, validate, and turn into evaluable annotations.

A result is ``{"image_id": int, "category_id": int, "segmentation": RLE, "score": float}`` with an optional
``bbox`` ``[x, y, w, h]``. ``segmentation`` is compressed RLE (``counts`` a str) or uncompressed RLE (``counts``
a list of ints) whose ``size`` is the image's ``[height, width]``; polygons (a list of ``[x1, y1, x2, y2, ...]``)
are accepted too and rasterised as pycocotools does.

Area rule (pycocotools ``COCO.loadRes``, kept so that numbers match it): when the *first* result has a
non-empty ``bbox``, every result must have one and a result's ``area`` (used for the small/medium/large
ranges) is the box area ``w * h``; otherwise the area is the mask's pixel count and a missing ``bbox`` is the
mask's tight box. Results get ids ``1..n`` in list order.

An empty list is valid: it scores 0 AP / 0 AR wherever the ground truth has instances.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..errors import HfNoisyError

__all__ = ["PredictionError", "load_predictions", "prepare_predictions"]


class PredictionError(HfNoisyError):
    """Detection results that cannot be evaluated; the message names the result (by index) and the field."""


def load_predictions(path: str | os.PathLike) -> list:
    """Read a COCO results JSON file (a list of results; validated by :func:`prepare_predictions`)."""
    from ..coco import CocoFormatError, parse_coco_bytes

    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: no such file")
    try:
        data = parse_coco_bytes(path.read_bytes(), source=str(path))
    except CocoFormatError as err:
        raise PredictionError(str(err)) from None
    if not isinstance(data, list):
        raise PredictionError(f"{path}: COCO results must be a JSON list of detections, got {type(data).__name__}")
    return data


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def prepare_predictions(results: Any, gt: dict) -> list[dict]:
    """Validated copies of ``results`` as annotations of a result set, ready for evaluation.

    Each returned dict has ``id``, ``image_id``, ``category_id``, ``segmentation`` (compressed RLE, str
    counts), ``score``, ``bbox``, ``area`` and ``iscrowd = 0``. ``gt`` is a validated COCO dict (its images
    and categories define the valid ids and sizes). Raises :class:`PredictionError`.
    """
    from pycocotools import mask as mask_utils

    from ..masks import check_rle, segmentation_to_rle

    if not isinstance(results, list):
        raise PredictionError(f"results must be a list of detections, got {type(results).__name__}")
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    categories = {category["id"] for category in gt["categories"]}
    box_area = bool(results) and isinstance(results[0], dict) and bool(results[0].get("bbox"))
    prepared = []
    for index, result in enumerate(results):
        where = f"detection #{index}"
        if not isinstance(result, dict):
            raise PredictionError(f"{where}: must be an object, got {type(result).__name__}")
        for key in ("image_id", "category_id", "segmentation", "score"):
            if key not in result:
                raise PredictionError(f"{where}: field '{key}' missing")
        image_id, category_id, score = result["image_id"], result["category_id"], result["score"]
        if isinstance(image_id, bool) or image_id not in sizes:
            raise PredictionError(f"{where}: field 'image_id': unknown image id {image_id!r}")
        if isinstance(category_id, bool) or category_id not in categories:
            raise PredictionError(f"{where}: field 'category_id': unknown category id {category_id!r}")
        if not _finite(score):
            raise PredictionError(f"{where}: field 'score': must be a finite number, got {score!r}")
        height, width = sizes[image_id]
        segmentation = result["segmentation"]
        if isinstance(segmentation, list):
            if not segmentation or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                           and all(map(_finite, p)) for p in segmentation):
                raise PredictionError(f"{where}: field 'segmentation': polygons must be lists of >= 3 finite (x, y) points")
        elif not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), (str, list)):
            raise PredictionError(f"{where}: field 'segmentation': must be an RLE object {{'size', 'counts'}} or polygons")
        elif list(segmentation.get("size", [])) != [height, width]:
            raise PredictionError(
                f"{where}: field 'segmentation': RLE size {segmentation.get('size')!r} does not match image "
                f"{image_id}'s [height, width] = [{height}, {width}]"
            )
        try:
            if isinstance(segmentation, dict):
                check_rle(segmentation)
            rle = segmentation_to_rle(segmentation, height, width)
        except (ValueError, IndexError, TypeError) as err:
            raise PredictionError(f"{where}: field 'segmentation': invalid RLE: {err}") from None
        bbox = result.get("bbox")
        if bbox is not None and bbox != []:
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_finite, bbox)) or min(bbox[2:]) < 0:
                raise PredictionError(f"{where}: field 'bbox': must be [x, y, w, h] finite with w, h >= 0, got {bbox!r}")
        elif box_area:
            raise PredictionError(f"{where}: field 'bbox' missing, but the first detection has one (a bbox sets "
                                  "the area of every detection, as in pycocotools' loadRes)")
        else:
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
        area = bbox[2] * bbox[3] if box_area else float(mask_utils.area(rle))
        prepared.append({"id": index + 1, "image_id": image_id, "category_id": category_id, "segmentation": rle,
                         "score": float(score), "bbox": [float(v) for v in bbox], "area": area, "iscrowd": 0})
    return prepared
