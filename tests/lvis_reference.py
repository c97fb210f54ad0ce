"""LVIS parity helpers shared by the tests and ``benchmarks/bench_metric_lvis.py``: deterministic detections
made from an LVIS ground truth, and the reference numbers of the ``lvis`` package (``segm``, ``bbox``) and of
boundary-iou-api's ``lvis_instance_api`` (``boundary``).

Not a test module (no ``test_`` prefix): it holds no assertions.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
from pathlib import Path

import numpy as np

from hf_noisy.masks import Crop

#: The lvis package's result keys, in the order it reports them (``AR@300`` and friends are renamed AR, ARs...).
LVIS_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR@300", "ARs@300", "ARm@300", "ARl@300")


def make_detections(gt: dict, seed: int = 0, crowded_image: bool = True) -> list[dict]:
    """Detections in COCO results format (RLE masks, boxes, scores), made deterministically from ``gt``.

    Per image: a shifted copy of most ground-truth masks (true positives at some IoU thresholds), a few
    duplicates (false positives), copies labelled with a category of the image's negative set (false
    positives), of a category the image does not list at all (dropped by the federated rule), of another
    positive category of the image (false positives), and of a not-exhaustively-annotated category (ignored
    when unmatched). Scores are rounded to two decimals, so ties happen. With ``crowded_image``, the image with
    the most annotations gets 330 extra detections, more than LVIS's 300 per image.
    """
    rng = np.random.default_rng(seed)
    all_categories = np.array(sorted(c["id"] for c in gt["categories"]))
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    detections = []

    def add(image, crop: Crop, category_id: int) -> None:
        encoded = crop.encode()
        if encoded.area:
            detections.append({"image_id": image["id"], "category_id": int(category_id), "segmentation": encoded.rle,
                               "bbox": encoded.bbox, "score": round(float(rng.random()), 2)})

    def shifted(crop: Crop, image, spread: int) -> Crop:
        dx, dy = (int(v) for v in rng.integers(-spread, spread + 1, 2))
        mask = crop.mask
        x0, y0 = crop.x0 + dx, crop.y0 + dy
        # clip the window to the image
        left, top = max(0, -x0), max(0, -y0)
        right = max(0, x0 + mask.shape[1] - image["width"])
        bottom = max(0, y0 + mask.shape[0] - image["height"])
        mask = mask[top:mask.shape[0] - bottom, left:mask.shape[1] - right]
        return Crop(np.ascontiguousarray(mask), x0 + left, y0 + top, crop.image_size)

    for image in gt["images"]:
        anns = by_image[image["id"]]
        positive = sorted({a["category_id"] for a in anns})
        negative = sorted(image.get("neg_category_ids", []))
        not_exhaustive = sorted(image.get("not_exhaustive_category_ids", []))
        unlisted = np.setdiff1d(all_categories, positive + negative)
        for ann in anns:
            crop = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"])
            spread = max(1, int(0.15 * np.sqrt(max(crop.area, 1))))
            if rng.random() < 0.85:
                add(image, shifted(crop, image, spread), ann["category_id"])
            if rng.random() < 0.2:
                add(image, shifted(crop, image, 2 * spread), ann["category_id"])
            if negative and rng.random() < 0.3:
                add(image, shifted(crop, image, spread), rng.choice(negative))
            if rng.random() < 0.3:
                add(image, shifted(crop, image, spread), rng.choice(unlisted))
            if len(positive) > 1 and rng.random() < 0.2:
                add(image, shifted(crop, image, spread), rng.choice([c for c in positive if c != ann["category_id"]]))
            if not_exhaustive and rng.random() < 0.5:
                add(image, shifted(crop, image, 3 * spread), rng.choice(not_exhaustive))
    if crowded_image:
        image = max(gt["images"], key=lambda im: (len(by_image[im["id"]]), -im["id"]))
        anns = by_image[image["id"]]
        choices = sorted({a["category_id"] for a in anns} | set(image.get("neg_category_ids", [])))
        for k in range(330):
            ann = anns[k % len(anns)]
            crop = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"])
            add(image, shifted(crop, image, 8), ann["category_id"] if k % 3 else rng.choice(choices))
    return detections


def _silenced():
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    logging.disable(logging.WARNING)
    stack.callback(logging.disable, logging.NOTSET)
    return stack


def boundary_iou_api_path() -> Path:
    shared = Path(os.environ.get("HF_NOISY_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return shared / "reference" / "boundary-iou-api"


def reference_numbers(gt_path: str, detections: list[dict], iou_types=("segm", "bbox", "boundary"),
                      dilation_ratio: float = 0.02) -> dict[str, dict[str, float]]:
    """``{iou_type: lvis results dict}``: the ``lvis`` package's ``LVISEval`` for ``segm``/``bbox`` and
    boundary-iou-api's LVIS ``LVISEval`` for ``boundary`` (``np.float = float`` shim for both)."""
    np.float = float  # the reference packages still use the alias numpy 1.24 removed
    out = {}
    with _silenced():
        for iou_type in iou_types:
            if iou_type == "boundary":
                path = str(boundary_iou_api_path())
                if path not in sys.path:
                    sys.path.insert(0, path)
                from boundary_iou.lvis_instance_api.eval import LVISEval as BoundaryLVISEval
                from boundary_iou.lvis_instance_api.lvis import LVIS as BoundaryLVIS

                evaluator = BoundaryLVISEval(BoundaryLVIS(gt_path), copy.deepcopy(detections), "boundary",
                                             dilation_ratio=dilation_ratio)
            else:
                from lvis import LVIS, LVISEval

                evaluator = LVISEval(LVIS(gt_path), copy.deepcopy(detections), iou_type)
            evaluator.run()
            out[iou_type] = {key: float(value) for key, value in evaluator.get_results().items()}
    return out
