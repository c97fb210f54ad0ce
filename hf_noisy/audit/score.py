"""Score every annotation of a COCO instance dict against a model's predictions on the same images.

How (per image, then over the dataset):

1. **Match.** Predictions with ``score >= min_score`` (at most ``max_predictions_per_image``, best first) are
   matched to the image's non-crowd annotations by class-agnostic mask IoU, greedily (:mod:`.match`), when
   the IoU is at least ``match_iou``.
2. **Class** (instance-level self-confidence, after cleanlab's idea for classification). The predictions
   that overlap an annotation with IoU >= ``class_iou`` (and its matched prediction) vote: ``p_label`` is the
   best score among those of the annotation's category, ``p_other`` the best among the other categories.
   ``class_score = p_other * (1 - p_label)``: high only when the model is confident of another class *and*
   not of the label. ``suggested_category_id`` is the other category when ``p_other > p_label``.
3. **Mask.** Mask IoU ``m`` and Boundary IoU ``b`` with the matched prediction are compared with what the
   model reaches on that kind of object: the ``reference_quantile`` of ``m`` (and of ``b``) over matches of
   the same predicted category and COCO size range (small < 32², medium < 96², large; by the prediction's
   area, which label noise does not move), shrunk towards the size range's value with weight ``shrinkage``
   (few matches of a category lean on its size range). A high quantile, because the reference should be
   what the model reaches on *right* labels even when most labels are noisy (COCO-N ``hard`` changes 94% of
   them; on it the 0.9 quantile gives AUROC 0.91 where the median-like 0.75 gives 0.885). The deficit ``(ref - v) / (1 - v)`` (clipped to
   [0, 1]) is the share of the disagreement that the model's usual error does not explain;
   ``mask_score = max(deficit_m, deficit_b) * prediction score``. An empty mask scores 1.
4. **Spurious.** An annotation that no prediction matches: ``spurious_score = 0.5 * recall`` where recall is
   the share of annotations of its size range that the model does match. A miss of the model and a label
   with nothing under it look the same, so an unmatched annotation is at most a coin flip, and less where
   the model misses often.
5. ``score = max(class_score, mask_score, spurious_score)``; ``suspected`` is the argmax when ``score >=
   flag_score``, else ``"none"``. All three are in [0, 1] and on one scale (a confidence-weighted share of
   disagreement), so scores are comparable across annotations and images.
6. **Missing**: a prediction with ``score >= missing_score`` that no annotation matched and that overlaps no
   annotation with IoU >= ``class_iou`` (a crowd region: by the share of the prediction it covers), after
   greedy suppression of missing predictions that overlap each other with IoU >= ``class_iou``.
7. **Estimated rates** (shares of the audited, non-crowd annotations). Each annotation whose ``mask_score``
   reaches ``flag_score`` (whatever else is suspected of it) is given the op its shape suggests
   (:mod:`.shape`), in its ``op`` field: ``approximation`` when its vertex density is below
   ``approximation_density`` times the prediction's (long straight runs), ``localization`` when above
   ``localization_density`` times (a jagged boundary), otherwise ``dilate`` / ``erode`` when its boundary lies
   on average more than ``displacement_px`` outside / inside the prediction's (the signed area ratio,
   normalised by the perimeter), otherwise ``localization`` (boundary disagreement at equal area). The
   class-flip rate is the share suspected ``class``. These are shares *flagged*: where the evidence is weak
   (a small op on a large object, a poor model) they undercount.

Everything is a pure function of the inputs and the config: same input, same output bytes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import __version__
from ..errors import HfNoisyError
from ..masks import Crop, mask_iou, segmentation_to_rle
from ..metrics.boundary import DEFAULT_DILATION_RATIO, boundary_rle
from ..metrics.predictions import prepare_predictions
from .match import greedy_match, iou_matrix
from .shape import Shape, displacement, measure

__all__ = ["AuditConfig", "AuditError", "SUSPECTS", "OPS", "audit_coco"]

#: Values of an audited annotation's ``suspected`` field.
SUSPECTS = ("class", "mask", "spurious", "none")
#: Spatial ops an annotation flagged ``mask`` is attributed to (its ``op`` field).
OPS = ("dilate", "erode", "localization", "approximation")
_SIZE_RANGES = ((32**2, "small"), (96**2, "medium"), (math.inf, "large"))


class AuditError(HfNoisyError):
    """An audit that cannot run (a bad setting; bad files raise the COCO / prediction errors)."""


@dataclass(frozen=True)
class AuditConfig:
    """The audit's settings (see the module docstring for what each does). IoUs and scores in [0, 1]."""

    min_score: float = 0.05
    match_iou: float = 0.1
    class_iou: float = 0.5
    missing_score: float = 0.5
    flag_score: float = 0.3
    max_predictions_per_image: int = 100
    reference_quantile: float = 0.9
    shrinkage: float = 5.0
    displacement_px: float = 0.6
    approximation_density: float = 0.55
    localization_density: float = 1.25
    dilation_ratio: float = DEFAULT_DILATION_RATIO

    def __post_init__(self) -> None:
        for name in ("min_score", "match_iou", "class_iou", "missing_score", "flag_score", "reference_quantile",
                     "approximation_density"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise AuditError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.match_iou <= 0:
            raise AuditError("match_iou must be > 0 (a prediction must overlap what it is matched to)")
        if not isinstance(self.max_predictions_per_image, int) or self.max_predictions_per_image < 1:
            raise AuditError(f"max_predictions_per_image must be a positive integer, got {self.max_predictions_per_image!r}")
        for name in ("shrinkage", "displacement_px", "localization_density", "dilation_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise AuditError(f"{name} must be a finite number >= 0, got {value!r}")


def _size_range(area: float) -> str:
    return next(name for bound, name in _SIZE_RANGES if area < bound)


@dataclass
class _Evidence:
    """What the predictions say about one non-crowd annotation."""

    ann: dict
    area: int
    prediction: int | None = None  # index into the results list
    pred_category: int | None = None
    pred_score: float = 0.0
    pred_area: float = 0.0
    iou: float | None = None
    boundary_iou: float | None = None
    p_label: float = 0.0
    p_other: float = 0.0
    other_category: int | None = None
    ann_shape: Shape | None = None
    pred_shape: Shape | None = None


def _image_evidence(anns: list[dict], rles: list[dict], preds: list[tuple[int, dict]],
                    config: AuditConfig) -> tuple[list[_Evidence], list[tuple[int, dict]]]:
    """Evidence for one image's annotations, and its unmatched, confident, non-overlapping predictions."""
    crowd = [bool(a.get("iscrowd", 0)) for a in anns]
    full = iou_matrix([p["segmentation"] for _, p in preds], rles, crowd)
    plain = [j for j, c in enumerate(crowd) if not c]
    matched = {plain[j]: i for j, i in greedy_match(full[:, plain], config.match_iou).items()}

    evidence = []
    for j in plain:
        ann, rle = anns[j], rles[j]
        ev = _Evidence(ann, int(Crop.from_rle(rle).area))
        voters = [i for i in range(len(preds)) if full[i, j] >= config.class_iou]
        i = matched.get(j)
        if i is not None:
            index, pred = preds[i]
            ev.prediction, ev.pred_category, ev.pred_score = index, pred["category_id"], pred["score"]
            ev.iou = float(full[i, j])
            ev.boundary_iou = mask_iou(boundary_rle(pred["segmentation"], config.dilation_ratio),
                                       boundary_rle(rle, config.dilation_ratio))
            ev.ann_shape, ev.pred_shape = measure(Crop.from_rle(rle)), measure(Crop.from_rle(pred["segmentation"]))
            ev.pred_area = float(ev.pred_shape.area)
            if i not in voters:
                voters.append(i)
        votes = [(preds[i][1]["score"], -preds[i][1]["category_id"]) for i in voters]
        ev.p_label = max((s for s, c in votes if -c == ann["category_id"]), default=0.0)
        others = [(s, c) for s, c in votes if -c != ann["category_id"]]
        if others:  # the best other class; equal scores: the smaller category id
            ev.p_other, ev.other_category = max(others)[0], -max(others)[1]
        evidence.append(ev)

    missing, kept = [], []
    used = set(matched.values())
    for i, (index, pred) in enumerate(preds):
        if i in used or pred["score"] < config.missing_score or (len(anns) and full[i].max() >= config.class_iou):
            continue
        if kept and iou_matrix([pred["segmentation"]], [preds[k][1]["segmentation"] for k in kept]).max() >= config.class_iou:
            continue
        kept.append(i)
        missing.append((index, pred))
    return evidence, missing


def _shrunk(values: list[float], prior: float, weight: float, q: float) -> float:
    """The ``q`` quantile of ``values`` shrunk towards ``prior`` with pseudo-count ``weight``."""
    if not values:
        return prior
    n = len(values)
    return (n * float(np.quantile(values, q)) + weight * prior) / (n + weight)


def _references(evidence: list[_Evidence], config: AuditConfig) -> dict[tuple, tuple[float, float]]:
    """``{(predicted category, size range): (reference mask IoU, reference boundary IoU)}`` over the matches."""
    matched = [ev for ev in evidence if ev.iou is not None]
    out: dict[tuple, tuple[float, float]] = {}
    if not matched:
        return out
    q, k = config.reference_quantile, config.shrinkage
    overall = tuple(float(np.quantile([getattr(ev, f) for ev in matched], q)) for f in ("iou", "boundary_iou"))
    by_size: dict[str, list[_Evidence]] = {}
    by_group: dict[tuple, list[_Evidence]] = {}
    for ev in matched:
        size = _size_range(ev.pred_area)
        by_size.setdefault(size, []).append(ev)
        by_group.setdefault((ev.pred_category, size), []).append(ev)
    size_ref = {size: tuple(_shrunk([getattr(ev, f) for ev in evs], overall[n], k, q)
                            for n, f in enumerate(("iou", "boundary_iou"))) for size, evs in by_size.items()}
    for (category, size), evs in by_group.items():
        out[(category, size)] = tuple(_shrunk([getattr(ev, f) for ev in evs], size_ref[size][n], k, q)
                                      for n, f in enumerate(("iou", "boundary_iou")))
    return out


def _deficit(value: float, reference: float) -> float:
    """Share of the disagreement ``1 - value`` beyond the usual ``1 - reference``, in [0, 1]."""
    if value >= reference or value >= 1.0:
        return 0.0
    return min(1.0, (reference - value) / (1.0 - value))


def _op_of(ev: _Evidence, config: AuditConfig) -> str:
    density = ev.ann_shape.vertex_density / ev.pred_shape.vertex_density if ev.pred_shape.vertex_density else 1.0
    if density < config.approximation_density:
        return "approximation"
    if density > config.localization_density:
        return "localization"
    shift = displacement(ev.ann_shape, ev.pred_shape)
    if shift > config.displacement_px:
        return "dilate"
    if shift < -config.displacement_px:
        return "erode"
    return "localization"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def audit_coco(gt: dict, results: list, config: AuditConfig = AuditConfig(), *,
               progress: bool = False) -> dict[str, Any]:
    """Audit a validated COCO instance dict ``gt`` with ``results`` (COCO results format, validated here:
    bad input raises :class:`~hf_noisy.metrics.PredictionError`). Returns the audit dict described in
    :mod:`hf_noisy.audit`; ``gt`` and ``results`` are not modified. ``progress``: a progress bar on stderr of
    the images audited."""
    from ..progress import progress_bar

    if not isinstance(config, AuditConfig):
        raise AuditError(f"config must be an AuditConfig, got {type(config).__name__}")
    prepared = prepare_predictions(results, gt)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    preds_by_image: dict[int, list[tuple[int, dict]]] = {}
    for index, pred in enumerate(prepared):
        if pred["score"] >= config.min_score:
            preds_by_image.setdefault(pred["image_id"], []).append((index, pred))
    anns_by_image: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        anns_by_image.setdefault(ann["image_id"], []).append(ann)

    evidence: list[_Evidence] = []
    missing: list[tuple[int, dict]] = []
    used = 0
    with progress_bar(progress, total=len(gt["images"]), desc="auditing", unit="img") as bar:
        for image in gt["images"]:
            image_id = image["id"]
            preds = sorted(preds_by_image.get(image_id, []), key=lambda p: (-p[1]["score"], p[0]))
            preds = preds[: config.max_predictions_per_image]
            used += len(preds)
            anns = anns_by_image.get(image_id, [])
            rles = [segmentation_to_rle(a["segmentation"], *sizes[image_id]) for a in anns]
            image_evidence, image_missing = _image_evidence(anns, rles, preds, config)
            evidence += image_evidence
            missing += image_missing
            bar.update(1)

    references = _references(evidence, config)
    nonempty = [ev for ev in evidence if ev.area > 0]
    recall_all = sum(ev.prediction is not None for ev in nonempty) / len(nonempty) if nonempty else 0.0
    recall: dict[str, float] = {}
    for size in {_size_range(ev.area) for ev in nonempty}:
        group = [ev.prediction is not None for ev in nonempty if _size_range(ev.area) == size]
        recall[size] = (sum(group) + config.shrinkage * recall_all) / (len(group) + config.shrinkage)

    rows, ops = [], {op: 0 for op in OPS}
    counts = {s: 0 for s in SUSPECTS}
    for ev in evidence:
        ann, label = ev.ann, ev.ann["category_id"]
        class_score = ev.p_other * (1.0 - ev.p_label) if ev.other_category is not None else 0.0
        mask_score, spurious_score, op = 0.0, 0.0, None
        if ev.area == 0:
            mask_score, reason_mask = 1.0, "the mask is empty"
        elif ev.iou is not None:
            ref_m, ref_b = references[(ev.pred_category, _size_range(ev.pred_area))]
            mask_score = max(_deficit(ev.iou, ref_m), _deficit(ev.boundary_iou, ref_b)) * ev.pred_score
            op = _op_of(ev, config)
            reason_mask = (f"mask IoU {ev.iou:.2f}, boundary IoU {ev.boundary_iou:.2f} with the prediction "
                           f"(score {ev.pred_score:.2f}); the model usually reaches {ref_m:.2f} / {ref_b:.2f} on "
                           f"{_size_range(ev.pred_area)} '{names.get(ev.pred_category)}'; looks {op} "
                           f"(boundary {displacement(ev.ann_shape, ev.pred_shape):+.1f} px, vertex density "
                           f"{ev.ann_shape.vertex_density / max(ev.pred_shape.vertex_density, 1e-9):.2f}x)")
        else:
            spurious_score = 0.5 * recall.get(_size_range(ev.area), recall_all)
            reason_mask = ""
        parts = {"class": class_score, "mask": mask_score, "spurious": spurious_score}
        kind = max(parts, key=lambda k: parts[k])  # ties: class, mask, spurious (dict order)
        score = parts[kind]
        suspected = kind if score >= config.flag_score else "none"
        if kind == "class":
            reason = (f"the model says '{names.get(ev.other_category)}' ({ev.p_other:.2f}) here; "
                      f"'{names.get(label)}' gets {ev.p_label:.2f}")
        elif kind == "mask":
            reason = reason_mask
        else:
            size = _size_range(ev.area)
            reason = (f"no prediction overlaps it (IoU >= {config.match_iou:g}); the model matches "
                      f"{recall.get(size, recall_all):.0%} of {size} annotations")
        if ev.prediction is None and ev.area > 0 and kind == "class":
            reason += "; no prediction matches its mask"
        op = op if mask_score >= config.flag_score else None
        if op is not None:
            ops[op] += 1
        counts[suspected] += 1
        rows.append({
            "id": ann["id"], "image_id": ann["image_id"], "category_id": label, "score": _round(score),
            "suspected": suspected, "matched_iou": _round(ev.iou), "boundary_iou": _round(ev.boundary_iou),
            "suggested_category_id": ev.other_category if ev.p_other > ev.p_label else None,
            "reason": reason, "op": op, "prediction": ev.prediction,
            "scores": {k: _round(v) for k, v in parts.items()},
        })
    crowd = [ann for ann in gt["annotations"] if ann.get("iscrowd", 0)]
    for ann in crowd:
        counts["none"] += 1
        rows.append({"id": ann["id"], "image_id": ann["image_id"], "category_id": ann["category_id"], "score": 0.0,
                     "suspected": "none", "matched_iou": None, "boundary_iou": None, "suggested_category_id": None,
                     "reason": "crowd region (not audited)", "op": None, "prediction": None,
                     "scores": {"class": 0.0, "mask": 0.0, "spurious": 0.0}})
    rows.sort(key=lambda r: (-r["score"], r["id"]))

    n = max(len(evidence), 1)
    matched = [ev for ev in evidence if ev.iou is not None and ev.pred_area > 0]
    ratios = [ev.area / ev.pred_area for ev in matched]
    estimated = {
        "annotations": len(evidence),
        "suspected": {s: counts[s] for s in SUSPECTS if s != "none"},
        "class_flip": _round(counts["class"] / n),
        **{op: _round(ops[op] / n) for op in OPS},
        "spurious": _round(counts["spurious"] / n),
        "missing": len(missing),
        "median_area_ratio": _round(float(np.median(ratios))) if ratios else None,
        "median_displacement_px": _round(float(np.median([displacement(ev.ann_shape, ev.pred_shape) for ev in matched]))) if matched else None,
    }
    return {
        "annotations": rows,
        "missing": [{"image_id": p["image_id"], "category_id": p["category_id"], "segmentation": p["segmentation"],
                     "score": _round(p["score"]), "prediction": index} for index, p in missing],
        "estimated": estimated,
        "info": {"hf_noisy_version": __version__, "config": asdict(config), "images": len(gt["images"]),
                 "predictions": len(prepared), "predictions_used": used,
                 "matched": len(matched), "model_recall": _round(recall_all)},
    }
