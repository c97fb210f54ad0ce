"""The metric core against the stored reference vectors (pycocotools 2.0.11, boundary-iou-api), boundaries,
bad predictions, and annotation-quality scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.errors import HfNoisyError
from hf_noisy.masks import Crop, decode, encode, segmentation_to_rle
from hf_noisy.metrics import (
    STAT_NAMES,
    PredictionError,
    boundary_rle,
    dilation_pixels,
    evaluate_coco,
    load_predictions,
    score_quality,
)


@pytest.fixture(scope="module")
def vectors(shared_dir):
    folder = shared_dir / "data" / "vectors"
    return json.loads((folder / "eval_val2017_expected.json").read_text()), json.loads(
        (folder / "eval_val2017_detections.json").read_text())


@pytest.fixture(scope="module")
def gt(coco_tiny):
    return load_coco(coco_tiny / "annotations" / "instances_val2017.json")


TOL = {"segm": 1e-9, "bbox": 1e-9, "boundary": 1e-6}


def _assert_stats(results, expected):
    for iou_type, tol in TOL.items():
        got = [results[iou_type].stats[name] for name in STAT_NAMES]
        np.testing.assert_allclose(got, expected[iou_type], rtol=0, atol=tol, err_msg=iou_type)


def test_detections_match_references(gt, vectors):
    expected, detections = vectors
    assert expected["stat_names"] == list(STAT_NAMES)
    _assert_stats(evaluate_coco(gt, detections), expected)


def test_gt_as_predictions_match_references(gt, vectors):
    expected, _ = vectors
    predictions = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                    "bbox": a["bbox"], "score": 1.0} for a in gt["annotations"] if not a["iscrowd"]]
    _assert_stats(evaluate_coco(gt, predictions), expected["gt_as_predictions"])


def test_precision_recall_and_per_category(gt, vectors):
    _, detections = vectors
    result = evaluate_coco(gt, detections, ["segm"])["segm"]
    k = len(gt["categories"])
    assert result.precision.shape == (10, 101, k, 4, 3) and result.recall.shape == (10, k, 4, 3)
    defined = [v for v in result.per_category.values() if v > -1]
    assert set(result.per_category) == {c["id"] for c in gt["categories"]}
    assert np.isclose(np.mean(defined), result.stats["AP"])


def test_box_area_rule_changes_area_ranges(gt, vectors):
    """Without bboxes the area is the mask's, so the small/medium/large split (and only it) may differ."""
    _, detections = vectors
    without = [{k: v for k, v in d.items() if k != "bbox"} for d in detections]
    with_box, no_box = evaluate_coco(gt, detections, ["segm"])["segm"], evaluate_coco(gt, without, ["segm"])["segm"]
    assert with_box.stats["AP"] == no_box.stats["AP"]
    assert any(with_box.stats[k] != no_box.stats[k] for k in ("APs", "APm", "APl", "ARs", "ARm", "ARl"))


# -- boundaries ---------------------------------------------------------------------------------------------

def _reference_boundary(mask: np.ndarray, ratio: float) -> np.ndarray:
    """The definition, on the full image, written with plain numpy (chessboard erosion by d of the 0-padded mask)."""
    h, w = mask.shape
    d = dilation_pixels(h, w, ratio)
    pad1 = np.zeros((h + 2 + 2 * d, w + 2 + 2 * d), np.uint8) + 1  # outside the 1-pixel ring: does not erode
    pad1[d:d + h + 2, d:d + w + 2] = 0
    pad1[d + 1:d + 1 + h, d + 1:d + 1 + w] = mask
    eroded = np.ones_like(mask)
    for dy in range(-d, d + 1):
        for dx in range(-d, d + 1):
            eroded &= pad1[d + 1 + dy:d + 1 + dy + h, d + 1 + dx:d + 1 + dx + w]
    return mask - eroded


@pytest.mark.parametrize("ratio", [0.02, 0.1, 0.3])
def test_boundary_matches_definition(ratio):
    rng = np.random.default_rng(1)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(2, 50, 2))
        mask = np.zeros((h, w), np.uint8)
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        mask[max(0, y - 6):y + 6, max(0, x - 9):x + 9] = 1
        mask &= (rng.random((h, w)) < 0.9).astype(np.uint8)
        assert np.array_equal(decode(boundary_rle(encode(mask), ratio)), _reference_boundary(mask, ratio))


def test_dilation_pixels_convention():
    assert dilation_pixels(480, 640) == 16  # round(0.02 * 800)
    assert dilation_pixels(10, 10) == 1  # never below 1
    assert boundary_rle(Crop(np.zeros((0, 0), np.uint8), 0, 0, (5, 5)).to_rle())["counts"] == encode(np.zeros((5, 5)))["counts"]


# -- bad predictions ----------------------------------------------------------------------------------------

def _one(gt):
    image = gt["images"][0]
    ann = next(a for a in gt["annotations"] if a["image_id"] == image["id"])
    rle = segmentation_to_rle(ann["segmentation"], image["height"], image["width"])
    return {"image_id": image["id"], "category_id": ann["category_id"], "segmentation": rle, "score": 0.9}


@pytest.mark.parametrize("change, message", [
    ({"image_id": -5}, "unknown image id"),
    ({"category_id": 100000}, "unknown category id"),
    ({"score": float("nan")}, "'score'"),
    ({"score": "high"}, "'score'"),
    ({"segmentation": {"size": [3, 3], "counts": "9"}}, "does not match image"),
    ({"segmentation": "abc"}, "'segmentation'"),
    ({"bbox": [0, 0, -1, 2]}, "'bbox'"),
])
def test_bad_prediction_fields(gt, change, message):
    with pytest.raises(PredictionError, match=message):
        evaluate_coco(gt, [{**_one(gt), **change}])


@pytest.mark.parametrize("missing", ["image_id", "category_id", "segmentation", "score"])
def test_missing_fields(gt, missing):
    prediction = {k: v for k, v in _one(gt).items() if k != missing}
    with pytest.raises(PredictionError, match=f"'{missing}' missing"):
        evaluate_coco(gt, [prediction])


def test_corrupt_rle_and_inconsistent_boxes(gt):
    good = _one(gt)
    bad = {**good, "segmentation": {**good["segmentation"], "counts": good["segmentation"]["counts"][:-3]}}
    with pytest.raises(PredictionError, match="invalid RLE"):
        evaluate_coco(gt, [bad])
    with pytest.raises(PredictionError, match="first detection has one"):
        evaluate_coco(gt, [{**good, "bbox": [0, 0, 5, 5]}, good])


def test_empty_predictions_score_zero(gt):
    stats = evaluate_coco(gt, [])["segm"].stats
    assert set(stats) == set(STAT_NAMES) and all(v in (0.0, -1.0) for v in stats.values()) and stats["AP"] == 0.0


def test_bad_options(gt):
    with pytest.raises(HfNoisyError, match="unknown IoU type"):
        evaluate_coco(gt, [], ["mask"])
    with pytest.raises(HfNoisyError, match="max_dets"):
        evaluate_coco(gt, [], max_dets=0)


def test_load_predictions_errors(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("[{")
    with pytest.raises(PredictionError, match="not valid JSON"):
        load_predictions(path)
    path.write_text('{"a": 1}')
    with pytest.raises(PredictionError, match="JSON list"):
        load_predictions(path)
    with pytest.raises(PredictionError, match="no such file"):
        load_predictions(tmp_path / "missing.json")
    assert issubclass(PredictionError, HfNoisyError) and issubclass(CocoFormatError, HfNoisyError)


# -- quality ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_quality_of_clean_is_perfect_and_noise_lowers_it(gt):
    clean_report = score_quality(gt, gt)
    assert list(clean_report.groups) == ["all"]
    group = clean_report.groups["all"]
    assert group.mask_AP == 1.0 and group.boundary_AP == 1.0
    assert group.mean_mask_iou == 1.0 and group.mean_boundary_iou == 1.0

    noisy = json.loads(json.dumps(gt))
    for k, ann in enumerate(noisy["annotations"]):
        ann["noise_op"] = "none"
        if k % 2 == 0 and not ann["iscrowd"]:
            h = next(i["height"] for i in gt["images"] if i["id"] == ann["image_id"])
            w = next(i["width"] for i in gt["images"] if i["id"] == ann["image_id"])
            crop = Crop.from_segmentation(ann["segmentation"], h, w)
            shifted = Crop(crop.mask, crop.x0 + min(3, w - crop.x1), crop.y0, crop.image_size)
            ann["segmentation"], ann["noise_op"] = shifted.to_rle(), "localization"
    report = score_quality(gt, noisy)
    assert list(report.groups) == ["all", "localization", "none"]
    assert report.groups["none"].mean_mask_iou == 1.0 and report.groups["none"].mask_AP == 1.0
    moved = report.groups["localization"]
    assert moved.mean_mask_iou < 1.0 and moved.mean_boundary_iou < moved.mean_mask_iou
    assert moved.boundary_AP < 1.0 and moved.paired == moved.annotations
