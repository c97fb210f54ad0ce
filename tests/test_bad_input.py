"""Malformed input: a clear error naming where, exit code 2 from the CLI, and nothing written."""

import copy
import json

import pytest

from hf_noisy.cli import main
from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.noise import SpecError, load_spec

GOOD = {
    "images": [{"id": 1, "height": 20, "width": 30, "file_name": "a.jpg"}],
    "categories": [{"id": 3, "name": "cat", "supercategory": "animal"}],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [2, 2, 10, 10], "area": 100.0,
         "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 30, 20], "area": 600,
         "segmentation": {"size": [20, 30], "counts": [0, 600]}},
    ],
}


def _mutate(path, value):
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()
CASES = [
    ("missing annotations", _mutate(["annotations"], _DELETE), "field 'annotations': missing"),
    ("unknown image", _mutate(["annotations", 0, "image_id"], 99), "annotation 10: field 'image_id': unknown image id 99"),
    ("unknown category", _mutate(["annotations", 0, "category_id"], 4), "annotation 10: field 'category_id': unknown category"),
    ("two-point polygon", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, 5]]), "has 2 points"),
    ("odd coordinates", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, 5, 7]]), "odd number"),
    ("NaN vertex", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, float("nan"), 7, 7]]), "finite numbers"),
    ("out of bounds", _mutate(["annotations", 0, "segmentation"], [[1, 1, 50, 1, 50, 9]]), "outside the 30x20 image"),
    ("empty mask", _mutate(["annotations", 0, "segmentation"], [[3, 3, 3, 3, 3, 3]]), "mask is empty"),
    ("RLE size", _mutate(["annotations", 1, "segmentation", "size"], [20, 31]), "does not match the image"),
    ("RLE runs", _mutate(["annotations", 1, "segmentation", "counts"], [0, 599]), "cover 599 pixels"),
    ("RLE string", _mutate(["annotations", 1, "segmentation", "counts"], "ab{}"), "run-length string"),
    ("duplicate ann id", _mutate(["annotations", 1, "id"], 10), "duplicate annotation id"),
    ("duplicate image id", _mutate(["images"], GOOD["images"] * 2), "duplicate image id"),
    ("iscrowd 2", _mutate(["annotations", 0, "iscrowd"], 2), "must be 0 or 1"),
    ("negative bbox", _mutate(["annotations", 0, "bbox"], [1, 1, -3, 4]), "width and height must be >= 0"),
    ("zero height image", _mutate(["images", 0, "height"], 0), "positive integer"),
    ("top level list", [GOOD], "must be a JSON object"),
]


@pytest.mark.parametrize("name, data, message", CASES, ids=[c[0] for c in CASES])
def test_malformed_coco_is_rejected_and_nothing_written(tmp_path, capsys, name, data, message):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    assert main(["noise", str(source), "-o", str(out), "--spec", "hard", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(source) in err and "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temp file left behind either
    with pytest.raises(CocoFormatError, match=message.split(": ")[-1][:20]):
        load_coco(source)


def test_invalid_json_names_line_and_column(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text('{"images": [}')
    assert main(["noise", str(source), "-o", str(tmp_path / "o.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_good_input_passes(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(GOOD))
    assert main(["noise", str(source), "-o", str(tmp_path / "o.json"), "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "o.json").read_text())["annotations"]) == 2


def test_empty_masks_can_be_allowed(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_mutate(["annotations", 0, "segmentation"], [[3, 3, 3, 3, 3, 3]])))
    out = tmp_path / "o.json"
    assert main(["noise", str(source), "-o", str(out), "--allow-empty-masks", "--no-progress"]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("spatial: [{op: scale, prob: 0.6, kernel: 3}, {op: localization, prob: 0.6, sigma: 2}]", "add up to 1.2"),
        ("spatial: [{op: scale, prob: 0.2, kernel: 4}]", "odd integer"),
        ("spatial: [{op: blur, prob: 0.2}]", "must be one of"),
        ("class_noise: {kind: symmetric, rate: 1.5}", "in [0, 1]"),
        ("version: 2", "unsupported spec version"),
        ("sead: 3", "unknown key"),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(path)
