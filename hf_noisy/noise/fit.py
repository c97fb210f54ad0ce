"""Fit a noise spec to a clean/noisy pair of COCO files over the same images: the inverse of the engine.

:func:`fit_spec` answers "how noisy is this file, in the spec's units?". It reads only what any COCO file has
(``id``, ``image_id``, ``category_id``, ``segmentation``, ``bbox``, ``iscrowd``): never the provenance fields
the engine writes (``noise_op``, ``noise_param``, ``class_flipped``, ``original_category_id``), so a file noised
elsewhere, or a real re-annotation, is fitted the same way.

Steps:

1. **Matching** (:func:`match_annotations`): a noisy annotation whose ``id`` is a clean annotation's id in the
   same image pairs with it; the rest are paired per image by mask IoU, class-agnostic, with the Hungarian
   assignment (pairs below ``min_iou`` are left unmatched).
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
from typing import Sequence

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
    extra: dict[str, Estimate] = field(default_factory=dict)

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
        for name, fit in self.ops.items():
            out.append((f"{name} rate", *rate(fit.rate)))
            if fit.param is not None:
                label = {"dilate": "kernel", "erode": "kernel", "localization": "sigma"}.get(name, "tolerance")
                if fit.param_low is not None:
                    conf = f"[{fit.param_low:.2f}, {fit.param_high:.2f}]"
                else:
                    conf = f"share {fit.param_share:.2f}"
                out.append((f"  {label}", f"{fit.param:g}", conf, ""))
        for name, estimate in self.extra.items():
            out.append((f"{name} rate", *rate(estimate)))
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
            "extra": {name: e.to_dict() for name, e in self.extra.items()},
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
    rest_clean: dict[int, list[dict]] = {}
    for ann in clean["annotations"]:
        if ann["id"] not in paired:
            rest_clean.setdefault(ann["image_id"], []).append(ann)
    unmatched_noisy_ids: set[int] = {a["id"] for anns in rest_noisy.values() for a in anns}
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

def _class_fit(pairs: Sequence[tuple[dict, dict]], categories: list[dict]) -> tuple[str, Estimate, dict, np.ndarray, np.ndarray]:
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

def _explanations(pairs: Sequence[tuple[dict, dict]], sizes: dict) -> tuple[list[set], list[int], list]:
    """For each pair, the set of deterministic explanations ``(op, param)`` that replay its noisy mask exactly
    (``("none", None)`` for an unchanged mask); the indices of changed pairs that none explains (localization);
    and the clean crops (for the sigma fit)."""
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
    unexplained = [i for i in changed if not found[i]]
    return found, unexplained, crops


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


def _sigma_fit(crops: list, noisy_rles: list[dict], seed: int, boot: int = 400) -> tuple[float, float, float]:
    """Localization sigma (pixels) and its 95% bootstrap interval: the sigma whose simulations on these clean
    masks give the observed mean of ``|clean XOR noisy| / perimeter`` (linear interpolation on SIGMAS)."""
    from . import spatial

    perimeters = np.array([_perimeter(c) for c in crops])
    observed = np.array([_disagreement(c, r) for c, r in zip(crops, noisy_rles)]) / perimeters
    simulated = np.empty((len(SIGMAS), len(crops)))
    for g, sigma in enumerate(SIGMAS):
        for i, crop in enumerate(crops):
            rng = np.random.default_rng([seed, g, i])
            noisy = spatial.localize(crop, sigma, rng)
            simulated[g, i] = _disagreement(crop, noisy.to_rle()) / perimeters[i]

    def invert(index: np.ndarray) -> float:
        curve = simulated[:, index].mean(axis=1)
        curve = np.maximum.accumulate(curve)  # monotone in sigma up to simulation noise
        return float(np.interp(observed[index].mean(), curve, SIGMAS))

    value = invert(np.arange(len(crops)))
    rng = np.random.default_rng([seed, 1 << 20])
    draws = [invert(rng.integers(0, len(crops), len(crops))) for _ in range(boot)]
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

def fit_spec(clean: dict, noisy: dict, *, min_iou: float = 0.1, seed: int = 0) -> FitResult:
    """Fit a :class:`~hf_noisy.noise.NoiseSpec` to ``noisy`` as made from ``clean`` (validated COCO dicts over
    the same images; see the module docstring). ``seed`` seeds the localization simulations and the bootstrap
    (same inputs and seed, same result)."""
    sizes = _check_pair(clean, noisy)
    matching = match_annotations(clean, noisy, min_iou=min_iou)
    if not matching.pairs:
        raise FitError("no noisy annotation matches a clean one (by id or by IoU): are these files of the same images?")
    eligible_pairs = [(c, x) for c, x in matching.pairs if not c.get("iscrowd", 0)]
    crowd_changed = sum(1 for c, x in matching.pairs if c.get("iscrowd", 0)
                        and (c["category_id"] != x["category_id"] or c["segmentation"] != x["segmentation"]))
    n = len(eligible_pairs)
    kind, class_rate, loglik, counts, matrix = _class_fit(eligible_pairs, clean["categories"])

    found, unexplained, crops = _explanations(eligible_pairs, sizes)
    weights = _mixture(found, n)
    ops: dict[str, OpFit] = {}
    ops["none"] = OpFit(wilson(weights.get(("none", None), 0.0), n))
    for op in ("dilate", "erode", "approximation"):
        param, share, total = _param_of(weights, op)
        if total >= 0.5:  # at least half an instance: an op the mixture does not need gets ~0, not a spec entry
            ops[op] = OpFit(wilson(total, n), param, param_share=share)
    if unexplained:
        from ..masks import segmentation_to_rle

        rles = [segmentation_to_rle(eligible_pairs[i][1]["segmentation"], *sizes[eligible_pairs[i][0]["image_id"]])
                for i in unexplained]
        sigma, low, high = _sigma_fit([crops[i] for i in unexplained], rles, seed)
        ops["localization"] = OpFit(wilson(len(unexplained), n), round(sigma, 2), round(low, 2), round(high, 2))

    spec = _spec(kind, class_rate, ops, eligible_pairs, found, crowd_changed)
    return FitResult(spec=spec, matching=matching, eligible=n, class_kind=kind, class_rate=class_rate,
                     class_loglik=loglik, categories=[c["id"] for c in clean["categories"]],
                     confusion=counts.tolist(), matrix=matrix.tolist(), ops=ops, crowd_changed=crowd_changed)


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
    total = sum(op.prob for op in spatial)
    if total > 1:  # rounding up past 1
        spatial[-1] = SpatialOp(spatial[-1].op, round(spatial[-1].prob - (total - 1), 4), spatial[-1].param)
    changed = [(c, x) for (c, x), s in zip(pairs, found) if ("none", None) not in s]
    recompute = not changed or any(list(map(float, c["bbox"])) != list(map(float, x["bbox"])) for c, x in changed)
    return NoiseSpec(seed=0, class_noise=class_noise, spatial=tuple(spatial), include_crowd=crowd_changed > 0,
                     recompute_geometry=recompute, name="fitted")
