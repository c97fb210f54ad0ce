"""The engine on real COCO: valid output, rates per op, provenance, reproducibility across runs and processes."""

import json
import pickle

import numpy as np
import pytest
from pycocotools.coco import COCO

from hf_noisy.coco import CocoFormatError, dumps_coco, validate_coco
from hf_noisy.noise import PRESETS, NoiseSpec, SpatialOp, apply_noise, load_spec, noise_file, noise_to_json

LEVEL_PROB = {"easy": 0.2, "medium": 0.25, "hard": 0.3}
LEVEL_CLASS = {"easy": 0.2, "medium": 0.3, "hard": 0.4}


@pytest.fixture(scope="module")
def train(coco_tiny):
    return coco_tiny / "annotations/instances_train2017.json"


def _within(count, n, p, sigmas=4.5):
    return abs(count / n - p) <= sigmas * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("level", ["easy", "medium", "hard"])
def test_presets_give_valid_coco_with_expected_rates(train, tmp_path, level):
    out = tmp_path / f"{level}.json"
    summary = noise_file(train, out, PRESETS[level])
    clean = json.loads(train.read_text())
    noisy = json.loads(out.read_text())
    coco = COCO(str(out))  # round-trips through pycocotools
    for ann in coco.dataset["annotations"]:
        assert coco.annToMask(ann).shape == (coco.imgs[ann["image_id"]]["height"], coco.imgs[ann["image_id"]]["width"])
    assert [a["id"] for a in noisy["annotations"]] == [a["id"] for a in clean["annotations"]]
    eligible = [a for a in noisy["annotations"] if not a["iscrowd"]]
    n = len(eligible)
    ops = {op: sum(a["noise_op"] == op for a in eligible) for op in ("dilate", "erode", "localization", "approximation")}
    p = LEVEL_PROB[level]
    assert _within(ops["dilate"] + ops["erode"], n, p)
    assert _within(ops["localization"], n, p) and _within(ops["approximation"], n, p)
    assert _within(ops["dilate"], ops["dilate"] + ops["erode"], 0.5)
    assert _within(sum(a["class_flipped"] for a in eligible), n, LEVEL_CLASS[level])
    by_id = {a["id"]: a for a in clean["annotations"]}
    params = {op.op: op.param for op in PRESETS[level].spatial}
    for ann in noisy["annotations"]:
        original = by_id[ann["id"]]
        assert ann["original_category_id"] == original["category_id"]
        assert ann["class_flipped"] == (ann["category_id"] != original["category_id"])
        if ann["noise_op"] == "none":
            assert ann["segmentation"] == original["segmentation"] and ann["bbox"] == original["bbox"]
            assert ann["noise_param"] is None
        else:
            assert isinstance(ann["segmentation"]["counts"], str)
            spec_op = "scale" if ann["noise_op"] in ("dilate", "erode") else ann["noise_op"]
            assert ann["noise_param"] == params[spec_op]
    for crowd in (a for a in noisy["annotations"] if a["iscrowd"]):
        assert crowd["noise_op"] == "none" and not crowd["class_flipped"]
    info = noisy["info"]["hf_noisy"]
    assert info["spec_sha256"] == PRESETS[level].sha256 and len(info["input_sha256"]) == 64
    assert info["summary"] == summary.to_dict()


def test_noisy_bbox_and_area_describe_the_noisy_mask(train, tmp_path):
    out = tmp_path / "hard.json"
    noise_file(train, out, PRESETS["hard"])
    coco = COCO(str(out))
    changed = [a for a in coco.dataset["annotations"] if a["noise_op"] != "none"]
    assert changed
    for ann in changed:
        mask = coco.annToMask(ann)
        assert ann["area"] == int(mask.sum())
        if ann["area"]:
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def test_byte_identical_across_runs_and_num_proc(train, tmp_path):
    outputs = []
    for i, num_proc in enumerate([1, 2, 1]):
        path = tmp_path / f"out{i}.json"
        noise_file(train, path, PRESETS["hard"], num_proc=num_proc)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    other = tmp_path / "seed2.json"
    noise_file(train, other, PRESETS["hard"].with_seed(2))
    assert other.read_bytes() != outputs[0]


def test_order_does_not_matter(train):
    data = json.loads(train.read_text())
    forward = apply_noise(data, PRESETS["medium"]).data["annotations"]
    shuffled = dict(data, annotations=list(reversed(data["annotations"])))
    backward = apply_noise(shuffled, PRESETS["medium"]).data["annotations"]
    assert forward == list(reversed(backward))
    assert data["annotations"][0].get("noise_op") is None  # the input is not modified


def test_empty_masks_keep_or_drop(train):
    data = json.loads(train.read_text())
    keep = NoiseSpec(spatial=(SpatialOp("erode", 1.0, 31),), empty_masks="keep")
    kept = apply_noise(data, keep)
    emptied = [a for a in kept.data["annotations"] if a["noise_op"] == "erode" and a["area"] == 0]
    assert emptied and all(a["bbox"] == [0.0, 0.0, 0.0, 0.0] for a in emptied)
    assert kept.summary.emptied == len(emptied)
    dropped = apply_noise(data, NoiseSpec(spatial=keep.spatial, empty_masks="drop"))
    assert len(dropped.data["annotations"]) == len(data["annotations"]) - len(emptied)
    assert dropped.summary.dropped == len(emptied)


def test_keep_clean_geometry_option(train):
    data = json.loads(train.read_text())
    spec = NoiseSpec(spatial=(SpatialOp("dilate", 1.0, 5),), recompute_geometry=False)
    for clean, noisy in zip(data["annotations"], apply_noise(data, spec).data["annotations"]):
        assert noisy["bbox"] == clean["bbox"] and noisy["area"] == clean["area"]


def test_spec_file_round_trip(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(PRESETS["hard"].to_yaml())
    spec = load_spec(path)
    assert spec == PRESETS["hard"] and spec.sha256 == PRESETS["hard"].sha256
    assert load_spec("hard", seed=5).seed == 5


@pytest.mark.parametrize("num_proc", [1, 2])
def test_json_output_equals_the_dict_result(train, num_proc):
    """noise_to_json (workers serialise their own annotations) writes exactly dumps_coco(apply_noise(...).data)."""
    data = json.loads(train.read_text())
    spec = NoiseSpec(spatial=PRESETS["hard"].spatial, class_noise=PRESETS["hard"].class_noise, empty_masks="drop")
    result = apply_noise(data, spec, num_proc=num_proc)
    text, summary = noise_to_json(data, spec, num_proc=num_proc)
    assert text == dumps_coco(result.data)
    assert summary == result.summary and summary.dropped > 0  # chunk summaries add up, drops included
    assert summary.annotations == len(data["annotations"])


@pytest.mark.parametrize("num_proc", [1, 2])
def test_first_problem_is_reported_whatever_the_workers(train, num_proc):
    """An empty mask early on and a bad annotation in a later chunk: the bad annotation is the file's first
    problem (validation comes before noising), as validate_coco says it, naming the source."""
    data = json.loads(train.read_text())
    data["annotations"] = data["annotations"] * 8  # several chunks per worker
    data["annotations"] = [dict(a, id=i) for i, a in enumerate(data["annotations"])]
    data["annotations"][3]["segmentation"] = [[-1, -1, -1, -1, -1, -1]]  # empty: noising would fail here first
    data["annotations"][-5]["category_id"] = 999
    with pytest.raises(CocoFormatError) as caught:
        apply_noise(data, PRESETS["hard"], num_proc=num_proc, source="train.json")
    with pytest.raises(CocoFormatError) as expected:
        validate_coco(data, source="train.json", check_masks=False)
    assert str(caught.value) == str(expected.value)
    assert str(caught.value).startswith(f"train.json: annotation {len(data['annotations']) - 5}: field 'category_id'")
    data["annotations"][-5]["category_id"] = data["annotations"][0]["category_id"]
    with pytest.raises(CocoFormatError, match="train.json: annotation 3: field 'segmentation': the mask is empty"):
        apply_noise(data, PRESETS["hard"], num_proc=num_proc, source="train.json")


def test_format_errors_survive_pickling():
    err = CocoFormatError("bad", source="a.json", where="annotation 5", field="bbox")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == "a.json: annotation 5: field 'bbox': bad" and back.field == "bbox"


def test_spawn_workers_give_the_same_bytes(train, monkeypatch):
    """Where fork is missing (macOS and Windows default to spawn), workers get the job by pickling."""
    import multiprocessing

    data = json.loads(train.read_text())
    data["annotations"] = data["annotations"][:120]
    expected, _ = noise_to_json(data, PRESETS["hard"])
    methods = []
    real_get_context = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setattr(multiprocessing, "get_context", lambda method: methods.append(method) or real_get_context(method))
    spawned, summary = noise_to_json(data, PRESETS["hard"], num_proc=2)
    assert methods == ["spawn"]
    assert spawned == expected and summary.annotations == 120
