"""hf-noisy evaluate / quality: reference numbers as JSON, readable tables, errors as exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_noisy.cli import main
from hf_noisy.metrics import STAT_NAMES


@pytest.fixture(scope="module")
def paths(shared_dir, coco_tiny):
    folder = shared_dir / "data" / "vectors"
    return (coco_tiny / "annotations" / "instances_val2017.json", folder / "eval_val2017_detections.json",
            json.loads((folder / "eval_val2017_expected.json").read_text()))


def test_evaluate_json_matches_references(paths, capsys):
    gt, detections, expected = paths
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(detections), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["segm", "bbox", "boundary"]
    for iou_type, tol in (("segm", 1e-9), ("bbox", 1e-9), ("boundary", 1e-6)):
        assert list(out[iou_type]) == list(STAT_NAMES)
        np.testing.assert_allclose(list(out[iou_type].values()), expected[iou_type], rtol=0, atol=tol)


def test_evaluate_table_and_iou_types(paths, capsys):
    gt, detections, expected = paths
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(detections), "--iou-types", "boundary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(STAT_NAMES)
    assert lines[1].split()[0] == "boundary" and float(lines[1].split()[1]) == round(expected["boundary"][0], 3)
    assert not any(line.startswith("    segm") for line in lines)


@pytest.mark.parametrize("content, message", [
    ("[{", "not valid JSON"),
    ("[]", None),
    ('[{"image_id": 1}]', "missing"),
    ('{"x": 1}', "JSON list"),
])
def test_evaluate_bad_results_files(paths, tmp_path, capsys, content, message):
    gt, _, _ = paths
    results = tmp_path / "results.json"
    results.write_text(content)
    code = main(["evaluate", "--gt", str(gt), "--predictions", str(results), "--json"])
    captured = capsys.readouterr()
    if message is None:  # documented: no detections score 0
        assert code == 0 and json.loads(captured.out)["segm"]["AP"] == 0.0
    else:
        assert code == 2 and captured.err.startswith("hf-noisy evaluate: error:") and message in captured.err
        assert "Traceback" not in captured.err


def test_evaluate_unknown_iou_type(paths, capsys):
    gt, detections, _ = paths
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(detections), "--iou-types", "mask"]) == 2
    assert "unknown IoU type" in capsys.readouterr().err


def test_quality_breaks_down_by_op(paths, tmp_path, capsys):
    gt, _, _ = paths
    data = json.loads(gt.read_text())
    for k, ann in enumerate(data["annotations"]):
        ann["noise_op"] = "flip" if k % 3 == 0 else "none"
        if k % 3 == 0:
            ann["class_flipped"], ann["original_category_id"] = True, ann["category_id"]
            ann["category_id"] = next(c["id"] for c in data["categories"] if c["id"] != ann["category_id"])
    noisy = tmp_path / "noisy.json"
    noisy.write_text(json.dumps(data))
    assert main(["quality", "--clean", str(gt), "--noisy", str(noisy), "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert list(groups) == ["all", "flip", "none"]
    assert groups["flip"]["class_flipped"] == groups["flip"]["annotations"] > 0
    assert groups["flip"]["mean_mask_iou"] == 1.0 and groups["flip"]["mask_AP"] < 0.05
    assert groups["none"]["mask_AP"] == 1.0 and groups["none"]["class_flipped"] == 0
    assert main(["quality", "--clean", str(gt), "--noisy", str(noisy)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "group"
