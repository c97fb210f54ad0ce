"""The one evaluation driver: a ground truth and detection results in, one :class:`Evaluation` per IoU type out.

IoU types: ``segm`` (mask AP), ``bbox`` (box AP) and ``boundary`` (Boundary AP, Cheng et al. CVPR 2021: the IoU
of a detection with a non-crowd ground truth is ``min(mask IoU, boundary IoU)``; with a crowd region it is the
mask IoU under the crowd rule, as in boundary-iou-api). The protocol (:mod:`.protocol`: COCO or LVIS) decides
the detection limits, which detections are scored, the federated matching rule and the summary numbers.

Engine: results are validated and held in compact columns (a results file is read in bounded memory:
:mod:`.stream`, :mod:`.scoring`), each image is matched once (:func:`hf_noisy.metrics.engine.evaluate_image`,
in chunks, on ``num_proc`` processes), and the compact per-detection matches are accumulated once
(:func:`hf_noisy.metrics.engine.accumulate`): numbers identical bit for bit to faster-coco-eval's C++
``COCOeval_faster`` (itself equal to pycocotools' ``COCOeval``, and in its ``lvis_style`` to the ``lvis``
package), for any ``num_proc``. :class:`hf_noisy.metrics.InstanceSegmentationAP` runs the same steps image by
image as batches arrive (:func:`summarize` is the last step of both).

Ground-truth conventions: see :func:`hf_noisy.metrics.engine.evaluable_annotation`. Crowd regions are ignored
(never counted as missed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np

from ..errors import HfNoisyError
from .boundary import DEFAULT_DILATION_RATIO
from .protocol import IOU_TYPES, Protocol, protocol_for

__all__ = ["Evaluation", "Predictions", "evaluate", "flatten", "summarize"]

#: A COCO results list, or the path of a COCO results JSON file (read in bounded memory).
Predictions = Union[list, str, os.PathLike]


@dataclass(frozen=True)
class Evaluation:
    """The result of one IoU type under one protocol.

    Attributes:
        iou_type: ``"segm"``, ``"bbox"`` or ``"boundary"``.
        stats: the summary numbers, by the protocol's ``stat_names`` (:data:`~hf_noisy.metrics.STAT_NAMES` for
            COCO, :data:`~hf_noisy.metrics.LVIS_STAT_NAMES` for LVIS); ``-1.0`` where undefined (no ground truth
            in that range or frequency group), as pycocotools and the ``lvis`` package report them.
        per_category: AP (IoU 0.50:0.95, all areas, the last detection limit) per category id; ``-1.0`` for a
            category without ground truth.
        precision: ``eval["precision"]``, shape ``[T=10 IoU thresholds, R=101 recall thresholds, K categories,
            A=4 area ranges, M detection limits]`` (M = 3 under COCO rules, 1 under LVIS rules), ``-1`` where
            undefined.
        recall: ``eval["recall"]``, shape ``[T, K, A, M]``.
        category_ids: the category id of each index ``K`` (sorted).
        rules: the protocol's name, ``"coco"`` or ``"lvis"``.
    """

    iou_type: str
    stats: dict[str, float]
    per_category: dict[int, float]
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    category_ids: tuple[int, ...]
    rules: str = "coco"


def check_iou_types(iou_types: Iterable[str]) -> tuple[str, ...]:
    """The IoU types, deduplicated in order; raises :class:`~hf_noisy.errors.HfNoisyError` naming a bad one."""
    if isinstance(iou_types, str):
        iou_types = [iou_types]
    iou_types = tuple(dict.fromkeys(iou_types))
    unknown = [name for name in iou_types if name not in IOU_TYPES]
    if unknown or not iou_types:
        raise HfNoisyError(f"unknown IoU type(s) {unknown or list(iou_types)}; choose from {', '.join(IOU_TYPES)}")
    return iou_types


def check_dilation_ratio(dilation_ratio: float) -> None:
    """Raises :class:`~hf_noisy.errors.HfNoisyError` unless ``0 < dilation_ratio <= 1``."""
    if not (isinstance(dilation_ratio, (int, float)) and 0 < dilation_ratio <= 1):
        raise HfNoisyError(f"dilation_ratio must be in (0, 1], got {dilation_ratio!r}")


def check_num_proc(num_proc: int) -> None:
    """Raises :class:`~hf_noisy.errors.HfNoisyError` unless ``num_proc`` is a positive integer."""
    if not (isinstance(num_proc, int) and not isinstance(num_proc, bool) and num_proc >= 1):
        raise HfNoisyError(f"num_proc must be an integer >= 1, got {num_proc!r}")


def evaluate(
    gt: dict,
    predictions: Predictions,
    protocol: str | Protocol = "auto",
    iou_types: Iterable[str] = IOU_TYPES,
    *,
    dilation_ratio: float = DEFAULT_DILATION_RATIO,
    max_dets: int | None = None,
    num_proc: int = 1,
    progress: bool = False,
    on_images: Callable[[int], None] | None = None,
) -> dict[str, Evaluation]:
    """Evaluate detections against a ground truth, once per IoU type: the one entry point of hf-noisy's scoring.

    Args:
        gt: a validated COCO or LVIS instance dict (see :func:`hf_noisy.coco.validate_coco`); LVIS images may
            carry ``neg_category_ids`` and ``not_exhaustive_category_ids``, categories ``frequency``.
        predictions: COCO results (see :mod:`hf_noisy.metrics.predictions`), or the path of a COCO results file,
            read in bounded memory (:mod:`hf_noisy.metrics.stream`); validated here.
        protocol: ``"auto"`` (LVIS for an LVIS-style ground truth, :func:`~hf_noisy.metrics.is_lvis`, else
            COCO), ``"coco"``, ``"lvis"`` or a :class:`~hf_noisy.metrics.protocol.Protocol`.
        iou_types: any of :data:`~hf_noisy.metrics.IOU_TYPES`.
        dilation_ratio: boundary width as a fraction of the image diagonal (``boundary`` only).
        max_dets: detections kept (COCO: per image and category; LVIS: per image); ``None``: the protocol's
            ``max_detections`` (100, 300).
        num_proc: processes that evaluate images (1: this one); the numbers are the same for any value.
        progress: progress bars on stderr (:func:`hf_noisy.progress.progress_bar`): the bytes of a results file
            read and validated, then the images scored.
        on_images: called with ``n`` each time ``n`` more images are scored (``len(gt["images"])`` in all), to
            drive a progress display of the caller's own.

    Returns:
        ``{iou_type: Evaluation}`` in the order of ``iou_types``.
    """
    from contextlib import ExitStack

    from ..progress import progress_bar
    from .engine import Setup
    from .predictions import check_ground_truth
    from .scoring import DetectionStore, fill, open_pool, score, spill_directory

    rules = protocol_for(gt, protocol)
    iou_types = check_iou_types(iou_types)
    limits = rules.detection_limits(max_dets)
    check_dilation_ratio(dilation_ratio)
    check_num_proc(num_proc)
    check_ground_truth(gt, iou_types)  # masks for segm/boundary (a box-only ground truth scores bbox only)
    setup = Setup(iou_types, tuple(rules.evaluated_categories(gt)), limits, dilation_ratio, rules.federated)
    reading = isinstance(predictions, (str, os.PathLike))
    with ExitStack() as stack:
        size = 0
        if reading:
            size = os.path.getsize(predictions) if os.path.isfile(predictions) else 0
            store = DetectionStore(gt, stack.enter_context(spill_directory()), expected_bytes=size)
            stack.callback(store.close)
        else:
            store = DetectionStore(gt)
        pool = open_pool(num_proc, gt, store)
        if pool is not None:
            stack.enter_context(pool)
        with progress_bar(progress and reading, total=size, desc="reading results", unit="B", unit_scale=True,
                          unit_divisor=1024) as bar:
            fill(store, predictions, gt, iou_types, pool, num_proc, on_bytes=bar.update)
        store.finish()
        keep = rules.keep_rows(store.columns, gt, store.position, limits[-1])
        if keep is not None:
            store.select(keep)
        store.sort()
        with progress_bar(progress, total=len(store.image_ids), desc="scoring", unit="img") as bar:
            def scored(n: int) -> None:
                bar.update(n)
                if on_images is not None:
                    on_images(n)

            matches = score(gt, store, setup, pool, num_proc, on_images=scored)
    return summarize(matches, setup, rules, gt["categories"])


def summarize(matches: Any, setup: Any, protocol: Protocol, categories: Sequence[dict]) -> dict[str, Evaluation]:
    """``{iou_type: Evaluation}`` from the compact matches of every image (:class:`~.engine.Matches`, category
    indices into ``setup.category_ids``): accumulated per IoU type, summarised by ``protocol``, and reported over
    every category of ``categories`` (``-1`` for a category that was not evaluated)."""
    from .engine import accumulate

    frequency = {category["id"]: category.get("frequency") for category in categories}
    category_ids = tuple(sorted(frequency))
    at = {category_id: k for k, category_id in enumerate(category_ids)}
    rows = [at[c] for c in setup.category_ids] if category_ids != setup.category_ids else None
    frequencies = [frequency[c] for c in setup.category_ids]
    results = {}
    for iou_type in setup.iou_types:
        precision, recall = accumulate(matches, iou_type, setup)
        # The means skip undefined (-1) entries, so the evaluated categories alone give every number.
        stats = protocol.summarize(precision, recall, setup.iou_thresholds, frequencies)
        if rows is not None:
            precision = _spread(precision, rows, len(category_ids), axis=2)
            recall = _spread(recall, rows, len(category_ids), axis=1)
        per_category = {}
        for k, category_id in enumerate(category_ids):
            values = precision[:, :, k, 0, -1]
            values = values[values > -1]
            per_category[category_id] = float(values.mean()) if values.size else -1.0
        results[iou_type] = Evaluation(iou_type, stats, per_category, precision, recall, category_ids, protocol.name)
    return results


def _spread(values: np.ndarray, rows: list[int], count: int, axis: int) -> np.ndarray:
    """``values`` (category axis ``axis``, in the order of ``rows``) over all ``count`` categories, ``-1``
    (undefined) for the others."""
    shape = list(values.shape)
    shape[axis] = count
    out = np.full(shape, -1.0)
    index: list[Any] = [slice(None)] * len(shape)
    index[axis] = rows
    out[tuple(index)] = values
    return out


def flatten(evaluations: dict[str, Evaluation], per_category: bool = False) -> dict[str, float]:
    """``{f"{iou_type}_{stat}": value}`` (e.g. ``segm_AP``, ``boundary_AP50``, ``bbox_ARl``), plus
    ``f"{iou_type}_AP_cat{category_id}"`` per category when ``per_category``: one flat dict to log."""
    flat = {}
    for iou_type, evaluation in evaluations.items():
        flat.update({f"{iou_type}_{name}": value for name, value in evaluation.stats.items()})
        if per_category:
            flat.update({f"{iou_type}_AP_cat{k}": value for k, value in evaluation.per_category.items()})
    return flat
