"""Does ``hf-noisy audit`` find the label errors? COCO-N levels built from coco-tiny, whose noise is known per
instance, audited with predictions of controlled quality; side by side with cleanlab's object-detection scores.

Predictions stand in for a well-trained model and are made from the *clean* annotations:

* every mask is warped by a smooth random displacement field of ``jitter`` pixels (a bilinear upsampling of a
  4x4 grid of Gaussian offsets, so the boundary wobbles at object scale rather than pixel scale);
* 10% of objects are missed (no prediction);
* 5% get a confusable class (another category of the same supercategory) at a moderate score U(0.3, 0.6);
* the others get ``score = clip(0.35 + 0.6 * IoU(prediction, clean) + N(0, 0.05), 0.05, 0.99)``: better
  masks, higher scores.

Quality settings: ``jitter`` = 1, 2 and 4 pixels. All draws come from ``numpy.random.default_rng(seed)``.
"Changed by noise" is ``class_flipped or noise_op != "none"`` (crowd regions excluded). For one op, the
positives are the annotations it changed and the negatives the untouched ones.

cleanlab (``pip install cleanlab``; boxes only): a box's score is ``min(swap, badloc)`` of
``cleanlab.object_detection.rank.compute_{swap,badloc}_box_scores`` (lower = worse), so ``1 - min`` ranks it;
the boxes are the noisy annotations' tight boxes and the predictions' tight boxes, per class. cleanlab's
default ``high_probability_threshold`` (0.95) ignores every prediction here for swaps (the scores top out near
0.9), so it is run twice: with its defaults, and with the threshold at 0.5 (``--cleanlab-threshold``), the
score scale of these predictions; the tables show the second, the overall AUROC of both.

    python benchmarks/bench_audit.py                     # both data splits, all levels and qualities
    python benchmarks/bench_audit.py --levels hard --jitter 2 --no-cleanlab
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))

from hf_noisy.audit import AuditConfig, audit_coco  # noqa: E402
from hf_noisy.coco import load_coco  # noqa: E402
from hf_noisy.masks import Crop, segmentation_to_rle  # noqa: E402
from hf_noisy.noise import PRESETS, apply_noise  # noqa: E402

OPS = ("class_flip", "dilate", "erode", "localization", "approximation")


def jitter_mask(crop: Crop, amplitude: float, rng: np.random.Generator) -> Crop:
    """The mask warped by a smooth random displacement field of about ``amplitude`` pixels."""
    pad = int(math.ceil(3 * amplitude)) + 2
    window = crop.pad(pad)
    h, w = window.mask.shape
    field = rng.normal(0.0, amplitude, size=(2, 4, 4)).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_LINEAR)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_LINEAR)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(window.mask.astype(np.float32), xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0)
    return window.with_mask((warped >= 0.5).astype(np.uint8))


def make_predictions(clean: dict, jitter: float, seed: int, miss: float = 0.10, confuse: float = 0.05) -> list[dict]:
    """COCO results made from the clean annotations (see the module docstring)."""
    rng = np.random.default_rng(seed)
    sizes = {i["id"]: (i["height"], i["width"]) for i in clean["images"]}
    by_super: dict[str, list[int]] = {}
    for c in clean["categories"]:
        by_super.setdefault(c.get("supercategory", ""), []).append(c["id"])
    super_of = {c["id"]: c.get("supercategory", "") for c in clean["categories"]}
    all_ids = [c["id"] for c in clean["categories"]]
    results = []
    for ann in clean["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        u_miss, u_confuse = rng.random(), rng.random()
        rle = segmentation_to_rle(ann["segmentation"], *sizes[ann["image_id"]])
        crop = jitter_mask(Crop.from_rle(rle), jitter, rng)
        if u_miss < miss or crop.area == 0:
            continue
        encoded = crop.encode()
        iou = float(mask_utils.iou([encoded.rle], [rle], [0])[0][0])
        category = ann["category_id"]
        if u_confuse < confuse:
            pool = [c for c in by_super[super_of[category]] if c != category] or [c for c in all_ids if c != category]
            category = int(pool[rng.integers(len(pool))])
            score = float(rng.uniform(0.3, 0.6))
        else:
            score = float(np.clip(0.35 + 0.6 * iou + rng.normal(0.0, 0.05), 0.05, 0.99))
        results.append({"image_id": ann["image_id"], "category_id": category, "segmentation": encoded.rle,
                        "score": round(score, 4), "bbox": encoded.bbox})
    return results


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Step-wise AP over the distinct score thresholds (tied scores enter together)."""
    if not positive.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positive[order]
    tp = np.cumsum(p)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
    precision, recall = tp[last] / (last + 1), tp[last] / p.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at(scores: np.ndarray, positive: np.ndarray, share: float) -> float:
    k = max(1, int(math.ceil(share * len(scores))))
    return float(positive[np.argsort(-scores, kind="stable")[:k]].mean())


def cleanlab_scores(noisy: dict, results: list[dict], ids: list[int], threshold: float | None) -> np.ndarray:
    """``1 - min(swap, badloc)`` per annotation id (higher = more likely wrong), from cleanlab's box scores;
    ``threshold``: cleanlab's ``high_probability_threshold`` for swaps (None: its default, 0.95)."""
    from cleanlab.object_detection.rank import compute_badloc_box_scores, compute_swap_box_scores

    index = {c["id"]: k for k, c in enumerate(noisy["categories"])}
    k_classes = len(index)
    images = [i["id"] for i in noisy["images"]]
    anns_by_image: dict[int, list[dict]] = {i: [] for i in images}
    for ann in noisy["annotations"]:
        if not ann.get("iscrowd", 0):
            anns_by_image[ann["image_id"]].append(ann)
    preds_by_image: dict[int, list[list]] = {i: [[] for _ in range(k_classes)] for i in images}
    for r in results:
        x, y, w, h = r["bbox"]
        preds_by_image[r["image_id"]][index[r["category_id"]]].append([x, y, x + w, y + h, r["score"]])
    labels, predictions = [], []
    for image_id in images:
        anns = anns_by_image[image_id]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], float).reshape(-1, 4)
        labels.append({"bboxes": boxes, "labels": np.array([index[a["category_id"]] for a in anns], int)})
        per_class = np.empty(k_classes, dtype=object)
        for k, rows in enumerate(preds_by_image[image_id]):
            per_class[k] = np.array(rows, float).reshape(-1, 5)
        predictions.append(per_class)
    swap = compute_swap_box_scores(labels=labels, predictions=predictions, high_probability_threshold=threshold)
    badloc = compute_badloc_box_scores(labels=labels, predictions=predictions)
    by_id = {}
    for image_id, s, b in zip(images, swap, badloc):
        for ann, s_k, b_k in zip(anns_by_image[image_id], s, b):
            by_id[ann["id"]] = 1.0 - min(float(s_k), float(b_k))
    return np.array([by_id[i] for i in ids])


def evaluate(scores: np.ndarray, noisy_anns: list[dict]) -> dict:
    changed = np.array([a["class_flipped"] or a["noise_op"] != "none" for a in noisy_anns])
    clean = ~changed
    out = {"AUROC": auroc(scores, changed), "AP": average_precision(scores, changed),
           "P@1%": precision_at(scores, changed, 0.01), "P@5%": precision_at(scores, changed, 0.05),
           "base": float(changed.mean())}
    for op in OPS:
        hit = np.array([a["class_flipped"] if op == "class_flip" else a["noise_op"] == op for a in noisy_anns])
        keep = hit | clean
        out[op] = auroc(scores[keep], hit[keep])
    return out


def true_rates(noisy_anns: list[dict]) -> dict:
    n = len(noisy_anns)
    rates = {"class_flip": sum(a["class_flipped"] for a in noisy_anns) / n}
    rates.update({op: sum(a["noise_op"] == op for a in noisy_anns) / n for op in OPS[1:]})
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", nargs="+", default=["train2017", "val2017"], help="coco-tiny splits, pooled")
    parser.add_argument("--levels", nargs="+", default=["easy", "medium", "hard"])
    parser.add_argument("--jitter", nargs="+", type=float, default=[1.0, 2.0, 4.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument("--cleanlab-threshold", type=float, default=0.5, help="cleanlab's high_probability_threshold")
    parser.add_argument("--reference-quantile", type=float, default=AuditConfig().reference_quantile)
    args = parser.parse_args()
    cv2.setNumThreads(1)

    splits = [load_coco(SHARED / "data" / "coco-tiny" / "annotations" / f"instances_{s}.json") for s in args.splits]
    rows, rates = [], []
    for level in args.levels:
        noisy_splits = [apply_noise(clean, PRESETS[level], allow_empty_masks=True).data for clean in splits]
        for jitter in args.jitter:
            ours_scores, theirs_scores, default_scores, anns_all, est = [], [], [], [], []
            t_ours = t_theirs = 0.0
            for k, (clean, noisy) in enumerate(zip(splits, noisy_splits)):
                results = make_predictions(clean, jitter, seed=args.seed * 1000 + k * 100 + int(jitter * 10))
                start = time.process_time()
                audit = audit_coco(noisy, results, AuditConfig(reference_quantile=args.reference_quantile))
                t_ours += time.process_time() - start
                score_of = {r["id"]: r["score"] for r in audit["annotations"]}
                anns = [a for a in noisy["annotations"] if not a.get("iscrowd", 0)]
                ids = [a["id"] for a in anns]
                ours_scores.append(np.array([score_of[i] for i in ids]))
                if not args.no_cleanlab:
                    start = time.process_time()
                    theirs_scores.append(cleanlab_scores(noisy, results, ids, args.cleanlab_threshold))
                    t_theirs += time.process_time() - start
                    default_scores.append(cleanlab_scores(noisy, results, ids, None))
                anns_all += anns
                est.append((len(anns), audit["estimated"]))
            ours = evaluate(np.concatenate(ours_scores), anns_all)
            theirs = evaluate(np.concatenate(theirs_scores), anns_all) if theirs_scores else None
            if theirs:
                theirs["default AUROC"] = evaluate(np.concatenate(default_scores), anns_all)["AUROC"]
            rows.append((level, jitter, ours, theirs, t_ours, t_theirs))
            n_total = sum(n for n, _ in est)
            estimated = {op: sum(n * e[op] for n, e in est) / n_total for op in OPS}
            rates.append((level, jitter, true_rates(anns_all), estimated))
            print(f"{level} jitter {jitter:g}: ours AUROC {ours['AUROC']:.3f}"
                  + (f", cleanlab {theirs['AUROC']:.3f}" if theirs else "") + f" ({len(anns_all)} annotations)",
                  file=sys.stderr)

    def f(v: float) -> str:
        return "-" if v != v else f"{v:.3f}"

    print("\nAUROC and AP of the score for 'changed by noise' (ours / cleanlab at --cleanlab-threshold; "
          "cleanlab with its defaults in the last column)\n")
    print("| level | jitter px | changed | AUROC | AP | P@1% | P@5% | "
          + " | ".join(f"{op} AUROC" for op in OPS) + " | cleanlab defaults AUROC |")
    print("|---" * (8 + len(OPS)) + "|")
    for level, jitter, ours, theirs, _, _ in rows:
        pair = (lambda key: f"{f(ours[key])} / {f(theirs[key])}") if theirs else (lambda key: f(ours[key]))
        print(f"| {level} | {jitter:g} | {ours['base']:.0%} | {pair('AUROC')} | {pair('AP')} | {pair('P@1%')} | "
              f"{pair('P@5%')} | " + " | ".join(pair(op) for op in OPS)
              + f" | {f(theirs['default AUROC']) if theirs else '-'} |")
    print("\nestimated vs true per-op rates (share of annotations)\n")
    print("| level | jitter px | " + " | ".join(OPS) + " |")
    print("|---" * (2 + len(OPS)) + "|")
    for level, jitter, true, estimated in rates:
        print(f"| {level} | {jitter:g} | " + " | ".join(f"{estimated[op]:.2f} / {true[op]:.2f}" for op in OPS) + " |")
    t_ours = sum(r[4] for r in rows)
    t_theirs = sum(r[5] for r in rows)
    print(f"\nCPU seconds, all runs: audit {t_ours:.1f}" + (f", cleanlab {t_theirs:.1f}" if t_theirs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
