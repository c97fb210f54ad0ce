"""The evaluate module gives the reference numbers from per-image inputs, and clear errors on bad ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.metrics import STAT_NAMES, PredictionError, evaluate_module_path

REPO = Path(__file__).resolve().parents[1]
MODULE = evaluate_module_path()


@pytest.fixture(scope="module")
def per_image(shared_dir):
    evaluate = pytest.importorskip("evaluate")
    gt = load_coco(shared_dir / "data" / "coco-tiny" / "annotations" / "instances_val2017.json")
    folder = shared_dir / "data" / "vectors"
    detections = json.loads((folder / "eval_val2017_detections.json").read_text())
    expected = json.loads((folder / "eval_val2017_expected.json").read_text())
    predictions, references = [], []
    for image in gt["images"]:
        dets = [d for d in detections if d["image_id"] == image["id"]]
        predictions.append({"masks": [d["segmentation"] for d in dets], "scores": [d["score"] for d in dets],
                            "labels": [d["category_id"] for d in dets], "boxes": [d["bbox"] for d in dets],
                            "image_size": [image["height"], image["width"]]})
        references.append({"image_id": image["id"], "height": image["height"], "width": image["width"],
                           "annotations": [a for a in gt["annotations"] if a["image_id"] == image["id"]]})
    return evaluate, predictions, references, expected


def test_module_matches_references(per_image):
    evaluate, predictions, references, expected = per_image
    metric = evaluate.load(MODULE)
    for prediction, reference in zip(predictions, references):
        metric.add_batch(predictions=[prediction], references=[reference])
    result = metric.compute()
    assert len(result) == 3 * len(STAT_NAMES)
    for iou_type, tol in (("segm", 1e-9), ("bbox", 1e-9), ("boundary", 1e-6)):
        got = [result[f"{iou_type}_{name}"] for name in STAT_NAMES]
        np.testing.assert_allclose(got, expected[iou_type], rtol=0, atol=tol, err_msg=iou_type)


def test_module_options(per_image):
    evaluate, predictions, references, expected = per_image
    metric = evaluate.load(MODULE)
    result = metric.compute(predictions=predictions, references=references, iou_types=["boundary"],
                            per_category=True, dilation_ratio=0.05)
    assert "segm_AP" not in result and "boundary_AP" in result
    per_category = [v for k, v in result.items() if k.startswith("boundary_AP_cat") and v > -1]
    assert per_category and np.isclose(np.mean(per_category), result["boundary_AP"])
    assert result["boundary_AP"] != pytest.approx(expected["boundary"][0])  # a wider boundary changes the score


@pytest.mark.slow
def test_module_bad_inputs(per_image):
    evaluate, predictions, references, _ = per_image
    metric = evaluate.load(MODULE)
    wrong_size = {**predictions[0], "image_size": [1, 1]}
    with pytest.raises(PredictionError, match="image_size"):
        metric.compute(predictions=[wrong_size], references=references[:1])
    short = {**predictions[0], "scores": predictions[0]["scores"][:-1]}
    with pytest.raises(PredictionError, match="same length"):
        metric.compute(predictions=[short], references=references[:1])
    no_height = {k: v for k, v in references[0].items() if k != "height"}
    with pytest.raises(CocoFormatError, match="height"):
        metric.compute(predictions=[{k: v for k, v in predictions[0].items() if k != "image_size"}],
                       references=[no_height])
    nan = {**predictions[0], "scores": [float("nan")] * len(predictions[0]["scores"])}
    with pytest.raises(PredictionError, match="score"):
        metric.compute(predictions=[nan], references=references[:1])


def test_a_bad_batch_fails_at_add_batch(per_image):
    """Validation happens when images are added (naming the image and the field), not at compute."""
    evaluate, predictions, references, _ = per_image
    metric = evaluate.load(MODULE)
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    bad = {**predictions[2], "labels": ["cat"] * len(predictions[2]["labels"])}
    with pytest.raises(PredictionError, match=r"image #1 of the batch.*field 'labels': element 0"):
        metric.add_batch(predictions=[predictions[3], bad], references=[references[3], references[2]])
    no_width = {k: v for k, v in references[2].items() if k != "width"}
    with pytest.raises(CocoFormatError, match="width"):
        metric.add(prediction={k: v for k, v in predictions[2].items() if k != "image_size"}, reference=no_width)
    metric.add_batch(predictions=predictions[2:], references=references[2:])  # the good images still count
    assert metric.compute(iou_types=["segm"])["segm_AP"] > 0.3


def test_the_published_space_script_is_the_packaged_class():
    """One source of truth: the Space folder's script (what push-metric uploads) loads, through evaluate, the
    packaged module's class, not a copy of it."""
    import evaluate

    from hf_noisy.metrics.mask_boundary_ap import MaskBoundaryAP

    packaged = Path(MODULE)
    assert packaged.name == "mask_boundary_ap.py" and packaged.parent == REPO / "hf_noisy" / "metrics"
    space = evaluate.load(str(REPO / "eval" / "mask_boundary_ap"))
    assert type(space) is MaskBoundaryAP


_INSTALLED_CHECK = """
import json, os, sys
import evaluate
import hf_noisy
from hf_noisy.metrics import evaluate_module_path
from pycocotools import mask as mask_utils
import numpy as np

lib = os.path.realpath(sys.argv[1])
path = evaluate_module_path()
assert os.path.realpath(hf_noisy.__file__).startswith(lib + os.sep), hf_noisy.__file__
assert os.path.realpath(path).startswith(os.path.join(lib, "hf_noisy", "metrics") + os.sep), path
square = np.zeros((20, 20), np.uint8, order="F")
square[4:14, 5:15] = 1
rle = mask_utils.encode(square)
rle["counts"] = rle["counts"].decode()
reference = {"image_id": 1, "height": 20, "width": 20,
             "annotations": [{"id": 1, "category_id": 1, "segmentation": rle, "iscrowd": 0}]}
prediction = {"masks": [rle], "scores": [0.9], "labels": [1]}
metric = evaluate.load(path)
metric.add_batch(predictions=[prediction], references=[reference])
print(json.dumps({"cwd": os.getcwd(), "result": metric.compute(iou_types=["segm", "boundary"])}))
"""


@pytest.mark.slow  # starts setuptools and a Python process
def test_an_installed_package_loads_its_evaluate_module_from_any_folder(tmp_path):
    """hf-noisy as a wheel lays it out (setuptools' build_py: the packages and package data that pyproject.toml
    declares, no source checkout, no eval/ folder) loads its evaluate module from an unrelated working folder."""
    pytest.importorskip("evaluate")
    import importlib.util

    lib = tmp_path / "lib"
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "build_py",
                    "--build-lib", str(lib)], cwd=REPO, check=True, capture_output=True, timeout=300)
    assert (lib / "hf_noisy" / "metrics" / "mask_boundary_ap.py").read_bytes() == Path(MODULE).read_bytes()
    assert not (lib / "eval").exists()
    codec = Path(importlib.util.find_spec("hf_noisy._rle").origin)  # the compiled part of the wheel
    shutil.copy(codec, lib / "hf_noisy" / codec.name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib), "HF_HOME": str(tmp_path / "hf-home")}
    run = subprocess.run([sys.executable, "-c", _INSTALLED_CHECK, str(lib)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["cwd"] == str(elsewhere) and out["result"]["segm_AP"] == 1.0 and out["result"]["boundary_AP"] == 1.0
