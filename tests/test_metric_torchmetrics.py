"""The torchmetrics adapter (hf_noisy.metrics.lightning.MaskBoundaryAP) gives torchmetrics' own
MeanAveragePrecision(iou_type="segm", backend="pycocotools") numbers on real coco-tiny masks, and Boundary AP
besides, for a Lightning module to log."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torchmetrics", reason="the torchmetrics extra (hf-noisy[torchmetrics]) is not installed")
torch = pytest.importorskip("torch")

from hf_noisy.coco import load_coco  # noqa: E402
from hf_noisy.metrics import STAT_NAMES  # noqa: E402

#: our COCO stat -> torchmetrics' key
TM_KEYS = dict(zip(STAT_NAMES, ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10",
                                "mar_100", "mar_small", "mar_medium", "mar_large")))


@pytest.fixture(scope="module")
def batches(shared_dir):
    """coco-tiny val as torchmetrics inputs (bool mask tensors), 4 images per batch."""
    from pycocotools import mask as mask_utils

    from hf_noisy.masks import segmentation_to_rle

    gt = load_coco(shared_dir / "data" / "coco-tiny" / "annotations" / "instances_val2017.json")
    detections = json.loads((shared_dir / "data" / "vectors" / "eval_val2017_detections.json").read_text())
    images = []
    for image in gt["images"]:
        h, w = image["height"], image["width"]
        dets = [d for d in detections if d["image_id"] == image["id"]]
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]

        def stack(rles):
            masks = np.stack([mask_utils.decode(r) for r in rles]) if rles else np.zeros((0, h, w), np.uint8)
            return torch.from_numpy(masks.astype(bool))

        images.append((
            {"masks": stack([d["segmentation"] for d in dets]), "scores": torch.tensor([d["score"] for d in dets]),
             "labels": torch.tensor([d["category_id"] for d in dets], dtype=torch.int64)},
            {"masks": stack([segmentation_to_rle(a["segmentation"], h, w) for a in anns]),
             "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
             "iscrowd": torch.tensor([a.get("iscrowd", 0) for a in anns], dtype=torch.int64),
             "area": torch.tensor([a["area"] for a in anns], dtype=torch.float32)}))
    return [images[k:k + 4] for k in range(0, len(images), 4)]


@pytest.fixture
def mean_average_precision(monkeypatch):
    """torchmetrics' MeanAveragePrecision class. It refuses to start without torchvision, which this project
    never installs (it breaks transformers' Mask2Former imports, see pyproject's train extra), although its segm
    path only imports ``torchvision.ops.box_convert`` and never calls it (boxes are converted for bbox only).
    Where torchvision is absent, that import is given a stand-in that fails the test if it is ever called."""
    import importlib.util
    import sys
    import types

    from torchmetrics.detection import mean_ap

    if importlib.util.find_spec("torchvision") is None:
        def box_convert(*args, **kwargs):
            raise AssertionError("segm evaluation converted boxes")

        ops = types.ModuleType("torchvision.ops")
        ops.box_convert = box_convert
        package = types.ModuleType("torchvision")
        package.ops = ops
        monkeypatch.setitem(sys.modules, "torchvision", package)
        monkeypatch.setitem(sys.modules, "torchvision.ops", ops)
        monkeypatch.setattr(mean_ap, "_TORCHVISION_AVAILABLE", True)
    return mean_ap.MeanAveragePrecision


def test_segm_equals_torchmetrics_mean_average_precision(batches, mean_average_precision):
    from hf_noisy.metrics.lightning import MaskBoundaryAP

    # pycocotools' thresholds (its Params): torchmetrics' defaults are float32 linspaces (0.550000011920929, ...),
    # which move its numbers off COCO's by ~1e-4 here (0.42677 for COCO's 0.42712)
    coco_thresholds = {"iou_thresholds": np.linspace(0.5, 0.95, 10).tolist(),
                       "rec_thresholds": np.linspace(0.0, 1.0, 101).tolist()}
    theirs = mean_average_precision(iou_type="segm", backend="pycocotools", **coco_thresholds)
    ours = MaskBoundaryAP(iou_types=("segm", "boundary"))
    for batch in batches:
        preds, target = [p for p, _ in batch], [t for _, t in batch]
        theirs.update(preds, target)
        ours.update(preds, target)
    expected, got = theirs.compute(), ours.compute()
    assert float(expected["map"]) > 0.3  # real predictions
    for name, key in TM_KEYS.items():
        # torchmetrics returns float32: equal to its precision
        assert float(got[f"segm_{name}"]) == pytest.approx(float(expected[key]), abs=1e-6), name
    assert 0 < float(got["boundary_AP"]) < float(got["segm_AP"])  # Boundary AP besides, stricter than mask AP
    # only match records are held, never the masks: far fewer bytes than the masks torchmetrics keeps
    held = sum(t.numel() * t.element_size() for name in ours._names for t in getattr(ours, name))
    assert held == ours._core.bytes_per_detection * sum(len(p["scores"]) for b in batches for p, _ in b) + \
        8 * sum(len(b) for b in batches) + 40 * sum(len(torch.unique(t["labels"])) for b in batches for _, t in b)
    ours.reset()
    assert all(len(getattr(ours, name)) == 0 for name in ours._names)
