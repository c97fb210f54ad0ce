"""Mask AP, Boundary AP and box AP (COCO-style) as a Hugging Face ``evaluate`` module.

A thin wrapper over :class:`hf_noisy.metrics.InstanceSegmentationAP`: each image is validated when it is added
(a bad batch fails at ``add_batch``, naming the image and the field), stored as JSON strings (evaluate's cache,
which also gathers the processes of a distributed run), and matched and accumulated by the metric class at
``compute()``, whose options (IoU types, rules, categories) decide the matching.

This file ships inside the hf-noisy package (:func:`hf_noisy.metrics.evaluate_module_path` is its path, for
``evaluate.load``). The Space folder of ``hf-noisy push-metric``, ``eval/mask_boundary_ap/``, imports its
class from here rather than holding a copy.
"""

import json

import datasets
import evaluate

from hf_noisy.errors import HfNoisyError
from hf_noisy.metrics import DEFAULT_DILATION_RATIO, IOU_TYPES, InstanceSegmentationAP, is_lvis
from hf_noisy.metrics.driver import flatten

_DESCRIPTION = """\
COCO mask AP (segm), box AP (bbox) and Boundary AP (boundary; Boundary IoU, Cheng et al. CVPR 2021) with the 12
COCO summary numbers per IoU type, identical to pycocotools / boundary-iou-api; or the same under LVIS's
federated rules (config "lvis" or rules="lvis"), identical to the lvis package.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: one dict per image: {"masks": [RLE], "scores": [float], "labels": [category id],
        optional "image_size": [height, width], optional "boxes": [[x, y, w, h]]}.
    references: one dict per image: {"image_id": int, "height": int, "width": int,
        "annotations": [{"segmentation": polygons or RLE, "category_id": int, "iscrowd": 0/1, ...}],
        LVIS only: "neg_category_ids": [int], "not_exhaustive_category_ids": [int]}.
    iou_types: list of "segm", "bbox", "boundary" (default all three).
    dilation_ratio: boundary width as a fraction of the image diagonal (default DEFAULT_DILATION_RATIO, 0.02).
    rules: "coco", "lvis", or None (default): "lvis" with the config name "lvis" or when the references (or
        categories) carry LVIS fields, else "coco".
    categories: optional list of category dicts ({"id", "name", "frequency": "r"/"c"/"f"}, e.g. LVIS's);
        default: the ids used by references and predictions (then APr/APc/APf are -1).
    max_dets: COCO: detections kept per image and category (default 100); LVIS: per image (default 300).
    per_category: also return f"{iou_type}_AP_cat{id}" (default False).
    num_proc: processes that match images (default 1; the numbers are the same for any value).
Returns:
    a flat dict {f"{iou_type}_{stat}": float}, stat in AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs,
    ARm, ARl (COCO) or AP, AP50, AP75, APs, APm, APl, APr, APc, APf, AR, ARs, ARm, ARl (LVIS); -1.0 where
    undefined.
Examples:
    >>> from hf_noisy.metrics import evaluate_module_path      # this script, installed with hf-noisy
    >>> metric = evaluate.load(evaluate_module_path())          # or from its Space: "noisy-seg/mask_boundary_ap"
    >>> metric.add_batch(predictions=[prediction], references=[reference])
    >>> metric.compute()["boundary_AP"]
    >>> lvis_metric = evaluate.load(evaluate_module_path(), "lvis")       # LVIS federated rules
"""


class MaskBoundaryAP(evaluate.Metric):
    """Per-image predictions and references in, flat COCO summary numbers out."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add images: lists of per-image predictions and references (or one image's dicts), validated now."""
        if isinstance(predictions, dict):
            predictions, references = [predictions], [references]
        if predictions is not None and references is not None:
            InstanceSegmentationAP().check(predictions, references)
        return super().add_batch(predictions=_dump(predictions), references=_dump(references), **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one image's prediction and reference, validated now."""
        if prediction is not None and reference is not None:
            InstanceSegmentationAP().check([prediction], [reference])
        return super().add(prediction=json.dumps(prediction), reference=json.dumps(reference), **kwargs)

    def _compute(self, predictions, references, iou_types=IOU_TYPES, dilation_ratio=DEFAULT_DILATION_RATIO,
                 max_dets=None, per_category=False, rules=None, categories=None, num_proc=1):
        predictions, references = [json.loads(p) for p in predictions], [json.loads(r) for r in references]
        if rules is None:
            lvis = self.config_name == "lvis" or is_lvis({"images": references, "categories": categories or []})
            rules = "lvis" if lvis else "coco"
        if rules not in ("coco", "lvis"):
            raise HfNoisyError(f"rules must be 'coco', 'lvis' or None (automatic), got {rules!r}")
        metric = InstanceSegmentationAP(iou_types, protocol=rules, categories=categories,
                                        dilation_ratio=dilation_ratio, max_dets=max_dets)
        metric.update(predictions, references, num_proc=num_proc)
        return flatten(metric.compute(), per_category)


def _dump(items):
    return None if items is None else [json.dumps(item) for item in items]
