"""Evaluation protocols: everything that differs between COCO and LVIS evaluation, decided here and nowhere else.

A protocol says how many detections an image keeps, which detections are scored at all (its row filter),
whether federated rules apply in matching, which categories are evaluated, and which summary numbers come out.
The engine (:mod:`.engine`) and the drivers (:func:`hf_noisy.metrics.evaluate`,
:class:`hf_noisy.metrics.InstanceSegmentationAP`) ask the protocol; they never branch on its name.

* **COCO** (:data:`COCO`): at most ``max_detections`` (100) detections per image *and category*; the 12
  pycocotools summary numbers (:data:`STAT_NAMES`) at the detection limits ``(1, 10, max_detections)``.
* **LVIS** (:data:`LVIS`, Gupta et al. CVPR 2019; the rules of the ``lvis`` package's ``LVISEval`` v0.5.3):

  - *top detections per image*: only the ``max_detections`` (300) highest-scoring detections of an image are
    kept, over all its categories; ties keep the order of the results;
  - *unlisted categories are not penalised*: a detection of category ``c`` on image ``i`` counts only if ``c``
    is in the image's positive set (it has a ground truth of ``c``) or in its ``neg_category_ids`` (after the
    top cut, as in ``lvis``);
  - *not exhaustively annotated categories*: a detection of a category in the image's
    ``not_exhaustive_category_ids`` that matches no ground truth is ignored, not a false positive;
  - *summary numbers* (:data:`LVIS_STAT_NAMES`): AP at IoU 0.50:0.95, 0.50 and 0.75; AP for small (area < 32²),
    medium and large (>= 96²) objects; AP over the rare, common and frequent categories (``frequency``
    ``"r"``, ``"c"``, ``"f"``); AR at ``max_detections`` over all, small, medium and large objects (the ``lvis``
    package's ``AR@300`` ...). Only categories with ground truth are evaluated (the others have no defined AP).

  Area ranges are ``lo <= area <= hi`` as in ``lvis`` and pycocotools (boundary-iou-api's LVIS port uses
  ``area < hi``, so its Boundary APs/m/l and ARs/m/l differ exactly when an area equals 32² or 96²). LVIS has no
  crowd regions; a ground truth with ``iscrowd = 1`` keeps the COCO crowd rule (as boundary-iou-api).

Undefined numbers (no ground truth in a range or frequency group) are ``-1.0`` under both protocols.
Light to import (numpy and :mod:`hf_noisy.coco`'s constants): a leaderboard or a training script asks it for
``get_protocol(name).max_detections``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..coco import LVIS_FREQUENCIES, LVIS_IMAGE_LISTS
from ..errors import HfNoisyError

__all__ = ["COCO", "IOU_TYPES", "LVIS", "LVIS_MAX_DETS", "LVIS_STAT_NAMES", "PROTOCOLS", "Protocol", "ProtocolError",
           "STAT_NAMES", "get_protocol", "is_lvis", "protocol_for"]

#: Supported IoU types, in the order results are reported: mask AP, box AP, Boundary AP.
IOU_TYPES = ("segm", "bbox", "boundary")

#: The 12 COCO summary numbers, in pycocotools' order. ``AR1``/``AR10``/``AR100`` are the recalls at the three
#: detection limits ``(1, 10, max_dets)``; AP and the area-range numbers use ``max_dets`` (100 by default).
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

#: The LVIS summary numbers, in the ``lvis`` package's order (``AR``/``ARs``/``ARm``/``ARl`` are its
#: ``AR@300``/``ARs@300``/``ARm@300``/``ARl@300`` for the default limit).
LVIS_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR", "ARs", "ARm", "ARl")

#: LVIS's official limit of detections per image.
LVIS_MAX_DETS = 300


class ProtocolError(HfNoisyError):
    """An unknown protocol name, or an option the protocol refuses."""


def _mean(values: np.ndarray) -> float:
    """Mean of the defined (> -1) entries, ``-1.0`` when there is none (pycocotools' and ``lvis``'s rule)."""
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0


@dataclass(frozen=True)
class Protocol:
    """The COCO rules; :class:`_Lvis` overrides what LVIS changes.

    Attributes:
        name: ``"coco"`` or ``"lvis"`` (also :attr:`hf_noisy.metrics.Evaluation.rules`).
        max_detections: default detections kept per image (COCO: per image and category; LVIS: per image).
        stat_names: the summary numbers, in order.
        federated: LVIS's matching rule (unmatched detections of a not-exhaustively-annotated category are
            ignored).
        min_detections: the smallest ``max_dets`` accepted (COCO's limits ``(1, 10, max_dets)`` need 10).
    """

    name: str = "coco"
    max_detections: int = 100
    stat_names: tuple[str, ...] = STAT_NAMES
    federated: bool = False
    min_detections: int = 10

    def detection_limits(self, max_dets: int | None = None) -> tuple[int, ...]:
        """The detection limits of accumulation (the ``M`` axis), increasing; the last one is ``max_dets``."""
        return (1, 10, self.max_dets(max_dets))

    def max_dets(self, max_dets: int | None) -> int:
        """``max_dets``, or :attr:`max_detections` for ``None``; raises :class:`ProtocolError` when too small."""
        value = self.max_detections if max_dets is None else max_dets
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= self.min_detections):
            raise ProtocolError(f"max_dets must be an integer >= {self.min_detections}, got {value!r}")
        return value

    def evaluated_categories(self, gt: dict) -> list[int]:
        """The category ids evaluated (the ``K`` axis of the engine), sorted: every category of ``gt``."""
        return sorted(category["id"] for category in gt["categories"])

    def keep_rows(self, columns: dict[str, np.ndarray], gt: dict, position: dict[int, int],
                  max_dets: int) -> np.ndarray | None:
        """Which detections are scored, as a mask of detection columns (``position``, ``id``, ``score``,
        ``category``; ``position`` maps image ids to the columns' positions), or ``None`` for all of them."""
        return None

    def keep_image(self, scores: Sequence[float], categories: Sequence[int], listed: set[int],
                   max_dets: int) -> list[int] | None:
        """:meth:`keep_rows` on one image: the indices (in results order) of its detections that are scored, or
        ``None`` for all. ``listed``: the image's ground-truth categories and ``neg_category_ids``."""
        return None

    def summarize(self, precision: np.ndarray, recall: np.ndarray, iou_thresholds: np.ndarray,
                  frequencies: Sequence[str | None]) -> dict[str, float]:
        """The summary numbers from ``precision [T, R, K, A, M]`` and ``recall [T, K, A, M]`` (areas in the order
        all, small, medium, large), as faster-coco-eval's ``summarize`` computes them (same selections, same
        means). ``frequencies``: each evaluated category's LVIS ``frequency`` (unused by COCO)."""
        at50, at75 = (np.flatnonzero(iou_thresholds == t) for t in (0.5, 0.75))
        ap = [_mean(precision[:, :, :, 0, -1]), _mean(precision[at50][:, :, :, 0, -1]),
              _mean(precision[at75][:, :, :, 0, -1])] + [_mean(precision[:, :, :, a, -1]) for a in (1, 2, 3)]
        ar = [_mean(recall[:, :, 0, m]) for m in range(3)] + [_mean(recall[:, :, a, -1]) for a in (1, 2, 3)]
        return dict(zip(self.stat_names, ap + ar))


@dataclass(frozen=True)
class _Lvis(Protocol):
    """LVIS's federated rules (module docstring)."""

    name: str = "lvis"
    max_detections: int = LVIS_MAX_DETS
    stat_names: tuple[str, ...] = LVIS_STAT_NAMES
    federated: bool = True
    min_detections: int = 1

    def detection_limits(self, max_dets: int | None = None) -> tuple[int, ...]:
        return (self.max_dets(max_dets),)

    def evaluated_categories(self, gt: dict) -> list[int]:
        """Only categories with ground truth can have a defined AP or AR: those are evaluated."""
        return sorted({ann["category_id"] for ann in gt["annotations"]})

    def keep_rows(self, columns, gt, position, max_dets):
        return _top_rows(columns, max_dets) & _federated_rows(columns, gt, position)

    def keep_image(self, scores, categories, listed, max_dets):
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:max_dets]  # stable: ties in results order
        return sorted(i for i in order if categories[i] in listed)

    def summarize(self, precision, recall, iou_thresholds, frequencies):
        precision, recall = precision[..., -1], recall[..., -1]
        at50, at75 = (int(np.flatnonzero(iou_thresholds == t)[0]) for t in (0.5, 0.75))
        stats = {"AP": _mean(precision[:, :, :, 0]), "AP50": _mean(precision[at50, :, :, 0]),
                 "AP75": _mean(precision[at75, :, :, 0])}
        stats.update({name: _mean(precision[:, :, :, area]) for name, area in (("APs", 1), ("APm", 2), ("APl", 3))})
        for name, label in zip(("APr", "APc", "APf"), LVIS_FREQUENCIES):
            stats[name] = _mean(precision[:, :, [k for k, f in enumerate(frequencies) if f == label], 0])
        stats.update({name: _mean(recall[:, :, area]) for area, name in enumerate(("AR", "ARs", "ARm", "ARl"))})
        return stats


def _top_rows(columns: dict[str, np.ndarray], max_dets: int) -> np.ndarray:
    """The ``max_dets`` highest-scoring detections of each image (ties: results order, i.e. ``id``)."""
    order = np.lexsort((columns["id"], -columns["score"], columns["position"]))
    position = columns["position"][order]
    first = np.searchsorted(position, position, side="left")
    keep = np.zeros(len(order), bool)
    keep[order] = np.arange(len(order)) - first < max_dets
    return keep


def _federated_rows(columns: dict[str, np.ndarray], gt: dict, position: dict[int, int]) -> np.ndarray:
    """The detections whose category is in their image's positive set or ``neg_category_ids``."""
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


#: The COCO protocol (pycocotools' ``COCOeval``).
COCO = Protocol()
#: The LVIS protocol (the ``lvis`` package's ``LVISEval``).
LVIS = _Lvis()
#: Every protocol, by name.
PROTOCOLS = {COCO.name: COCO, LVIS.name: LVIS}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` (``"coco"`` or ``"lvis"``, any case; a :class:`Protocol` is returned as is).
    Raises :class:`ProtocolError` for any other name (``"auto"`` needs a ground truth: :func:`protocol_for`)."""
    if isinstance(name, Protocol):
        return name
    protocol = PROTOCOLS.get(name.lower()) if isinstance(name, str) else None
    if protocol is None:
        raise ProtocolError(f"protocol must be one of {', '.join(PROTOCOLS)} (or 'auto' with a ground truth), "
                            f"got {name!r}")
    return protocol


def protocol_for(gt: dict, protocol: str | Protocol = "auto") -> Protocol:
    """:func:`get_protocol`, where ``"auto"`` is LVIS for an LVIS-style ground truth (:func:`is_lvis`), else COCO."""
    if isinstance(protocol, str) and protocol.lower() == "auto":
        return LVIS if is_lvis(gt) else COCO
    return get_protocol(protocol)


def is_lvis(gt: dict) -> bool:
    """Whether a ground truth is LVIS-style: an image carries ``neg_category_ids`` or
    ``not_exhaustive_category_ids``, or a category carries ``frequency``."""
    images, categories = gt.get("images") or [], gt.get("categories") or []
    return any(isinstance(image, dict) and any(key in image for key in LVIS_IMAGE_LISTS) for image in images) or any(
        isinstance(category, dict) and "frequency" in category for category in categories)
