"""The evaluation step of one image, and the accumulation of many images' compact results.

Scoring at any size is: for each image (in any order, in any process), match its detections to its ground
truth once per IoU type (:func:`evaluate_image`), keep only what accumulation reads, per kept detection
(:class:`Matches`: its category, image, rank in its image and category, score, and one code per area range and
IoU threshold), then sort and count once (:func:`accumulate`). Nothing else of an image outlives its step.

The numbers are faster-coco-eval's (``COCOeval_faster``, itself equal to pycocotools' ``COCOeval``) bit for
bit: the same IoUs (its C++ ``iou`` on the same RLEs and boxes), the same greedy matching (``_rle.c``'s
``match_detections``, a line-by-line port of its ``MatchDetectionsToGroundTruth``), the same stable orders and
the same double divisions in accumulation, its thresholds and area ranges (its ``Params``). Results do not depend
on how images are split into chunks or processes: each image's step is a pure function of that image, and
accumulation orders detections by (category, score, image position, rank), never by arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .boundary import dilation_pixels

__all__ = ["Setup", "Matches", "evaluable_annotation", "pairwise_iou", "evaluate_image", "concat", "accumulate"]


@dataclass(frozen=True)
class Setup:
    """What one evaluation asks for.

    Attributes:
        iou_types: among ``segm``, ``bbox``, ``boundary``.
        category_ids: the evaluated categories, sorted (the ``K`` axis of the results).
        max_dets: detection limits, increasing (COCO: ``(1, 10, 100)``; LVIS: ``(300,)``); the last one caps the
            detections kept per image and category.
        dilation_ratio: boundary width as a fraction of the image diagonal.
        federated: LVIS's federated matching (unmatched detections of a not-exhaustively-annotated category are
            ignored); set by the protocol (:attr:`hf_noisy.metrics.protocol.Protocol.federated`).
    """

    iou_types: tuple[str, ...]
    category_ids: tuple[int, ...]
    max_dets: tuple[int, ...]
    dilation_ratio: float
    federated: bool = False
    iou_thresholds: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    recall_thresholds: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    area_ranges: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        from faster_coco_eval.core.cocoeval import Params

        params = Params(iouType="segm")
        if self.iou_thresholds is None:
            object.__setattr__(self, "iou_thresholds", np.asarray(params.iouThrs, dtype=np.float64))
        if self.recall_thresholds is None:
            object.__setattr__(self, "recall_thresholds", np.asarray(params.recThrs, dtype=np.float64))
        if self.area_ranges is None:
            object.__setattr__(self, "area_ranges", np.asarray(params.areaRng, dtype=np.float64))


@dataclass
class Matches:
    """Compact results of some images: one row per kept detection (its image's best ``max_dets[-1]`` of its
    category), plus the count of non-ignored ground truths per category and area range.

    Attributes:
        category: index into :attr:`Setup.category_ids` (int32).
        image: the image's position in the evaluation's image order (int32).
        rank: position in its image and category by decreasing score, ties in results order (int32).
        score: the detection's score (float64).
        codes: per IoU type, uint8 ``[n, A, T]``: 1 true positive, 2 false positive, 0 ignored.
        ground_truth: int64 ``[K, A]``, non-crowd ground truths whose area is in the range.
    """

    category: np.ndarray
    image: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    codes: dict[str, np.ndarray]
    ground_truth: np.ndarray


def _empty(setup: Setup) -> Matches:
    shape = (0, len(setup.area_ranges), len(setup.iou_thresholds))
    return Matches(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64),
                   {t: np.zeros(shape, np.uint8) for t in setup.iou_types},
                   np.zeros((len(setup.category_ids), len(setup.area_ranges)), np.int64))


def pairwise_iou(detections: Sequence, truths: Sequence, crowd: Sequence[int]) -> np.ndarray:
    """IoU of every detection (rows) with every ground truth (columns), float64 ``[D, G]``, of masks (RLEs) or
    boxes (``[x, y, w, h]``): faster-coco-eval's C++ ``iou``, the one the evaluation matches with; for a ``crowd``
    ground truth, pycocotools' rule (intersection over the detection's area)."""
    from faster_coco_eval.core.mask import iou

    if not len(detections) or not len(truths):
        return np.zeros((len(detections), len(truths)))
    values = iou(list(detections), list(truths), [int(bool(c)) for c in crowd])
    return np.asarray(values, np.float64).reshape(len(detections), len(truths))


def evaluable_annotation(ann: dict, height: int, width: int) -> dict:
    """A ground-truth annotation with the fields :func:`evaluate_image` reads (a copy; ``ann`` is not touched).

    Conventions (pycocotools'): ``area`` as given decides the small/medium/large range; a missing ``area`` is the
    mask's pixel count, a missing ``bbox`` the mask's tight box ``[x, y, w, h]``, a missing ``iscrowd`` 0; an
    annotation without ``segmentation`` (``bbox`` scoring only) has its box as its mask, as ``loadRes`` does."""
    from pycocotools import mask as mask_utils

    from ..masks import box_polygon, segmentation_to_rle

    rle = segmentation_to_rle(ann["segmentation"] if "segmentation" in ann else box_polygon(ann["bbox"]),
                              height, width)
    return {
        "id": ann["id"], "image_id": ann["image_id"], "category_id": ann["category_id"],
        "segmentation": rle, "iscrowd": int(ann.get("iscrowd", 0)),
        "area": float(ann["area"]) if "area" in ann else float(mask_utils.area(rle)),
        "bbox": [float(v) for v in ann["bbox"]] if "bbox" in ann else [float(v) for v in mask_utils.toBbox(rle)],
    }


def evaluate_image(position: int, image: dict, ground_truth: list[dict], detections: list[dict], setup: Setup,
                   category_index: dict[int, int] | None = None) -> Matches:
    """Match one image's detections to its ground truth, per IoU type.

    Args:
        position: the image's position in the evaluation's image order (stored on each row).
        image: the image (``height``, ``width``; federated rules: ``not_exhaustive_category_ids``).
        ground_truth: its evaluable annotations (see :func:`evaluable_annotation`), in file order.
        detections: its evaluable detections (see :func:`hf_noisy.metrics.prepare_predictions`), in results
            order.
        setup: the evaluation.
        category_index: ``{category id: index}`` of ``setup.category_ids`` (computed when not given).
    """
    from array import array

    from .._rle import boundary_counts, match_detections

    index = category_index if category_index is not None else {c: k for k, c in enumerate(setup.category_ids)}
    gts: dict[int, list[dict]] = {}
    for ann in ground_truth:
        if ann["category_id"] in index:
            gts.setdefault(ann["category_id"], []).append(ann)
    dts: dict[int, list[dict]] = {}
    for det in detections:
        if det["category_id"] in index:
            dts.setdefault(det["category_id"], []).append(det)
    areas = [(float(lo), float(hi)) for lo, hi in setup.area_ranges]
    A, T = len(areas), len(setup.iou_thresholds)
    ranges = array("d", [v for pair in areas for v in pair]).tobytes()
    thresholds = array("d", setup.iou_thresholds.tolist()).tobytes()
    not_exhaustive = set(image.get("not_exhaustive_category_ids") or ()) if setup.federated else set()
    ground_truth_count = np.zeros((len(setup.category_ids), A), np.int64)
    for category_id, anns in gts.items():
        ground_truth_count[index[category_id]] = [
            sum(1 for g in anns if not g["iscrowd"] and lo <= g["area"] <= hi) for lo, hi in areas]
    height, width = int(image["height"]), int(image["width"])
    dilation = dilation_pixels(height, width, setup.dilation_ratio)

    def band(ann: dict) -> dict:  # computed once per annotation and step
        if "boundary" not in ann:
            rle = ann["segmentation"]
            ann["boundary"] = {"size": rle["size"], "counts": boundary_counts(rle["counts"], height, width, dilation)}
        return ann["boundary"]

    rows_category: list[int] = []
    rows_rank: list[int] = []
    rows_score: list[float] = []
    codes: dict[str, list[bytes]] = {t: [] for t in setup.iou_types}
    for category_id in sorted(dts):
        dt = dts[category_id]
        # Decreasing score, ties in results order (a stable sort, as faster-coco-eval's), best max_dets[-1].
        dt = sorted(dt, key=lambda d: -d["score"])[: setup.max_dets[-1]]
        gt = gts.get(category_id, [])
        crowd = [int(g["iscrowd"]) for g in gt]
        args = (array("q", [g["id"] for g in gt]).tobytes(), bytes(crowd),
                array("d", [g["area"] for g in gt]).tobytes(), array("d", [d["area"] for d in dt]).tobytes(),
                bytes([category_id in not_exhaustive]) * len(dt), ranges, thresholds)
        mask_ious = None
        for iou_type in setup.iou_types:
            if not gt:
                ious = b""
            elif iou_type == "bbox":
                ious = pairwise_iou([d["bbox"] for d in dt], [g["bbox"] for g in gt], crowd)
            else:
                if mask_ious is None:
                    mask_ious = pairwise_iou([d["segmentation"] for d in dt], [g["segmentation"] for g in gt], crowd)
                ious = mask_ious
                if iou_type == "boundary":
                    boundary = pairwise_iou([band(d) for d in dt], [band(g) for g in gt], crowd)
                    if any(crowd):
                        non_crowd = ~np.asarray(crowd, dtype=bool)
                        ious = mask_ious.copy()
                        ious[:, non_crowd] = np.minimum(ious[:, non_crowd], boundary[:, non_crowd])
                    else:
                        ious = np.minimum(mask_ious, boundary)
            if not isinstance(ious, bytes):
                ious = np.ascontiguousarray(ious, np.float64).tobytes()
            codes[iou_type].append(match_detections(ious, *args))
        rows_category += [index[category_id]] * len(dt)
        rows_rank += range(len(dt))
        rows_score += [d["score"] for d in dt]
    n = len(rows_category)
    return Matches(np.array(rows_category, np.int32), np.full(n, position, np.int32), np.array(rows_rank, np.int32),
                   np.array(rows_score, np.float64),
                   {t: np.frombuffer(b"".join(v), np.uint8).reshape(n, A, T) for t, v in codes.items()},
                   ground_truth_count)


def concat(parts: Iterable[Matches], setup: Setup) -> Matches:
    """The rows of ``parts`` together (their ground-truth counts added)."""
    parts = list(parts)
    if not parts:
        return _empty(setup)
    return Matches(np.concatenate([p.category for p in parts]), np.concatenate([p.image for p in parts]),
                   np.concatenate([p.rank for p in parts]), np.concatenate([p.score for p in parts]),
                   {t: np.concatenate([p.codes[t] for p in parts]) for t in setup.iou_types},
                   np.sum([p.ground_truth for p in parts], axis=0))


def accumulate(matches: Matches, iou_type: str, setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """``(precision [T, R, K, A, M], recall [T, K, A, M])``, ``-1`` where a category has no ground truth in an
    area range, as faster-coco-eval's ``COCOevalAccumulate`` computes them from the same matches.

    Per category: the detections of all images (each image's best ``max_dets[m]``) sorted by decreasing score,
    ties by image position then rank (the stable sort of the per-image lists in image order); cumulative true and
    false positives; recall ``tp / n_gt``, precision ``tp / (tp + fp)`` made non-increasing from the right and
    read at the first recall ``>=`` each recall threshold (0 past the end)."""
    from .._rle import accumulate_category

    T, R = len(setup.iou_thresholds), len(setup.recall_thresholds)
    K, A, M = len(setup.category_ids), len(setup.area_ranges), len(setup.max_dets)
    precision = np.full((T, R, K, A, M), -1.0)
    recall = np.full((T, K, A, M), -1.0)
    order = np.lexsort((matches.rank, matches.image, -matches.score, matches.category))
    category = matches.category[order]
    bounds = np.searchsorted(category, np.arange(K + 1), side="left")
    limits = np.asarray(setup.max_dets, np.int64).tobytes()
    thresholds = np.ascontiguousarray(setup.recall_thresholds, np.float64).tobytes()
    for k in range(K):
        if not matches.ground_truth[k].any():
            continue
        rows = order[bounds[k]:bounds[k + 1]]
        p, r = accumulate_category(np.ascontiguousarray(matches.codes[iou_type][rows]).tobytes(),
                                   np.ascontiguousarray(matches.rank[rows], np.int32).tobytes(),
                                   np.ascontiguousarray(matches.ground_truth[k], np.int64).tobytes(), limits,
                                   thresholds, T)
        precision[:, :, k] = np.frombuffer(p, np.float64).reshape(T, R, A, M)
        recall[:, k] = np.frombuffer(r, np.float64).reshape(T, A, M)
    return precision, recall

