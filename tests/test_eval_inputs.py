"""What evaluation accepts beyond masks: box-only detections (a box detector's output) and a box-only ground truth
are scored for box AP exactly as pycocotools' ``COCO.loadRes`` + ``COCOeval(..., "bbox")`` score them, mask-based IoU
types are then clear errors; a ground-truth ``ignore`` flag is overwritten by ``iscrowd``, as pycocotools does."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.cli import main
from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.metrics import PredictionError, evaluate_coco, prepare_predictions

REPO = Path(__file__).resolve().parents[1]


def _box_results(gt: dict, seed: int) -> list[dict]:
    """Boxes from the ground truth with jitter and misses, plus false positives: a seeded stand-in detector."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd") or rng.random() < 0.15:
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0.0, 0.1, 4) * [w, h, w, h]
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "score": float(rng.random()),
                        "bbox": [float(x + jitter[0]), float(y + jitter[1]), float(max(w + jitter[2], 0.5)),
                                 float(max(h + jitter[3], 0.5))]})
    category_ids = [category["id"] for category in gt["categories"]]
    for image in gt["images"]:
        for _ in range(int(rng.integers(0, 4))):
            w, h = rng.uniform(5, image["width"] / 2), rng.uniform(5, image["height"] / 2)
            results.append({"image_id": image["id"], "category_id": int(rng.choice(category_ids)),
                            "score": float(rng.random()),
                            "bbox": [float(rng.uniform(0, image["width"] - w)),
                                     float(rng.uniform(0, image["height"] - h)), float(w), float(h)]})
    rng.shuffle(results)
    return results


def _pycocotools_bbox(gt_path: Path, results_path: Path) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(str(results_path)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats, dtype=np.float64)


def _cli_json(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def val(coco_tiny: Path) -> Path:
    return coco_tiny / "annotations" / "instances_val2017.json"


def test_box_only_results_equal_pycocotools_load_res(val: Path, tmp_path: Path):
    results = _box_results(json.loads(val.read_text()), seed=3)
    assert results and all("segmentation" not in r for r in results)
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(results))
    ours = _cli_json(["evaluate", "--gt", str(val), "--predictions", str(path), "--iou-types", "bbox", "--json"])
    reference = _pycocotools_bbox(val, path)
    assert 0.05 < reference[0] < 0.95  # a run that can tell right from wrong
    np.testing.assert_allclose(np.array(list(ours["bbox"].values())), reference, rtol=0, atol=1e-12)


def test_box_only_ground_truth_is_scored_for_bbox(val: Path, tmp_path: Path):
    gt = json.loads(val.read_text())
    results = _box_results(gt, seed=4)
    for ann in gt["annotations"]:
        del ann["segmentation"]
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "boxes.json"
    gt_path.write_text(json.dumps(gt))
    results_path.write_text(json.dumps(results))
    ours = _cli_json(["evaluate", "--gt", str(gt_path), "--predictions", str(results_path), "--iou-types", "bbox",
                      "--json"])
    np.testing.assert_allclose(np.array(list(ours["bbox"].values())), _pycocotools_bbox(gt_path, results_path),
                               rtol=0, atol=1e-12)


def test_mask_types_name_the_first_box_only_detection(val: Path, tmp_path: Path, capsys):
    gt = load_coco(val)
    with_masks = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"],
                   "segmentation": a["segmentation"]} for a in gt["annotations"][:3]]
    results = with_masks + [{k: v for k, v in with_masks[0].items() if k != "segmentation"}]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(results))
    for iou_types in ("segm", "bbox,boundary"):
        assert main(["evaluate", "--gt", str(val), "--predictions", str(path), "--iou-types", iou_types]) == 2
        err = capsys.readouterr().err
        assert f"{path}: detection #3: field 'segmentation' missing" in err and err.count("\n") == 1
    assert len(evaluate_coco(gt, results, ["bbox"])) == 1  # the same file is fine for bbox alone


def test_box_only_detection_gets_box_area_and_box_mask(val: Path):
    gt = load_coco(val)
    image = gt["images"][0]
    category = gt["categories"][0]["id"]
    [prepared] = prepare_predictions([{"image_id": image["id"], "category_id": category, "score": 0.5,
                                       "bbox": [10.5, 20.0, 30.0, 40.25]}], gt, ["bbox"])
    assert prepared["area"] == 30.0 * 40.25 and prepared["bbox"] == [10.5, 20.0, 30.0, 40.25]
    assert prepared["segmentation"]["size"] == [image["height"], image["width"]]
    with pytest.raises(PredictionError, match="no 'bbox' either"):
        prepare_predictions([{"image_id": image["id"], "category_id": category, "score": 0.5}], gt, ["bbox"])


def test_ground_truth_without_masks_is_refused_for_mask_types(val: Path, tmp_path: Path, capsys):
    gt = json.loads(val.read_text())
    first = gt["annotations"][0]
    del first["segmentation"]
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    results_path = tmp_path / "none.json"
    results_path.write_text("[]")
    assert main(["evaluate", "--gt", str(gt_path), "--predictions", str(results_path), "--iou-types", "segm"]) == 2
    err = capsys.readouterr().err
    assert f"{gt_path}: annotation {first['id']}: field 'segmentation': missing, and segm needs masks" in err
    with pytest.raises(CocoFormatError, match="field 'segmentation': missing"):
        load_coco(gt_path)  # the default reader still wants masks


@pytest.mark.slow
def test_ground_truth_ignore_flag_is_overwritten_by_iscrowd_as_pycocotools(val: Path, tmp_path: Path, monkeypatch):
    """The README's one known difference from boundary-iou-api: it keeps ``ignore: 1``; we (and pycocotools) don't."""
    gt = json.loads(val.read_text())
    flagged = [ann for ann in gt["annotations"] if not ann.get("iscrowd")][::3]
    for ann in flagged:
        ann["ignore"] = 1
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    results = _box_results(gt, seed=5)
    results_path = tmp_path / "boxes.json"
    results_path.write_text(json.dumps(results))
    ours = _cli_json(["evaluate", "--gt", str(gt_path), "--predictions", str(results_path), "--iou-types", "bbox",
                      "--json"])
    reference = _pycocotools_bbox(gt_path, results_path)
    np.testing.assert_allclose(np.array(list(ours["bbox"].values())), reference, rtol=0, atol=1e-12)
    boundary_iou_api = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared")) / "reference" / "boundary-iou-api"
    if not (boundary_iou_api / "boundary_iou").is_dir():
        pytest.skip(f"boundary-iou-api not found at {boundary_iou_api}")
    monkeypatch.setattr(np, "float", float, raising=False)  # the reference still uses the alias numpy removed
    with contextlib.redirect_stdout(io.StringIO()), _on_path(boundary_iou_api):
        from boundary_iou.coco_instance_api.coco import COCO as BoundaryCOCO
        from boundary_iou.coco_instance_api.cocoeval import COCOeval as BoundaryCOCOeval

        coco = BoundaryCOCO(str(gt_path))
        evaluator = BoundaryCOCOeval(coco, coco.loadRes(str(results_path)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert abs(evaluator.stats[0] - reference[0]) > 1e-3  # boundary-iou-api keeps the flag: other numbers


@contextlib.contextmanager
def _on_path(path: Path):
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
