"""The streaming metric's per-image inputs (:mod:`.stateful`'s module docstring) as COCO: each image's image dict,
ground-truth annotations and detection results, validated, naming the image of the batch and the field.

Torch tensors and numpy arrays are read without importing torch; mask stacks are encoded to compressed RLE with
pycocotools. Targets are checked by :func:`hf_noisy.coco.validate_coco` (:class:`~hf_noisy.coco.CocoFormatError`),
predictions by :func:`hf_noisy.metrics.prepare_predictions` (:class:`~hf_noisy.metrics.PredictionError`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import HfNoisyError
from .predictions import PredictionError

__all__ = ["MetricStateError", "batch_inputs", "prediction_inputs", "prepare_image", "target_inputs"]


class MetricStateError(HfNoisyError):
    """Metrics that cannot be merged (other settings), or an image given twice."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """A torch tensor or numpy array as nested Python lists (other values as they are)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch, without importing it
        value = value.detach().cpu().numpy()
    return value.tolist() if isinstance(value, np.ndarray) else value


def _mask_stack(value: Any) -> np.ndarray | None:
    """An ``N x H x W`` mask stack as a numpy array, or ``None`` when ``value`` is a list of RLEs / polygons."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return value if isinstance(value, np.ndarray) else None


def _encode(stack: np.ndarray, fail: Callable[[str], Exception]) -> list[dict]:
    """Compressed RLEs (str counts) of an ``N x H x W`` bool / integer 0-1 stack."""
    from pycocotools import mask as mask_utils

    if stack.ndim != 3:
        raise fail(f"must be N x H x W, got shape {tuple(stack.shape)}")
    if stack.dtype != bool:
        if stack.dtype.kind not in "iu" or (stack.size and (stack.min() < 0 or stack.max() > 1)):
            raise fail(f"must be bool or 0/1 integers, got {stack.dtype}")
    if not len(stack):
        return []
    rles = mask_utils.encode(np.asfortranarray(stack.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()} for rle in rles]


def _sequence(item: Mapping, key: str, fail: Callable[[str], Exception], required: bool = True) -> list | None:
    if key not in item:
        if required:
            raise fail(f"field '{key}' missing")
        return None
    value = _plain(item[key])
    if not isinstance(value, (list, tuple)):
        raise fail(f"field '{key}' must be a list, a numpy array or a tensor, got {type(value).__name__}")
    return list(value)


def batch_inputs(predictions: Any, targets: Any, *, start: int, known_ids: set[int], auto: bool | None,
                 categories: list[dict] | None) -> list[tuple[dict, list[dict], list[dict]]]:
    """``(image, annotations, COCO results)`` of each image of a batch, validated (the results' own fields by
    :func:`prepare_image`). ``start``: the number given to the first image without ``image_id``;
    ``known_ids``: the image ids already taken; ``auto``: whether images so far were numbered (``None``: no
    image yet); ``categories``: the categories labels must come from (``None``: any)."""
    from ..coco import LVIS_IMAGE_LISTS, CocoFormatError, validate_coco

    if not isinstance(predictions, Sequence) or not isinstance(targets, Sequence) or \
            isinstance(predictions, (str, bytes)) or isinstance(targets, (str, bytes)):
        raise PredictionError("predictions and targets must be lists of per-image dicts (or one image's dicts)")
    if len(predictions) != len(targets):
        raise PredictionError(f"{len(predictions)} predictions but {len(targets)} targets (one each per image)")
    known = None if categories is None else {c["id"] for c in categories}
    out, batch_ids = [], set()
    for k, (prediction, target) in enumerate(zip(predictions, targets)):
        where = f"image #{k} of the batch"
        if not isinstance(target, Mapping):
            raise CocoFormatError(f"must be a dict, got {type(target).__name__}", source="targets", where=where)
        if not isinstance(prediction, Mapping):
            raise PredictionError(f"{where}: prediction must be a dict, got {type(prediction).__name__}")
        has_id = "image_id" in target
        if auto is not None and has_id == auto:
            raise MetricStateError(f"{where}: field 'image_id': give every target an image_id, or none")
        auto = not has_id
        image_id = _plain(target["image_id"]) if has_id else start + k
        if not _is_int(image_id):
            raise CocoFormatError(f"must be an integer, got {image_id!r}", source="targets", where=where,
                                  field="image_id")
        if image_id in known_ids or image_id in batch_ids:
            raise MetricStateError(f"{where}: field 'image_id': image {image_id} was added twice")
        batch_ids.add(image_id)
        where = f"image #{k} of the batch (image_id {image_id})"
        image, annotations = target_inputs(target, image_id, where)
        results = prediction_inputs(prediction, image, where, known)
        for key in LVIS_IMAGE_LISTS:
            if key in target:
                image[key] = _plain(target[key])
        used = {a.get("category_id") for a in annotations} | {r["category_id"] for r in results}
        for key in LVIS_IMAGE_LISTS:
            used.update(image.get(key) if isinstance(image.get(key), list) else ())
        # validate_coco wants a category: an image that uses none is checked for its size alone
        view = {"images": [image], "annotations": annotations, "categories": categories or [
            {"id": c, "name": str(c)} for c in sorted(c for c in used if _is_int(c))] or [{"id": 0, "name": "none"}]}
        validate_coco(view, source=f"targets, {where}", allow_empty_masks=True)
        out.append((image, annotations, results))
    return out

def target_inputs(target: Mapping, image_id: int, where: str) -> tuple[dict, list[dict]]:
    """The image and COCO annotations of one target."""
    from ..coco import CocoFormatError

    def fail(message: str) -> CocoFormatError:
        return CocoFormatError(message, source="targets", where=where)

    height, width = _plain(target.get("height")), _plain(target.get("width"))
    if "annotations" in target:
        annotations = _sequence(target, "annotations", fail)
        if not all(isinstance(a, Mapping) for a in annotations):
            raise fail("field 'annotations': every annotation must be a dict")
        given = [a["id"] for a in annotations if _is_int(a.get("id"))]
        next_id = max([0, *given]) + 1
        out = []
        for ann in annotations:
            ann = {"iscrowd": 0, **ann, "image_id": image_id}
            if "id" not in ann:
                ann["id"], next_id = next_id, next_id + 1
            out.append(ann)
        return {"id": image_id, "height": height, "width": width, "file_name": str(image_id)}, out
    stack = _mask_stack(target.get("masks"))
    if stack is not None:
        segmentations = _encode(stack, lambda m: fail(f"field 'masks': {m}"))
        if stack.ndim == 3:
            height, width = int(stack.shape[1]), int(stack.shape[2])
    else:
        segmentations = _sequence(target, "masks", fail)
        size = segmentations[0].get("size") if segmentations and isinstance(segmentations[0], Mapping) else None
        if height is None and width is None and isinstance(size, (list, tuple)) and len(size) == 2:
            height, width = size  # RLEs carry the image size
    labels = _sequence(target, "labels", fail)
    columns = {"iscrowd": _sequence(target, "iscrowd", fail, required=False),
               "area": _sequence(target, "area", fail, required=False)}
    for key, values in (("labels", labels), *columns.items()):
        if values is not None and len(values) != len(segmentations):
            raise fail(f"field '{key}': {len(values)} values for {len(segmentations)} masks")
    out = []
    for j, (segmentation, label) in enumerate(zip(segmentations, labels)):
        ann = {"id": j + 1, "image_id": image_id, "category_id": label, "segmentation": segmentation,
               "iscrowd": columns["iscrowd"][j] if columns["iscrowd"] is not None else 0}
        if columns["area"] is not None:
            ann["area"] = columns["area"][j]
        out.append(ann)
    return {"id": image_id, "height": height, "width": width, "file_name": str(image_id)}, out

def prediction_inputs(prediction: Mapping, image: dict, where: str, known: set[int] | None) -> list[dict]:
    """One image's prediction as COCO results (their fields checked by :func:`prepare_image`); ``known``: the
    category ids labels must be among (``None``: any)."""
    def fail(message: str) -> PredictionError:
        return PredictionError(f"predictions, {where}: {message}")

    stack = _mask_stack(prediction.get("masks"))
    masks = _encode(stack, lambda m: fail(f"field 'masks': {m}")) if stack is not None else \
        _sequence(prediction, "masks", fail)
    scores, labels = _sequence(prediction, "scores", fail), _sequence(prediction, "labels", fail)
    boxes = _sequence(prediction, "boxes", fail, required=False)
    if not len(masks) == len(scores) == len(labels) or (boxes is not None and len(boxes) != len(masks)):
        raise fail(f"masks, scores, labels (and boxes) must have the same length, got {len(masks)}, "
                   f"{len(scores)}, {len(labels)}" + ("" if boxes is None else f", {len(boxes)}"))
    for key, values in (("scores", scores), ("labels", labels)):
        for j, value in enumerate(values):
            ok = _is_int(value) if key == "labels" else (isinstance(value, (int, float)) and not isinstance(
                value, bool) and math.isfinite(value))
            if not ok:
                kind = "an integer category id" if key == "labels" else "a finite number"
                raise fail(f"field '{key}': element {j} must be {kind}, got {value!r}")
    if "image_size" in prediction:
        size = _plain(prediction["image_size"])
        if list(size) != [image["height"], image["width"]]:
            raise fail(f"field 'image_size': {size!r} differs from the target's [height, width] = "
                       f"[{image['height']}, {image['width']}]")
    if known is not None:
        for j, label in enumerate(labels):
            if label not in known:
                raise fail(f"field 'labels': element {j}: unknown category id {label}")
    results = []
    for j, (mask, score, label) in enumerate(zip(masks, scores, labels)):
        result = {"image_id": image["id"], "category_id": label, "segmentation": mask, "score": float(score)}
        if boxes is not None:
            result["bbox"] = [float(v) for v in _plain(boxes[j])]
        results.append(result)
    return results

def prepare_image(results: list[dict], image: dict, index: int, iou_types: Sequence[str],
                  box_area: bool | None) -> list[dict]:
    """The evaluable detections of one image (:func:`hf_noisy.metrics.prepare_predictions`; ``box_area``: the
    area rule the first detection of the stream set, ``None`` before it); ``index``: its place in the batch."""
    from .predictions import prepare_predictions

    view = {"images": [image], "categories": [{"id": r["category_id"]} for r in results]}
    try:
        return prepare_predictions(results, view, iou_types, box_area=box_area)
    except PredictionError as err:
        raise PredictionError(f"predictions, image #{index} of the batch (image_id {image['id']}): "
                              f"{err}") from None
