"""Mask AP, Boundary AP and box AP as a streaming metric: feed batches during validation, compute at the end.

>>> metric = InstanceSegmentationAP(iou_types=("segm", "boundary"))          # doctest: +SKIP
>>> metric.update(predictions, targets)      # one dict per image, any number of times
>>> metric.sync(accelerate.utils.gather_object)   # several processes: every rank gets all of them
>>> metric.compute()["boundary"].stats["AP"]

Each :meth:`~InstanceSegmentationAP.update` validates its images (a bad one raises at once, naming the image and
the field), matches each image with the evaluation engine (:func:`hf_noisy.metrics.engine.evaluate_image`, the
step :func:`hf_noisy.metrics.evaluate` runs on every image), and keeps only the compact match record of each
scored detection: its category id (int64), image id (int64), rank in its image and category (int32), score
(float64), and per IoU type one uint8 code per area range and IoU threshold (4 x 10). That is
:attr:`~InstanceSegmentationAP.bytes_per_detection` ``= 28 + 40 * len(iou_types)`` bytes (148 for the three IoU
types), plus 8 bytes per image and 40 per (image, category with ground truth); the masks are dropped after
their image is matched. :meth:`~InstanceSegmentationAP.compute` accumulates the records once, so the numbers
are :func:`hf_noisy.metrics.evaluate`'s bit for bit, whatever the batches, their order and the processes
(records are ordered by category, score, image id and rank, never by arrival).

Inputs, one dict per image (torch tensors, numpy arrays or lists):

* **prediction**: ``masks`` (``N x H x W`` bool/uint8, or a list of N COCO RLEs / polygons), ``scores`` (N
  floats), ``labels`` (N category ids); optional ``boxes`` (N ``[x, y, w, h]``: the box AP boxes; with them the
  areas are box areas, pycocotools' ``loadRes`` rule, decided by the first detection ever given) and
  ``image_size`` (``[H, W]``, checked).
* **target**: either ``masks`` (``M x H x W``, or M RLEs / polygons with ``height`` and ``width``), ``labels``
  (M ids), optional ``iscrowd`` (M 0/1) and ``area`` (M floats; default the mask's pixel count); or COCO
  ``annotations`` (``segmentation``, ``category_id``, optional ``iscrowd``, ``area``, ``bbox``, ``id``) with
  ``height`` and ``width``. Optional ``image_id`` (an int, unique; without it images are numbered in order of
  arrival, and :meth:`~InstanceSegmentationAP.merge` numbers another metric's images after this one's); LVIS:
  ``neg_category_ids`` and ``not_exhaustive_category_ids``.

A bad prediction raises :class:`~hf_noisy.metrics.PredictionError`, a bad target
:class:`~hf_noisy.coco.CocoFormatError`, a misuse (mixed configurations, an image given twice)
:class:`MetricStateError`; all are :class:`~hf_noisy.errors.HfNoisyError`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .boundary import DEFAULT_DILATION_RATIO
from .driver import Evaluation, check_dilation_ratio, check_iou_types, summarize
from .inputs import MetricStateError, batch_inputs, prepare_image
from .predictions import PredictionError
from .protocol import IOU_TYPES, Protocol, get_protocol

__all__ = ["InstanceSegmentationAP", "MetricStateError", "all_gather_object"]

#: Area ranges x IoU thresholds: the uint8 codes kept per detection and IoU type.
_CODES = 4 * 10
#: Consolidate the per-update chunks into one when this many have piled up (bounds the per-chunk overhead).
_MAX_CHUNKS = 64


class InstanceSegmentationAP:
    """A streaming mask / Boundary / box AP metric (module docstring): ``update``, ``compute``, ``reset``,
    ``merge``, ``sync``.

    Args:
        iou_types: any of :data:`~hf_noisy.metrics.IOU_TYPES`.
        protocol: ``"coco"`` or ``"lvis"`` (or a :class:`~hf_noisy.metrics.Protocol`); see
            :mod:`hf_noisy.metrics.protocol`.
        categories: the category dicts (``id``; LVIS: ``frequency``) that labels must come from and results are
            reported for; default: every id seen (LVIS's APr/APc/APf are then -1).
        dilation_ratio: boundary width as a fraction of the image diagonal (``boundary``).
        max_dets: detections kept (COCO: per image and category; LVIS: per image); default the protocol's.
    """

    def __init__(self, iou_types: Iterable[str] = IOU_TYPES, *, protocol: str | Protocol = "coco",
                 categories: Sequence[Mapping] | None = None, dilation_ratio: float = DEFAULT_DILATION_RATIO,
                 max_dets: int | None = None) -> None:
        from .engine import Setup

        self.protocol = get_protocol(protocol)
        self.iou_types = check_iou_types(iou_types)
        check_dilation_ratio(dilation_ratio)
        self.dilation_ratio = float(dilation_ratio)
        limits = self.protocol.detection_limits(max_dets)
        self.max_dets = limits[-1]
        if categories is not None and not (isinstance(categories, (list, tuple)) and all(
                isinstance(c, Mapping) and isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool)
                for c in categories)):
            raise MetricStateError("categories must be a list of category dicts with an integer 'id'")
        self.categories = None if categories is None else [dict(c) for c in categories]
        self._setup = Setup(self.iou_types, (), limits, self.dilation_ratio, self.protocol.federated)
        self.reset()

    # ----------------------------------------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget every image (the settings stay)."""
        self._chunks: list[dict[str, np.ndarray]] = []
        self._auto: bool | None = None  # images numbered by arrival (True) or by their image_id (False)
        self._box_area: bool | None = None  # pycocotools' loadRes area rule, set by the first detection
        self._image_ids: set[int] = set()

    @property
    def bytes_per_detection(self) -> int:
        """Bytes of state per kept detection: category, image id, score (8 each), rank (4), 40 codes per IoU
        type (1 each)."""
        return 8 + 8 + 4 + 8 + _CODES * len(self.iou_types)

    @property
    def num_detections(self) -> int:
        """Detections held (the scored ones: LVIS drops some at update)."""
        return sum(len(chunk["score"]) for chunk in self._chunks)

    @property
    def num_images(self) -> int:
        return len(self._image_ids)

    def state_nbytes(self) -> int:
        """Bytes held in the state's arrays: ``bytes_per_detection * num_detections`` + 8 per image + 40 per
        (image, category with ground truth)."""
        return sum(array.nbytes for chunk in self._chunks for array in chunk.values())

    def state_dict(self) -> dict[str, Any]:
        """The state as plain numpy arrays and settings (picklable: what :meth:`sync` sends)."""
        self._consolidate()
        empty = _empty_chunk(self.iou_types)
        return {"settings": self._settings(), "auto": self._auto, "box_area": self._box_area,
                "arrays": dict(self._chunks[0]) if self._chunks else empty}

    def _settings(self) -> dict[str, Any]:
        return {"iou_types": self.iou_types, "protocol": self.protocol.name, "dilation_ratio": self.dilation_ratio,
                "max_dets": self.max_dets,
                "categories": None if self.categories is None else sorted(c["id"] for c in self.categories)}

    def _consolidate(self) -> None:
        if len(self._chunks) > 1:
            self._chunks = [{key: np.concatenate([c[key] for c in self._chunks]) for key in self._chunks[0]}]

    def _append(self, chunk: dict[str, np.ndarray]) -> None:
        self._chunks.append(chunk)
        if len(self._chunks) >= _MAX_CHUNKS:
            self._consolidate()

    # ---------------------------------------------------------------------------------------------- merge
    def merge(self, other: InstanceSegmentationAP | Mapping[str, Any]) -> InstanceSegmentationAP:
        """Add another metric's images (an :class:`InstanceSegmentationAP` or its :meth:`state_dict`) to this
        one; returns ``self``. Both must have the same settings and either both number images themselves (the
        other's then come after this one's) or both use image ids (no id in both)."""
        state = other.state_dict() if isinstance(other, InstanceSegmentationAP) else other
        if state["settings"] != self._settings():
            raise MetricStateError(f"cannot merge a metric with settings {state['settings']} into one with "
                                   f"{self._settings()}")
        arrays = dict(state["arrays"])
        images = arrays["images"]
        if len(images) and self._auto is not None and state["auto"] is not None and self._auto != state["auto"]:
            raise MetricStateError("image_id: one metric numbers its images, the other uses image ids; give every "
                                   "target an image_id, or none")
        if len(images) and state["box_area"] is not None and self._box_area is not None and \
                state["box_area"] != self._box_area:
            raise PredictionError("boxes: one metric's first detection has a box and the other's has none (a box "
                                  "sets every detection's area, as in pycocotools' loadRes): give boxes to all")
        if len(images) and state["auto"]:
            offset = len(self._image_ids)
            arrays = {**arrays, "images": images + offset, "image": arrays["image"] + offset}
            images = arrays["images"]
        twice = self._image_ids.intersection(images.tolist())
        if twice:
            raise MetricStateError(f"image_id {min(twice)} was added twice (each image once; with accelerate, "
                                   "gather_for_metrics drops the padding that repeats images)")
        if len(images):
            self._auto = state["auto"] if self._auto is None else self._auto
        if self._box_area is None:
            self._box_area = state["box_area"]
        self._image_ids.update(images.tolist())
        self._append(arrays)
        return self

    def sync(self, gather_object: Callable[[list], list]) -> InstanceSegmentationAP:
        """Make this metric hold every process's images, in rank order; returns ``self``.

        ``gather_object`` takes a list from each process and returns the lists of all processes joined, on every
        process: ``accelerate.utils.gather_object``, or :func:`all_gather_object` (``torch.distributed``). Call
        it on every process; afterwards :meth:`compute` gives the same numbers everywhere."""
        states = gather_object([self.state_dict()])
        merged = self._like()
        for state in states:
            merged.merge(state)
        self._chunks, self._auto = merged._chunks, merged._auto
        self._box_area, self._image_ids = merged._box_area, merged._image_ids
        return self

    # --------------------------------------------------------------------------------------------- update
    def update(self, predictions: Sequence[Mapping] | Mapping, targets: Sequence[Mapping] | Mapping, *,
               num_proc: int = 1) -> None:
        """Validate and match a batch of images (lists of per-image dicts, or one image's dicts; module
        docstring). Nothing of the batch is kept when one of its images is bad. ``num_proc`` > 1 matches
        contiguous shards of the batch in that many worker processes and merges them in order (the same state
        as one process: worth it for large batches, e.g. a whole dataset at once)."""
        from .driver import check_num_proc

        if isinstance(predictions, Mapping) and isinstance(targets, Mapping):
            predictions, targets = [predictions], [targets]
        check_num_proc(num_proc)
        if num_proc > 1 and len(predictions) > 1:
            self._update_sharded(list(predictions), list(targets), num_proc)
        else:
            self._update(predictions, targets)

    def _update_sharded(self, predictions: list, targets: list, num_proc: int) -> None:
        from ..workers import worker_pool

        if len(predictions) != len(targets):
            raise PredictionError(f"{len(predictions)} predictions but {len(targets)} targets (one each per image)")
        bounds = np.linspace(0, len(predictions), min(num_proc, len(predictions)) + 1).astype(int)
        shards = [(predictions[a:b], targets[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        arguments = self.arguments()
        with worker_pool(len(shards)) as pool:
            states = pool.starmap(_match_shard, [(arguments, self._auto, self._box_area, p, t) for p, t in shards])
        batch = self._like()
        for state in states:
            batch.merge(state)
        self.merge(batch)

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments of this metric (``type(metric)(**metric.arguments())`` is an empty copy)."""
        return {"iou_types": self.iou_types, "protocol": self.protocol.name, "categories": self.categories,
                "dilation_ratio": self.dilation_ratio, "max_dets": self.max_dets}

    def _like(self) -> InstanceSegmentationAP:
        """An empty metric with this one's settings."""
        return type(self)(**self.arguments())

    def _update(self, predictions: Sequence[Mapping], targets: Sequence[Mapping]) -> None:
        from .engine import evaluable_annotation, evaluate_image

        images = batch_inputs(predictions, targets, start=len(self._image_ids), known_ids=self._image_ids,
                              auto=self._auto, categories=self.categories)
        box_area = self._box_area
        prepared = []
        for k, (image, annotations, results) in enumerate(images):
            detections = prepare_image(results, image, k, self.iou_types, box_area)
            if box_area is None and results:
                box_area = bool(results[0].get("bbox"))
            prepared.append(detections)
        parts = []
        for (image, annotations, _), detections in zip(images, prepared):
            height, width = image["height"], image["width"]
            truth = [evaluable_annotation(ann, height, width) for ann in annotations]
            listed = {ann["category_id"] for ann in annotations} | set(image.get("neg_category_ids", ()))
            keep = self.protocol.keep_image([d["score"] for d in detections], [d["category_id"] for d in detections],
                                            listed, self.max_dets)
            if keep is not None:
                detections = [detections[i] for i in keep]
            category_ids = tuple(sorted({a["category_id"] for a in truth} | {d["category_id"] for d in detections}))
            setup = dataclasses.replace(self._setup, category_ids=category_ids)
            matches = evaluate_image(0, image, truth, detections, setup)
            ids = np.asarray(category_ids, np.int64)
            with_truth = np.flatnonzero(matches.ground_truth.any(axis=1))
            parts.append({
                "category": ids[matches.category], "image": np.full(len(matches.score), image["id"], np.int64),
                "rank": matches.rank, "score": matches.score,
                **{f"codes_{t}": matches.codes[t] for t in self.iou_types},
                "truth_category": ids[with_truth], "truth_count": matches.ground_truth[with_truth],
                "images": np.array([image["id"]], np.int64)})
        if not parts:
            return
        self._append({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})
        self._image_ids.update(image["id"] for image, _, _ in images)
        if self._auto is None:
            self._auto = "image_id" not in _first_target(targets)
        self._box_area = box_area

    def check(self, predictions: Sequence[Mapping] | Mapping, targets: Sequence[Mapping] | Mapping) -> None:
        """Validate a batch as :meth:`update` does, without matching or keeping it (each image on its own: the
        first-detection box rule is checked at :meth:`update`)."""
        if isinstance(predictions, Mapping) and isinstance(targets, Mapping):
            predictions, targets = [predictions], [targets]
        for k, (image, _, results) in enumerate(batch_inputs(predictions, targets, start=0, known_ids=set(), auto=None,
                                                      categories=self.categories)):
            prepare_image(results, image, k, self.iou_types, None)

    # -------------------------------------------------------------------------------------------- compute
    def compute(self) -> dict[str, Evaluation]:
        """``{iou_type: Evaluation}`` over every image added (and merged), as :func:`hf_noisy.metrics.evaluate`
        reports it; the state is kept (call :meth:`reset` to start over)."""
        from .engine import Matches

        self._consolidate()
        arrays = self._chunks[0] if self._chunks else _empty_chunk(self.iou_types)
        seen = np.union1d(arrays["category"], arrays["truth_category"])
        categories = self.categories if self.categories is not None else [{"id": int(c)} for c in seen]
        category_ids = np.array(sorted(c["id"] for c in categories), np.int64)
        ground_truth = np.zeros((len(category_ids), 4), np.int64)
        np.add.at(ground_truth, np.searchsorted(category_ids, arrays["truth_category"]), arrays["truth_count"])
        positions = np.unique(arrays["image"], return_inverse=True)[1].astype(np.int32).ravel()
        matches = Matches(np.searchsorted(category_ids, arrays["category"]).astype(np.int32), positions,
                          arrays["rank"], arrays["score"], {t: arrays[f"codes_{t}"] for t in self.iou_types},
                          ground_truth)
        setup = dataclasses.replace(self._setup, category_ids=tuple(int(c) for c in category_ids))
        return summarize(matches, setup, self.protocol, categories)


def _match_shard(arguments: dict, auto: bool | None, box_area: bool | None, predictions: list,
                 targets: list) -> dict[str, Any]:
    """The state of a metric made with ``arguments`` (and the numbering and box rule of the one it will be merged
    into) after one update with a shard of a batch (run in a worker)."""
    metric = InstanceSegmentationAP(**arguments)
    metric._auto, metric._box_area = auto, box_area
    metric._update(predictions, targets)
    return metric.state_dict()


def _first_target(targets: Sequence[Mapping]) -> Mapping:
    return targets[0] if len(targets) else {}


def _empty_chunk(iou_types: Sequence[str]) -> dict[str, np.ndarray]:
    return {"category": np.zeros(0, np.int64), "image": np.zeros(0, np.int64), "rank": np.zeros(0, np.int32),
            "score": np.zeros(0, np.float64), **{f"codes_{t}": np.zeros((0, 4, 10), np.uint8) for t in iou_types},
            "truth_category": np.zeros(0, np.int64), "truth_count": np.zeros((0, 4), np.int64),
            "images": np.zeros(0, np.int64)}


def all_gather_object(items: list) -> list:
    """``accelerate.utils.gather_object`` on ``torch.distributed`` alone: every process's ``items`` joined, in
    rank order (this process's own when torch.distributed is not initialised)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(items)
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]
