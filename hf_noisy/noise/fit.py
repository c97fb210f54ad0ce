"""Fit a noise spec to a clean/noisy pair of COCO files over the same images: the inverse of the engine.

:func:`fit_spec` answers "how noisy is this file, in the spec's units?". It reads only what any COCO file has
(``id``, ``image_id``, ``category_id``, ``segmentation``, ``bbox``, ``iscrowd``): never the provenance fields
the engine writes (``noise_op``, ``noise_param``, ``class_flipped``, ``original_category_id``), so a file noised
elsewhere, or a real re-annotation, is fitted the same way.

Steps:

1. **Matching** (:func:`match_annotations`): a noisy annotation whose ``id`` is a clean annotation's id in the
   same image pairs with it; the rest are paired per image by mask IoU, class-agnostic, with the Hungarian
   assignment (pairs below ``min_iou`` are left unmatched). When most noisy ids are clean ids (the ids agree),
   the annotations left over are not matched by IoU: they are missing or added instances.
2. **Class noise** from the matched non-crowd pairs: the flip rate and the ``C x C`` confusion counts. The
   kind is the one of symmetric (Eq. 1), asymmetric within supercategory (Eq. 3) and a general matrix that
   best predicts held-out pairs (leave-one-out log-likelihood; the matrix rows are smoothed counts), so a
   matrix is chosen only when flips repeat between the same categories more than uniform noise explains.
3. **Spatial ops** per matched non-crowd pair. The deterministic ops are replayed on the clean mask: the pair
   is *explained* by ``dilate k`` / ``erode k`` (``k`` in :data:`KERNELS`) or ``approximation d`` (``d`` in
   :data:`TOLERANCES`) when the replay equals the noisy mask pixel for pixel, and by ``none`` when the mask is
   unchanged. One mask may have several explanations (an unchanged box is also its own approximation; an
   emptied small mask is any large erosion), so the rates and parameters are the maximum-likelihood mixture
   over explanations (EM). A changed mask that no replay explains is **localization** (Gaussian vertex noise,
   the stochastic op); its ``sigma`` is the value whose simulations on the same clean masks give the observed
   mean ``|clean XOR noisy| / clean perimeter`` (interpolated on :data:`SIGMAS`).

4. **Annotation errors** (the ops beyond the paper), replayed the same way: ``missing`` (a clean instance with no
   noisy one), ``merge`` (a pair whose noisy mask is the union of its clean mask and an unmatched clean mask of
   the same image and class, which is then merged away, not missing), ``split`` (a pair whose noisy mask is
   the first half of the clean mask's cut and whose second half is an added noisy instance), ``duplicate`` (an
   added noisy instance that is an unchanged pair's mask moved), ``box`` (the mask's tight box), ``shift`` (the
   clean mask moved, clipped to the image), ``vertex_dropout`` (polygons whose vertices are a subsequence of
   the clean ones) and ``crowd_flip`` (``iscrowd`` differs). ``max_offset`` of shift and duplicate is twice the
   mean offset over the box side (the offset is uniform on ``[0, max_offset]``); ``fraction`` of
   vertex_dropout the middle of the interval that every thinned polygon allows (``floor(fraction * n)``
   vertices dropped). Rates count the instances the op visibly changed: a merge without a same-class
   neighbour, a shift by (0, 0) or a dropout that drops nothing look unchanged and count as ``none``. Rates are
   over every eligible clean instance (pairs, missing and merged-away ones).

Confidence: rates get 95% Wilson binomial intervals over the eligible (matched, non-crowd) instances; ``sigma``
a 95% bootstrap interval over its instances; a kernel or tolerance the share of its op's mass on the chosen
value (1.0: every instance of the op agrees).

Limits: what is measured is the realised noise of this file (its sampling error against the generating spec's
probabilities is binomial, about 0.017 at p = 0.3 on 700 instances). Pairs matched by IoU cannot include masks
that noise emptied (their IoU is 0): they count as unmatched. Real re-annotations (not made by these ops) have
no exact replays, so every changed mask counts as localization: the fit is then the nearest paper-style spec,
not a claim about how the file was made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import HfNoisyError
from .spec import ClassNoise, NoiseSpec, SpatialOp

__all__ = ["FitError", "Estimate", "Matching", "FitResult", "KERNELS", "TOLERANCES", "SIGMAS", "fit_spec",
           "match_annotations", "wilson"]

#: Kernel sizes (odd, pixels) tried for dilate / erode replays.
KERNELS = (3, 5, 7, 9, 11, 13, 15)
#: Tolerances (pixels) tried for approximation replays.
TOLERANCES = tuple(float(d) for d in range(1, 21))
#: Localization sigmas (pixels) simulated to calibrate the sigma estimate.
SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
_Z95 = 1.959963984540054


class FitError(HfNoisyError):
    """A clean/noisy pair that cannot be fitted (other images, unknown categories, nothing to match)."""


@dataclass(frozen=True)
class Estimate:
    """A fitted number with its 95% interval ``[low, high]`` and ``n``, the instances it rests on."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def wilson(successes: float, n: int) -> Estimate:
    """The rate ``successes / n`` with its 95% Wilson score interval (``successes`` may be fractional: an
    expected count)."""
    if n <= 0:
        return Estimate(0.0, 0.0, 1.0, 0)
    p = successes / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / (1 + z2 / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass(frozen=True)
class Matching:
    """Clean/noisy annotation pairs (``(clean, noisy)``), the annotations left unmatched on each side, and how
    many pairs were matched by id and by IoU."""

    pairs: list[tuple[dict, dict]]
    unmatched_clean: list[dict]
    unmatched_noisy: list[dict]
    by_id: int
    by_iou: int


@dataclass(frozen=True)
class OpFit:
    """One spatial op's fitted rate, and its parameter (``None`` for ``none``) with the parameter's confidence:
    an interval for ``sigma``, for kernels and tolerances the share of the op's mass on the chosen value."""

    rate: Estimate
    param: float | None = None
    param_low: float | None = None
    param_high: float | None = None
    param_share: float | None = None

    def to_dict(self) -> dict:
        return {"rate": self.rate.to_dict(), "param": self.param, "param_low": self.param_low,
                "param_high": self.param_high, "param_share": self.param_share}


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_spec` found.

    Attributes:
        spec: the fitted spec (seed 0: a fit cannot know the seed; ``class_noise.matrix`` is a placeholder path
            ``"matrix.json"`` when the kind is ``matrix``: write :attr:`matrix` there, see :meth:`spec_for`).
        matching: the pairs.
        eligible: matched non-crowd pairs, the denominator of every rate.
        class_kind: ``"none"``, ``"symmetric"``, ``"asymmetric"`` or ``"matrix"``; ``class_rate``: the flip rate.
        class_loglik: leave-one-out log-likelihood per pair of each kind (the kind chosen is the largest).
        categories: the clean file's category ids, the order of ``confusion`` rows/columns.
        confusion: counts, ``confusion[i][j]`` pairs of clean category ``i`` labelled ``j``.
        matrix: the row-stochastic matrix fitted (rows without pairs: the identity row).
        ops: op name (``none``, ``dilate``, ``erode``, ``localization``, ``approximation``) -> :class:`OpFit`.
        crowd_changed: matched crowd pairs whose mask or label changed (``include_crowd``).
    """

    spec: NoiseSpec
    matching: Matching
    eligible: int
    class_kind: str
    class_rate: Estimate
    class_loglik: dict[str, float]
    categories: list[int]
    confusion: list[list[int]]
    matrix: list[list[float]]
    ops: dict[str, OpFit]
    crowd_changed: int
    unexplained_added: int = 0

    def spec_for(self, matrix_path: str) -> NoiseSpec:
        """:attr:`spec` with its class-noise matrix at ``matrix_path`` (unchanged unless the kind is matrix)."""
        from dataclasses import replace

        if self.spec.class_noise is None or self.spec.class_noise.kind != "matrix":
            return self.spec
        return replace(self.spec, class_noise=ClassNoise("matrix", matrix=matrix_path))

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table: (quantity, value, 95% interval or share, instances)."""

        def rate(e: Estimate) -> tuple[str, str, str]:
            return f"{e.value:.4f}", f"[{e.low:.4f}, {e.high:.4f}]", str(e.n)

        m = self.matching
        out = [("pairs (by id / by IoU)", f"{len(m.pairs)}", f"{m.by_id} / {m.by_iou}", ""),
               ("unmatched clean / noisy", f"{len(m.unmatched_clean)} / {len(m.unmatched_noisy)}", "", "")]
        out.append((f"class noise ({self.class_kind})", *rate(self.class_rate)))
        cells = sorted(((count, i, j) for i, row in enumerate(self.confusion) for j, count in enumerate(row)
                        if i != j and count), reverse=True)
        for count, i, j in cells[:3]:  # the most frequent confusions (the full matrix: --json)
            out.append((f"  category {self.categories[i]} -> {self.categories[j]}", str(count), "", ""))
        for name, fit in self.ops.items():
            out.append((f"{name} rate", *rate(fit.rate)))
            if fit.param is not None:
                label = {"dilate": "kernel", "erode": "kernel", "localization": "sigma", "shift": "max_offset",
                         "duplicate": "max_offset", "vertex_dropout": "fraction"}.get(name, "tolerance")
                if fit.param_low is not None:
                    conf = f"[{fit.param_low:.2f}, {fit.param_high:.2f}]"
                else:
                    conf = f"share {fit.param_share:.2f}"
                out.append((f"  {label}", f"{fit.param:g}", conf, ""))
        if self.unexplained_added:
            out.append(("added, unexplained", str(self.unexplained_added), "", ""))
        return out

    def table(self) -> str:
        rows = [("quantity", "estimate", "95% interval", "n"), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}".rstrip()
                         for r in rows)

    def to_dict(self) -> dict:
        m = self.matching
        return {
            "spec": self.spec.to_dict(),
            "pairs": len(m.pairs), "by_id": m.by_id, "by_iou": m.by_iou,
            "unmatched_clean": len(m.unmatched_clean), "unmatched_noisy": len(m.unmatched_noisy),
            "eligible": self.eligible, "class_kind": self.class_kind, "class_rate": self.class_rate.to_dict(),
            "class_loglik": self.class_loglik, "categories": self.categories, "confusion": self.confusion,
            "ops": {name: fit.to_dict() for name, fit in self.ops.items()},
            "unexplained_added": self.unexplained_added,
            "crowd_changed": self.crowd_changed,
        }


# -- matching ---------------------------------------------------------------------------------------------------

def _check_pair(clean: dict, noisy: dict) -> dict[int, tuple[int, int]]:
    sizes = {image["id"]: (image["height"], image["width"]) for image in clean["images"]}
    for image in noisy["images"]:
        if sizes.get(image["id"]) != (image["height"], image["width"]):
            raise FitError(f"noisy image {image['id']} is not in the clean file with the same size")
    known = {c["id"] for c in clean["categories"]}
    unknown = sorted({a["category_id"] for a in noisy["annotations"]} - known)
    if unknown:
        raise FitError(f"noisy category_id {unknown[0]} is not a category of the clean file")
    return sizes


def match_annotations(clean: dict, noisy: dict, *, min_iou: float = 0.1) -> Matching:
    """Pair the annotations of two COCO dicts over the same images (see the module docstring): by ``id`` where
    a noisy id is a clean id of the same image, then per image by mask IoU (Hungarian, class-agnostic, pairs
    with IoU >= ``min_iou``). Pairs come in clean-file order; unmatched annotations in their files' order."""
    from pycocotools import mask as mask_utils
    from scipy.optimize import linear_sum_assignment

    from ..masks import segmentation_to_rle

    sizes = _check_pair(clean, noisy)
    clean_by_id = {a["id"]: a for a in clean["annotations"]}
    paired: dict[int, dict] = {}  # clean id -> noisy annotation
    rest_noisy: dict[int, list[dict]] = {}
    for ann in noisy["annotations"]:
        match = clean_by_id.get(ann["id"])
        if match is not None and match["image_id"] == ann["image_id"] and match["id"] not in paired:
            paired[match["id"]] = ann
        else:
            rest_noisy.setdefault(ann["image_id"], []).append(ann)
    by_id = len(paired)
    unmatched_noisy_ids: set[int] = {a["id"] for anns in rest_noisy.values() for a in anns}
    if by_id and 2 * by_id >= min(len(clean["annotations"]), len(noisy["annotations"])):
        rest_noisy = {}  # the ids agree: an annotation left on either side is missing or added, not renumbered
    rest_clean: dict[int, list[dict]] = {}
    for ann in clean["annotations"]:
        if ann["id"] not in paired:
            rest_clean.setdefault(ann["image_id"], []).append(ann)
    for image_id, noisy_anns in rest_noisy.items():
        clean_anns = rest_clean.get(image_id, [])
        if not clean_anns:
            continue
        height, width = sizes[image_id]
        a = [segmentation_to_rle(x["segmentation"], height, width) for x in clean_anns]
        b = [segmentation_to_rle(x["segmentation"], height, width) for x in noisy_anns]
        iou = np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=float).reshape(len(a), len(b))
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] >= min_iou:
                paired[clean_anns[r]["id"]] = noisy_anns[c]
                unmatched_noisy_ids.discard(noisy_anns[c]["id"])
    pairs = [(a, paired[a["id"]]) for a in clean["annotations"] if a["id"] in paired]
    return Matching(
        pairs=pairs,
        unmatched_clean=[a for a in clean["annotations"] if a["id"] not in paired],
        unmatched_noisy=[a for a in noisy["annotations"] if a["id"] in unmatched_noisy_ids],
        by_id=by_id,
        by_iou=len(pairs) - by_id,
    )


# -- class noise ------------------------------------------------------------------------------------------------

def _class_fit(pairs: Sequence[tuple[dict, dict]],
               categories: list[dict]) -> tuple[str, Estimate, dict, np.ndarray, np.ndarray]:
    """(kind, flip rate, LOO log-likelihood per pair of each kind, confusion counts, fitted matrix)."""
    ids = [c["id"] for c in categories]
    index = {cid: i for i, cid in enumerate(ids)}
    n = len(ids)
    counts = np.zeros((n, n), dtype=np.int64)
    for c, x in pairs:
        counts[index[c["category_id"]], index[x["category_id"]]] += 1
    total = int(counts.sum())
    flips = total - int(np.trace(counts))
    rate = wilson(flips, total)
    row_totals = counts.sum(axis=1)
    matrix = np.where(row_totals[:, None] > 0, counts / np.maximum(row_totals, 1)[:, None], np.eye(n))
    if flips == 0 or total < 2:
        return "none", rate, {}, counts, matrix
    diag = np.diag(counts).astype(float)
    off = counts - np.diag(diag)

    # symmetric: leave one out, p = (F - own flip) / (T - 1); a flip lands on each of the n - 1 others alike
    loglik = {"symmetric": (total - flips) * _log(1 - flips / (total - 1))
              + flips * _log((flips - 1) / (total - 1) / max(n - 1, 1))}
    # asymmetric: flips only within a supercategory, among the categories that have siblings
    groups: dict[str, list[int]] = {}
    for i, category in enumerate(categories):
        if category.get("supercategory"):
            groups.setdefault(category["supercategory"], []).append(i)
    group_of = {i: members for members in groups.values() for i in members}
    if groups:
        inside = sum(int(off[np.ix_(m, m)].sum()) for m in groups.values())
        eligible_rows = [i for i in range(n) if len(group_of.get(i, ())) > 1]
        eligible = int(row_totals[eligible_rows].sum())
        if inside == flips and eligible > 1:
            ll = 0.0
            for i in eligible_rows:
                ll += diag[i] * _log(1 - flips / (eligible - 1))
                ll += off[i].sum() * _log((flips - 1) / (eligible - 1) / (len(group_of[i]) - 1))
            loglik["asymmetric"] = ll
            rate = wilson(flips, eligible)
        else:
            loglik["asymmetric"] = -math.inf
    # matrix: each row's counts smoothed by alpha per cell, the held-out pair removed from its own cell
    alpha = 1.0 / n
    ll = 0.0
    for i in np.flatnonzero(row_totals):
        row = counts[i]
        nz = row > 0
        ll += float((row[nz] * np.log((row[nz] - 1 + alpha) / (row_totals[i] - 1 + n * alpha))).sum())
    loglik["matrix"] = ll
    per_pair = {kind: value / total for kind, value in loglik.items()}
    kind = max(per_pair, key=lambda k: (per_pair[k], k == "symmetric"))
    return kind, rate, per_pair, counts, matrix


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


# -- spatial ops ------------------------------------------------------------------------------------------------

def _explanations(pairs: Sequence[tuple[dict, dict]], sizes: dict, bar: Any
                  ) -> tuple[list[set], list[int], list, list[str]]:
    """For each pair, the set of the paper's deterministic explanations ``(op, param)`` that replay its noisy
    mask exactly (``("none", None)`` for an unchanged mask); the indices of the changed pairs; the clean crops
    and the noisy masks' RLE counts. ``bar`` (a progress bar) counts the pairs replayed: once by the mask ops,
    once per approximation tolerance."""
    from pycocotools import mask as mask_utils

    from ..masks import Crop, segmentation_to_rle
    from . import spatial

    crops, targets, areas, clean_areas = [], [], [], []
    for c, x in pairs:
        height, width = sizes[c["image_id"]]
        crop = Crop.from_segmentation(c["segmentation"], height, width)
        rle = segmentation_to_rle(x["segmentation"], height, width)
        crops.append(crop)
        targets.append(rle["counts"])
        areas.append(int(mask_utils.area(rle)))
        clean_areas.append(crop.area)
    found: list[set] = [set() for _ in pairs]
    changed = []
    for i, crop in enumerate(crops):
        bar.update(1)
        if crop.to_rle()["counts"] == targets[i]:
            found[i].add(("none", None))
            continue
        changed.append(i)
        if areas[i] > clean_areas[i]:
            candidates = [("dilate", k) for k in KERNELS]
        elif areas[i] < clean_areas[i]:
            candidates = [("erode", k) for k in KERNELS]
        else:
            candidates = []
        for op, k in candidates:
            replay = spatial.dilate(crop, k) if op == "dilate" else spatial.erode(crop, k)
            if replay.to_rle()["counts"] == targets[i]:
                found[i].add((op, k))
    for d in TOLERANCES:
        for i, replay in zip(range(len(crops)), spatial.approximate_many(crops, d)):
            if replay.to_rle()["counts"] == targets[i]:
                found[i].add(("approximation", d))
        bar.update(len(crops))
    return found, changed, crops, targets


#: The annotation-error ops (beyond the paper's boundary noise) that :func:`fit_spec` recognises.
ANNOTATION_ERRORS = ("missing", "duplicate", "merge", "split", "box", "shift", "vertex_dropout", "crowd_flip")


@dataclass
class _Errors:
    """What the annotation-error replays found beyond the pairs' explanations (added to ``found`` in place):
    unmatched clean instances that are missing or merged into a pair, noisy instances that no replay explains,
    and the evidence for the parameters (offsets of shifts and duplicates as fractions of the box side; each
    thinned polygon's vertex count and the vertices it lost)."""

    missing: int = 0
    merged_away: int = 0
    unexplained_added: int = 0
    offsets: dict[str, list[float]] = field(default_factory=lambda: {"shift": [], "duplicate": []})
    dropped: list[tuple[int, int]] = field(default_factory=list)

    def params(self, op: str, seed: int) -> tuple[float | None, float | None, float | None, float | None]:
        """(param, low, high, share) of ``op``: ``max_offset`` of shift/duplicate as twice the mean normalised
        offset (|dx| / w is uniform on [0, max_offset]) with a 95% bootstrap interval; ``fraction`` of
        vertex_dropout as the middle of the interval every thinned polygon allows (dropped = floor(f n)), the
        interval as its bounds; None for the ops that take no parameter."""
        if op in self.offsets and self.offsets[op]:
            values = np.asarray(self.offsets[op])
            rng = np.random.default_rng([seed, 2 << 20])
            boot = [2 * values[rng.integers(0, len(values), len(values))].mean() for _ in range(400)]
            low, high = np.percentile(boot, [2.5, 97.5])
            return (round(min(2 * float(values.mean()), 1.0), 3), round(float(low), 3), round(min(float(high), 1.0), 3),
                    None)
        if op == "vertex_dropout" and self.dropped:
            low, high = 0.0, 1.0
            for count, drop in self.dropped:
                low = max(low, drop / count)
                if drop < count - 3:  # the drop was not capped by the 3 vertices a ring keeps
                    high = min(high, (drop + 1) / count)
            return round((low + high) / 2, 4), round(low, 4), round(high, 4), None
        return None, None, None, None


def _offsets(source, target, zero: bool = False) -> list[tuple[int, int]]:
    """Candidate ``(dx, dy)`` moving ``source``'s foreground onto ``target``'s (tight boxes aligned on either
    edge: the far edge may be clipped by the image); ``(0, 0)`` only with ``zero`` (a copy in place)."""
    from . import spatial

    a, b = spatial.tight_box(source), spatial.tight_box(target)
    if a is None or b is None:
        return []
    xs = {b[0] - a[0], b[2] - a[2]}
    ys = {b[1] - a[1], b[3] - a[3]}
    return sorted((dx, dy) for dx in xs for dy in ys if zero or (dx, dy) != (0, 0))


def _subsequence_drop(clean: list, noisy: list) -> int | None:
    """Vertices ``noisy`` (a flat polygon) lost from ``clean`` when its vertices are a subsequence of clean's,
    else None."""
    a = list(zip(clean[::2], clean[1::2]))
    b = list(zip(noisy[::2], noisy[1::2]))
    it = iter(a)
    if len(b) > len(a) or not all(any(v == w for w in it) for v in b):
        return None
    return len(a) - len(b)


def _annotation_errors(pairs, matching: Matching, sizes: dict, found: list[set], changed: list[int], crops: list,
                       targets: list[str]) -> _Errors:
    """Replay the annotation-error ops on the pairs and the unmatched annotations (see the module docstring);
    adds their explanations to ``found``."""
    from pycocotools import mask as mask_utils

    from ..masks import Crop
    from . import spatial

    errors = _Errors()
    unmatched_clean: dict[int, list[dict]] = {}
    for ann in matching.unmatched_clean:
        if not ann.get("iscrowd", 0):
            unmatched_clean.setdefault(ann["image_id"], []).append(ann)
    added: dict[int, list[tuple[dict, object]]] = {}  # image -> unmatched noisy (annotation, crop)
    for ann in matching.unmatched_noisy:
        size = sizes[ann["image_id"]]
        added.setdefault(ann["image_id"], []).append((ann, Crop.from_segmentation(ann["segmentation"], *size)))
    merged_away: set[int] = set()

    def counts(crop) -> str:
        return crop.to_rle()["counts"]

    def take_added(image_id: int, wanted: str) -> bool:
        for k, (ann, crop) in enumerate(added.get(image_id, [])):
            if counts(crop) == wanted:
                del added[image_id][k]
                return True
        return False

    changed_set = set(changed)
    for i, (c, x) in enumerate(pairs):
        crop, target, image_id = crops[i], targets[i], c["image_id"]
        if x.get("iscrowd", 0) != c.get("iscrowd", 0):
            found[i].clear()
            found[i].add(("crowd_flip", None))
            continue
        if i not in changed_set:
            continue
        noisy_area = int(mask_utils.area({"size": list(sizes[image_id]), "counts": target}))
        if noisy_area >= crop.area and counts(spatial.box_mask(crop)) == target:
            found[i].add(("box", None))
        if noisy_area > crop.area:
            for u in unmatched_clean.get(image_id, []):
                if u["id"] in merged_away or u["category_id"] != c["category_id"]:
                    continue
                other = Crop.from_segmentation(u["segmentation"], *sizes[image_id])
                if counts(spatial.union(crop, other)) == target:
                    found[i].add(("merge", None))
                    merged_away.add(u["id"])
                    break
        if 0 < noisy_area <= crop.area:
            noisy_crop = Crop.from_rle({"size": list(sizes[image_id]), "counts": target})
            for dx, dy in _offsets(crop, noisy_crop):
                if counts(spatial.translate(crop, dx, dy)) == target:
                    found[i].add(("shift", None))
                    box = spatial.tight_box(crop)
                    errors.offsets["shift"] += [abs(dx) / (box[2] - box[0]), abs(dy) / (box[3] - box[1])]
                    break
            parts = spatial.split(crop) if noisy_area < crop.area else None
            if parts is not None and counts(parts[0]) == target and take_added(image_id, counts(parts[1])):
                found[i].add(("split", None))
        clean_seg, noisy_seg = c["segmentation"], x["segmentation"]
        if (isinstance(clean_seg, list) and isinstance(noisy_seg, list) and len(clean_seg) == len(noisy_seg)):
            drops = [_subsequence_drop(a, b) for a, b in zip(clean_seg, noisy_seg)]
            if all(d is not None for d in drops) and sum(drops):
                found[i].add(("vertex_dropout", None))
                errors.dropped += [(len(a) // 2, d) for a, d in zip(clean_seg, drops)]
    # duplicates: an added instance that is an unchanged pair's mask moved
    for i, (c, x) in enumerate(pairs):
        image_id = c["image_id"]
        if ("none", None) not in found[i] or not added.get(image_id):
            continue
        for k, (ann, crop) in enumerate(added[image_id]):
            hit = next(((dx, dy) for dx, dy in _offsets(crops[i], crop, zero=True)
                        if counts(spatial.translate(crops[i], dx, dy)) == counts(crop)), None)
            if hit is not None:
                del added[image_id][k]
                found[i].clear()
                found[i].add(("duplicate", None))
                box = spatial.tight_box(crops[i])
                errors.offsets["duplicate"] += [abs(hit[0]) / (box[2] - box[0]), abs(hit[1]) / (box[3] - box[1])]
                break
    errors.merged_away = len(merged_away)
    errors.missing = sum(len(anns) for anns in unmatched_clean.values()) - errors.merged_away
    errors.unexplained_added = sum(len(v) for v in added.values())
    return errors


def _mixture(found: list[set], total: int, iterations: int = 300) -> dict[tuple, float]:
    """Maximum-likelihood weights (expected counts) of the explanations, by EM over the instances that have
    any; each instance's weight is shared among its explanations in proportion to their weights."""
    components = sorted({c for s in found for c in s}, key=lambda c: (c[0], c[1] or 0))
    if not components:
        return {}
    col = {c: j for j, c in enumerate(components)}
    member = np.zeros((sum(1 for s in found if s), len(components)))
    for row, s in enumerate(s for s in found if s):
        for c in s:
            member[row, col[c]] = 1.0
    weights = np.full(len(components), 1.0 / len(components))
    for _ in range(iterations):
        resp = member * weights
        resp /= resp.sum(axis=1, keepdims=True)
        new = resp.sum(axis=0) / len(member)
        if np.abs(new - weights).max() < 1e-12:
            weights = new
            break
        weights = new
    counts = weights * len(member)
    return {c: round(float(counts[j]), 6) for j, c in enumerate(components)}  # EM leaves ~1e-15 to unneeded ones


def _perimeter(crop) -> float:
    import cv2

    if crop.area == 0:
        return 1.0
    contours, _ = cv2.findContours(crop.mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(sum(cv2.arcLength(c, True) for c in contours), 1.0)


def _disagreement(a, b_rle: dict) -> float:
    """``|a XOR b|`` in pixels (``a`` a crop, ``b`` an RLE of the same image)."""
    from pycocotools import mask as mask_utils

    a_rle = a.to_rle()
    area_a, area_b = int(mask_utils.area(a_rle)), int(mask_utils.area(b_rle))
    iou = float(mask_utils.iou([a_rle], [b_rle], [0])[0][0])
    inter = iou * (area_a + area_b) / (1 + iou)
    return area_a + area_b - 2 * inter


def _sigma_fit(crops: list, noisy_rles: list[dict], seed: int, boot: int = 400,
               replicates: int = 2, progress: bool = False) -> tuple[float, float, float]:
    """Localization sigma (pixels) and its 95% bootstrap interval: the sigma whose simulations on these clean
    masks (``replicates`` per mask and sigma) give the observed mean of ``|clean XOR noisy| / perimeter``
    (linear interpolation on SIGMAS). The bootstrap resamples the instances and, for each, one of its
    simulation replicates, so the interval holds the calibration's own noise too. ``progress``: a progress bar
    of the simulations."""
    from ..progress import progress_bar
    from . import spatial

    perimeters = np.array([_perimeter(c) for c in crops])
    observed = np.array([_disagreement(c, r) for c, r in zip(crops, noisy_rles)]) / perimeters
    simulated = np.empty((replicates, len(SIGMAS), len(crops)))
    with progress_bar(progress, total=simulated.size, desc="simulating localization", unit="mask") as bar:
        for r in range(replicates):
            for g, sigma in enumerate(SIGMAS):
                for i, crop in enumerate(crops):
                    noisy = spatial.localize(crop, sigma, np.random.default_rng([seed, r, g, i]))
                    simulated[r, g, i] = _disagreement(crop, noisy.to_rle()) / perimeters[i]
                bar.update(len(crops))

    def invert(curve: np.ndarray, target: float) -> float:
        return float(np.interp(target, np.maximum.accumulate(curve), SIGMAS))  # monotone up to simulation noise

    value = invert(simulated.mean(axis=(0, 2)), observed.mean())
    rng = np.random.default_rng([seed, 1 << 20])
    draws = []
    for _ in range(boot):
        index = rng.integers(0, len(crops), len(crops))
        replicate = rng.integers(0, replicates, len(crops))
        draws.append(invert(simulated[replicate, :, index].mean(axis=0), observed[index].mean()))
    low, high = np.percentile(draws, [2.5, 97.5])
    return value, float(low), float(high)


def _param_of(weights: dict[tuple, float], op: str) -> tuple[float | None, float | None, float]:
    """(modal parameter, its share of the op's mass, the op's total expected count)."""
    mass = {param: w for (name, param), w in weights.items() if name == op}
    total = sum(mass.values())
    if total <= 0:
        return None, None, 0.0
    best = max(mass, key=lambda p: (mass[p], -p))
    return best, mass[best] / total, total


def _binomial_two_sided(k: float, n: float) -> float:
    """Two-sided p-value of ``k`` successes in ``n`` fair coin flips (normal approximation with continuity)."""
    if n <= 0:
        return 1.0
    z = (abs(k - n / 2) - 0.5) / math.sqrt(n / 4)
    return math.erfc(max(z, 0.0) / math.sqrt(2))


# -- the fit ----------------------------------------------------------------------------------------------------

def fit_spec(clean: dict, noisy: dict, *, min_iou: float = 0.1, seed: int = 0,
             max_images: int | None = None, progress: bool = False) -> FitResult:
    """Fit a :class:`~hf_noisy.noise.NoiseSpec` to ``noisy`` as made from ``clean`` (validated COCO dicts over
    the same images; see the module docstring). ``seed`` seeds the localization simulations and the bootstrap
    (same inputs and seed, same result). ``max_images``: fit on the first N images of ``clean`` only (a fit
    costs a few ms per instance: a sample of a large file; the intervals widen accordingly). ``progress``: progress
    bars on stderr of the replays of the pairs, then of the localization simulations."""
    from ..progress import progress_bar

    if max_images is not None:
        if max_images < 1:
            raise FitError("max_images must be >= 1")
        keep = {image["id"] for image in clean["images"][:max_images]}
        clean, noisy = ({**data, "images": [i for i in data["images"] if i["id"] in keep],
                         "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
                        for data in (clean, noisy))
    sizes = _check_pair(clean, noisy)
    matching = match_annotations(clean, noisy, min_iou=min_iou)
    if not matching.pairs:
        raise FitError("no noisy annotation matches a clean one (by id or by IoU): are these files of the same images?")
    eligible_pairs = [(c, x) for c, x in matching.pairs if not c.get("iscrowd", 0)]
    crowd_changed = sum(1 for c, x in matching.pairs if c.get("iscrowd", 0)
                        and (c["category_id"] != x["category_id"] or c["segmentation"] != x["segmentation"]
                             or c.get("iscrowd", 0) != x.get("iscrowd", 0)))
    kind, class_rate, loglik, counts, matrix = _class_fit(eligible_pairs, clean["categories"])

    with progress_bar(progress, total=len(eligible_pairs) * (1 + len(TOLERANCES)), desc="replaying pairs",
                      unit="pair") as bar:
        found, changed, crops, targets = _explanations(eligible_pairs, sizes, bar)
    errors = _annotation_errors(eligible_pairs, matching, sizes, found, changed, crops, targets)
    # every eligible clean instance: the pairs, then the unmatched ones (missing, or merged into a pair)
    n = len(eligible_pairs) + errors.missing + errors.merged_away
    found = found + [{("missing", None)}] * errors.missing
    unexplained = [i for i in changed if not found[i]]
    weights = _mixture(found, n)
    ops: dict[str, OpFit] = {}
    ops["none"] = OpFit(wilson(weights.get(("none", None), 0.0), n))
    for op in ("dilate", "erode", "approximation"):
        param, share, total = _param_of(weights, op)
        if total >= 0.5:  # at least half an instance: an op the mixture does not need gets ~0, not a spec entry
            ops[op] = OpFit(wilson(total, n), param, param_share=share)
    for op in ANNOTATION_ERRORS:
        total = weights.get((op, None), 0.0)
        if total >= 0.5:
            ops[op] = OpFit(wilson(total, n), *errors.params(op, seed))
    if unexplained:
        from ..masks import segmentation_to_rle

        rles = [segmentation_to_rle(eligible_pairs[i][1]["segmentation"], *sizes[eligible_pairs[i][0]["image_id"]])
                for i in unexplained]
        sigma, low, high = _sigma_fit([crops[i] for i in unexplained], rles, seed, progress=progress)
        ops["localization"] = OpFit(wilson(len(unexplained), n), round(sigma, 2), round(low, 2), round(high, 2))

    spec = _spec(kind, class_rate, ops, eligible_pairs, found, crowd_changed)
    return FitResult(spec=spec, matching=matching, eligible=n, class_kind=kind, class_rate=class_rate,
                     class_loglik=loglik, categories=[c["id"] for c in clean["categories"]],
                     confusion=counts.tolist(), matrix=matrix.tolist(), ops=ops, crowd_changed=crowd_changed,
                     unexplained_added=errors.unexplained_added)


def _spec(kind: str, class_rate: Estimate, ops: dict[str, OpFit], pairs, found, crowd_changed: int) -> NoiseSpec:
    """The spec the estimates describe (probabilities rounded to 4 decimals)."""
    class_noise = None
    if kind in ("symmetric", "asymmetric"):
        class_noise = ClassNoise(kind, round(class_rate.value, 4))
    elif kind == "matrix":
        class_noise = ClassNoise("matrix", matrix="matrix.json")
    spatial: list[SpatialOp] = []
    dilate, erode = ops.get("dilate"), ops.get("erode")
    if dilate and erode and dilate.param == erode.param and _binomial_two_sided(
            dilate.rate.value * dilate.rate.n, (dilate.rate.value + erode.rate.value) * dilate.rate.n) > 0.01:
        spatial.append(SpatialOp("scale", round(dilate.rate.value + erode.rate.value, 4), int(dilate.param)))
    else:
        spatial += [SpatialOp(name, round(fit.rate.value, 4), int(fit.param)) for name, fit in (("dilate", dilate),
                    ("erode", erode)) if fit is not None]
    for name in ("localization", "approximation"):
        fit = ops.get(name)
        if fit is not None:
            param = fit.param if name == "localization" else float(fit.param)
            spatial.append(SpatialOp(name, round(fit.rate.value, 4), param))
    for name in ANNOTATION_ERRORS:
        fit = ops.get(name)
        if fit is not None:
            spatial.append(SpatialOp(name, round(fit.rate.value, 4), fit.param))
    total = sum(op.prob for op in spatial)
    if total > 1:  # rounding up past 1: take the excess (a few 1e-5) from the largest
        k = max(range(len(spatial)), key=lambda j: spatial[j].prob)
        spatial[k] = SpatialOp(spatial[k].op, round(spatial[k].prob - (total - 1), 4), spatial[k].param)
    changed = [(c, x) for (c, x), s in zip(pairs, found) if s and not s & {("none", None), ("crowd_flip", None),
                                                                           ("duplicate", None)}]
    recompute = not changed or any(list(map(float, c["bbox"])) != list(map(float, x["bbox"])) for c, x in changed)
    return NoiseSpec(seed=0, class_noise=class_noise, spatial=tuple(spatial), include_crowd=crowd_changed > 0,
                     recompute_geometry=recompute, name="fitted")
