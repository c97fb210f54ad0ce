"""LVIS federated evaluation against the references, computed here on lvis-tiny: the ``lvis`` package's
``LVISEval`` (segm, bbox) and boundary-iou-api's ``lvis_instance_api`` (boundary), through the core, the CLI and
the ``evaluate`` module; and the rules one by one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.cli import main
from hf_noisy.coco import CocoFormatError, load_coco, validate_coco
from hf_noisy.errors import HfNoisyError
from hf_noisy.metrics import LVIS_STAT_NAMES, STAT_NAMES, evaluate_coco, evaluate_lvis, is_lvis

from lvis_reference import LVIS_KEYS, boundary_iou_api_path, make_detections, reference_numbers

TOL = {"segm": 1e-9, "bbox": 1e-9, "boundary": 1e-6}
MODULE = str(Path(__file__).resolve().parents[1] / "eval" / "mask_boundary_ap")


def _assert_matches(stats: dict, expected: dict, tol: float, names=LVIS_STAT_NAMES, label: str = "") -> None:
    """Our stats (LVIS_STAT_NAMES) against the reference results dict (LVIS_KEYS order)."""
    assert list(expected) == list(LVIS_KEYS)
    got = [stats[name] for name in LVIS_STAT_NAMES]
    want = list(expected.values())
    keep = [k for k, name in enumerate(LVIS_STAT_NAMES) if name in names]
    np.testing.assert_allclose([got[k] for k in keep], [want[k] for k in keep], rtol=0, atol=tol, err_msg=label)


@pytest.fixture(scope="module")
def case(shared_dir):
    """lvis-tiny, detections made from it, and the reference numbers (computed once per module)."""
    pytest.importorskip("lvis", reason="the lvis package (test extra) is the reference")
    if not (boundary_iou_api_path() / "boundary_iou").is_dir():
        pytest.skip(f"boundary-iou-api not found at {boundary_iou_api_path()}")
    path = shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json"
    gt = load_coco(path)
    detections = make_detections(gt)
    return path, gt, detections, reference_numbers(str(path), detections)


@pytest.fixture(scope="module")
def edge_case(case, tmp_path_factory):
    """Areas exactly on the range edges (32², 96²): some ground truths, and detections with 32x32 / 96x96 boxes."""
    path, gt, detections, _ = case
    gt = copy.deepcopy(gt)
    for k, ann in enumerate(gt["annotations"]):
        if k % 7 < 2:
            ann["area"] = [1024.0, 9216.0][k % 7]
    detections = copy.deepcopy(detections)
    for k, det in enumerate(detections):
        if k % 5 < 2:
            det["bbox"] = det["bbox"][:2] + [[32.0, 32.0], [96.0, 96.0]][k % 5]
    edge_path = tmp_path_factory.mktemp("lvis") / "lvis_edge.json"
    edge_path.write_text(json.dumps(gt))
    return edge_path, gt, detections, reference_numbers(str(edge_path), detections, ("bbox", "boundary"))


@pytest.mark.slow
def test_detections_exercise_every_rule(case):
    """The parity detections hold every kind the rules treat differently (else the parity would prove less)."""
    _, gt, detections, _ = case
    positive, negative, not_exhaustive = {}, {}, {}
    for image in gt["images"]:
        negative[image["id"]] = set(image["neg_category_ids"])
        not_exhaustive[image["id"]] = set(image["not_exhaustive_category_ids"])
        positive[image["id"]] = set()
    for ann in gt["annotations"]:
        positive[ann["image_id"]].add(ann["category_id"])
    kinds = {"negative": 0, "unlisted": 0, "not_exhaustive": 0}
    for det in detections:
        image_id, category_id = det["image_id"], det["category_id"]
        kinds["negative"] += category_id in negative[image_id]
        kinds["unlisted"] += category_id not in positive[image_id] | negative[image_id]
        kinds["not_exhaustive"] += category_id in not_exhaustive[image_id]
    assert all(count >= 5 for count in kinds.values()), kinds
    per_image = np.bincount([det["image_id"] for det in detections])
    assert per_image.max() > 300
    scores = [det["score"] for det in detections]
    assert len(set(scores)) < len(scores)  # ties, whose order the rules fix


@pytest.mark.slow
def test_core_matches_references(case):
    _, gt, detections, expected = case
    results = evaluate_lvis(gt, detections)
    assert list(results) == ["segm", "bbox", "boundary"]
    for iou_type, tol in TOL.items():
        result = results[iou_type]
        assert result.rules == "lvis" and list(result.stats) == list(LVIS_STAT_NAMES)
        assert result.precision.shape == (10, 101, len(gt["categories"]), 4, 1)
        _assert_matches(result.stats, expected[iou_type], tol, label=iou_type)
    # the numbers are not trivial, and the frequency groups differ from each other
    segm = results["segm"]
    assert 0 < segm.stats["AP"] < 1 and len({segm.stats["APr"], segm.stats["APc"], segm.stats["APf"]}) == 3
    # per category: -1 exactly where there is no ground truth, and the defined ones average to AP
    with_gt = {ann["category_id"] for ann in gt["annotations"]}
    assert {c for c, v in segm.per_category.items() if v > -1} <= with_gt
    assert all(segm.per_category[c] == -1.0 for c in set(segm.per_category) - with_gt)
    assert np.isclose(np.mean([v for v in segm.per_category.values() if v > -1]), segm.stats["AP"])


@pytest.mark.slow
def test_area_range_edges(edge_case):
    """Areas of exactly 32² / 96² fall in both neighbouring ranges, as in the lvis package (the rule is the
    same for every IoU type: bbox checks it).
    boundary-iou-api's LVIS port puts them in the upper range only: its area-range numbers differ there (the
    documented difference), every other Boundary number still matches."""
    _, gt, detections, expected = edge_case
    results = evaluate_lvis(gt, detections, ("bbox", "boundary"))
    _assert_matches(results["bbox"].stats, expected["bbox"], TOL["bbox"], label="bbox")
    area_free = [name for name in LVIS_STAT_NAMES if name[-1] not in "sml"]
    _assert_matches(results["boundary"].stats, expected["boundary"], TOL["boundary"], area_free, "boundary")
    boundary_ranges = [name for name in LVIS_STAT_NAMES if name not in area_free]
    assert any(abs(results["boundary"].stats[name] - expected["boundary"][LVIS_KEYS[LVIS_STAT_NAMES.index(name)]])
               > 1e-3 for name in boundary_ranges)


@pytest.mark.slow
def test_rules_one_by_one(case):
    """Each federated rule moves the number it should (and COCO rules give other numbers)."""
    _, gt, detections, _ = case

    def bbox(dets, **kwargs):
        return evaluate_lvis(gt, dets, ["bbox"], **kwargs)["bbox"].stats

    listed = {image["id"]: set(image["neg_category_ids"]) for image in gt["images"]}
    for ann in gt["annotations"]:
        listed[ann["image_id"]].add(ann["category_id"])
    negative = {image["id"]: set(image["neg_category_ids"]) for image in gt["images"]}
    counts = np.bincount([d["image_id"] for d in detections])
    crowded = int(np.argmax(counts))
    assert counts[crowded] > 300
    # away from the crowded image (whose 300 cut also sees unlisted detections):
    others = [d for d in detections if d["image_id"] != crowded]
    base = bbox(others)
    # detections of unlisted categories are dropped: removing them changes nothing ...
    only_listed = [d for d in others if d["category_id"] in listed[d["image_id"]]]
    assert len(only_listed) < len(others) and bbox(only_listed) == base
    # ... while a negative category's detections are false positives: scoring them highest lowers AP
    boosted = [{**d, "score": 1.0} for d in others if d["category_id"] in negative[d["image_id"]]]
    assert boosted and bbox(boosted + others)["AP"] < base["AP"]
    # the cut keeps the 300 best detections of an image over all its categories
    full = bbox(detections)
    on_crowded = [d for d in detections if d["image_id"] == crowded]
    worst = {id(d) for d in sorted(on_crowded, key=lambda d: -d["score"])[300:]}
    assert bbox([d for d in detections if id(d) not in worst]) == full
    assert bbox(detections, max_dets=20)["AR"] < full["AR"]
    # COCO rules on the same files count every detection
    coco = evaluate_coco(gt, detections, ["bbox"], max_dets=300)["bbox"].stats
    assert list(coco) == list(STAT_NAMES) and coco["AP"] != full["AP"]


@pytest.mark.slow
def test_not_exhaustive_detections_are_not_false_positives(case):
    _, gt, detections, _ = case
    image = next(i for i in gt["images"] if i["not_exhaustive_category_ids"])
    category = image["not_exhaustive_category_ids"][0]
    far_off = {"image_id": image["id"], "category_id": category, "score": 1.0,
               "segmentation": {"size": [image["height"], image["width"]], "counts": _corner(image)}}
    base = evaluate_lvis(gt, detections, ["segm"])["segm"].per_category[category]
    assert evaluate_lvis(gt, [far_off] + detections, ["segm"])["segm"].per_category[category] == base
    marked = copy.deepcopy(gt)
    next(i for i in marked["images"] if i["id"] == image["id"])["not_exhaustive_category_ids"] = []
    assert evaluate_lvis(marked, [far_off] + detections, ["segm"])["segm"].per_category[category] < base


def _corner(image: dict) -> str:
    from hf_noisy.masks import encode

    mask = np.zeros((image["height"], image["width"]), np.uint8)
    mask[:3, :3] = 1
    return encode(mask)["counts"]


@pytest.mark.slow
def test_is_lvis_and_validation(case, coco_tiny):
    _, gt, _, _ = case
    assert is_lvis(gt)
    coco = load_coco(coco_tiny / "annotations" / "instances_val2017.json")
    assert not is_lvis(coco)
    assert is_lvis({**coco, "categories": [{**c, "frequency": "f"} for c in coco["categories"]]})
    bad = copy.deepcopy(gt)
    bad["images"][0]["neg_category_ids"] = [123456]
    with pytest.raises(CocoFormatError, match="neg_category_ids"):
        validate_coco(bad, check_masks=False)
    bad = copy.deepcopy(gt)
    bad["categories"][0]["frequency"] = "x"
    with pytest.raises(CocoFormatError, match="frequency"):
        validate_coco(bad, check_masks=False)
    with pytest.raises(HfNoisyError, match="max_dets"):
        evaluate_lvis(gt, [], max_dets=0)
    # LVIS v1 images have no file_name (only coco_url); annotations have no iscrowd: still a valid file
    v1 = copy.deepcopy(gt)
    for image in v1["images"]:
        del image["file_name"]
    assert not any("iscrowd" in ann for ann in v1["annotations"])
    validate_coco(v1, check_masks=False)
    stats = evaluate_lvis(v1, [], ["bbox"])["bbox"].stats  # no detections: 0 where defined, as COCO
    assert stats["AP"] == 0.0 and stats["AR"] == 0.0 and stats["APr"] in (0.0, -1.0)


@pytest.mark.slow
def test_cli_detects_lvis_and_matches(case, tmp_path, capsys):
    path, _, detections, expected = case
    results = tmp_path / "results.json"
    results.write_text(json.dumps(detections))
    assert main(["evaluate", "--gt", str(path), "--predictions", str(results), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["segm", "bbox", "boundary"]
    for iou_type, tol in TOL.items():
        assert list(out[iou_type]) == list(LVIS_STAT_NAMES)
        _assert_matches(out[iou_type], expected[iou_type], tol, label=iou_type)
    assert main(["evaluate", "--gt", str(path), "--predictions", str(results), "--iou-types", "segm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["AP"])
    assert header.split() == list(LVIS_STAT_NAMES)
    assert main(["evaluate", "--gt", str(path), "--predictions", str(results), "--iou-types", "segm", "--json",
                 "--no-lvis"]) == 0
    assert list(json.loads(capsys.readouterr().out)["segm"]) == list(STAT_NAMES)


def test_cli_forces_lvis_on_coco_file(coco_tiny, shared_dir, capsys):
    gt = coco_tiny / "annotations" / "instances_val2017.json"
    detections = shared_dir / "data" / "vectors" / "eval_val2017_detections.json"
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(detections), "--iou-types", "segm", "--json",
                 "--lvis"]) == 0
    stats = json.loads(capsys.readouterr().out)["segm"]
    assert list(stats) == list(LVIS_STAT_NAMES) and stats["APr"] == stats["APc"] == stats["APf"] == -1.0
    assert 0 < stats["AP"] < 1


@pytest.mark.slow
def test_evaluate_module_lvis(case):
    evaluate = pytest.importorskip("evaluate")
    _, gt, detections, expected = case
    predictions, references = [], []
    for image in gt["images"]:
        dets = [d for d in detections if d["image_id"] == image["id"]]
        predictions.append({"masks": [d["segmentation"] for d in dets], "scores": [d["score"] for d in dets],
                            "labels": [d["category_id"] for d in dets], "boxes": [d["bbox"] for d in dets]})
        references.append({"image_id": image["id"], "height": image["height"], "width": image["width"],
                           "neg_category_ids": image["neg_category_ids"],
                           "not_exhaustive_category_ids": image["not_exhaustive_category_ids"],
                           "annotations": [a for a in gt["annotations"] if a["image_id"] == image["id"]]})
    metric = evaluate.load(MODULE, "lvis")
    result = metric.compute(predictions=predictions, references=references, categories=gt["categories"])
    for iou_type, tol in TOL.items():
        _assert_matches({name: result[f"{iou_type}_{name}"] for name in LVIS_STAT_NAMES}, expected[iou_type], tol,
                        label=iou_type)
    # automatic rules from the references; without categories the frequency groups are undefined
    metric = evaluate.load(MODULE)
    auto = metric.compute(predictions=predictions, references=references, iou_types=["bbox"])
    assert auto["bbox_AP"] == pytest.approx(expected["bbox"]["AP"], abs=1e-9) and auto["bbox_APr"] == -1.0
    coco = metric.compute(predictions=predictions, references=references, iou_types=["bbox"], rules="coco")
    assert "bbox_AR100" in coco and coco["bbox_AP"] != auto["bbox_AP"]
    with pytest.raises(HfNoisyError, match="rules"):
        metric.compute(predictions=predictions[:1], references=references[:1], rules="federated")
