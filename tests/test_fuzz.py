"""Fuzzing the entry points that read what users give: noise specs, COCO files, results files, build arguments.

The property everywhere: a result, or hf-noisy's own error type with a one-line message; never another
exception (a ``TypeError`` or ``KeyError`` from deep inside is a bug, and so is a valid-looking input that
validation passes and a later step then crashes on). Examples are few and derandomized, so CI is bounded and
reproducible; a failure prints the smallest example hypothesis found. ``HF_NOISY_FUZZ_EXAMPLES=2000`` runs a
deeper, random hunt locally.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hf_noisy.coco import CocoFormatError, parse_coco_bytes, validate_coco  # noqa: E402
from hf_noisy.errors import HfNoisyError  # noqa: E402
from hf_noisy.masks import Crop  # noqa: E402
from hf_noisy.metrics import PredictionError, evaluate_coco  # noqa: E402
from hf_noisy.metrics.predictions import load_predictions  # noqa: E402
from hf_noisy.noise import PRESETS, NoiseSpec, SpecError, apply_noise, load_spec  # noqa: E402
from hf_noisy.noise.spec import SPATIAL_OPS  # noqa: E402

#: CI runs a fixed, small set of examples; HF_NOISY_FUZZ_EXAMPLES=N runs N random ones per test (a deeper hunt).
_DEEP = int(os.environ.get("HF_NOISY_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_DEEP or 60, deadline=None, derandomize=not _DEEP, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _one_line(err: Exception) -> Exception:
    message = str(err)
    assert message and "\n" not in message and len(message) < 1000, repr(message)
    return err


# -- values a JSON/YAML file can hold ---------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6))
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
numbers = st.one_of(st.integers(-2, 9), st.floats(-2, 20), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(2**60, 2**200), scalars)


# -- noise specs ------------------------------------------------------------------------------------------------
spatial_entries = st.fixed_dictionaries(
    {"op": st.sampled_from(SPATIAL_OPS + ("blur",)) | anything},
    optional={"prob": numbers, "kernel": numbers, "sigma": numbers, "tolerance": numbers,
              "holes": st.sampled_from(["fill", "keep", "none"]) | anything, "extra": anything},
)
class_noises = st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["symmetric", "asymmetric", "matrix", "other"]) | anything,
    "rate": numbers, "matrix": st.sampled_from(["m.json", ""]) | anything, "extra": anything})
spec_dicts = st.fixed_dictionaries({}, optional={
    "version": st.sampled_from([1, 2]) | anything, "seed": numbers, "class_noise": class_noises | anything,
    "spatial": st.lists(spatial_entries | anything, max_size=3) | anything,
    "include_crowd": st.booleans() | anything, "empty_masks": st.sampled_from(["keep", "drop"]) | anything,
    "recompute_geometry": st.booleans() | anything, "sead": anything})


@pytest.mark.slow
@FUZZ
@given(spec_dicts | anything)
def test_spec_from_any_mapping(data):
    try:
        spec = NoiseSpec.from_dict(data)
    except SpecError as err:
        _one_line(err)
        return
    assert NoiseSpec.from_dict(json.loads(spec.to_json())) == spec  # what loads, round-trips
    assert 0 <= spec.seed < 2**64 and all(math.isfinite(op.param) for op in spec.spatial)


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 spec_dicts.map(lambda d: json.dumps(d, allow_nan=True).encode())))
def test_spec_file_with_any_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_bytes(raw)
        try:
            spec = load_spec(path)
        except SpecError as err:
            assert str(path) in _one_line(err).args[0]
            return
        assert isinstance(spec, NoiseSpec)


# -- COCO files -------------------------------------------------------------------------------------------------
SIZES = [(20, 30), (7, 5)]


def _rarely(draw, one_in: int = 6) -> bool:
    return draw(st.integers(0, one_in - 1)) == 0


@st.composite
def rles(draw, height: int, width: int):
    """Valid RLEs (of random masks) mostly, near misses and junk sometimes."""
    size = [height, width] if not _rarely(draw, 5) else draw(st.sampled_from([[height + 1, width], 5, None, [height], "x"]))
    if _rarely(draw, 8):
        return {"size": size, "counts": draw(anything | st.text("0123456789:;<=>?@ABCDEFGHIJKLMNO", max_size=8))}
    mask = np.array(draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width)), np.uint8)
    mask = mask.reshape(height, width)
    if draw(st.booleans()):
        return {"size": size, "counts": Crop.from_full(mask).to_rle()["counts"]}
    flat = mask.flatten(order="F").astype(np.int64)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat])) != 0)
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if _rarely(draw, 5):
        runs = draw(st.lists(st.integers(-2, 40), max_size=6))
    return {"size": size, "counts": runs}


@st.composite
def segmentations(draw, height: int, width: int):
    """Polygons inside the image or RLEs, mostly valid; sometimes out of bounds, malformed or junk."""
    if _rarely(draw, 10):
        return draw(anything)
    if draw(st.booleans()):
        return draw(rles(height, width))
    inside = st.tuples(st.floats(0, width), st.floats(0, height))
    polygons = draw(st.lists(st.lists(inside, min_size=3, max_size=5).map(lambda pts: [v for p in pts for v in p]),
                             min_size=1, max_size=2))
    if _rarely(draw, 5):
        polygon = polygons[0]
        what = draw(st.sampled_from(["drop", "outside", "nan", "junk", "empty"]))
        if what == "drop":
            del polygon[draw(st.integers(0, len(polygon) - 1))]
        elif what == "outside":
            polygon[0] = width + draw(st.floats(1.5, 1e12))
        elif what == "nan":
            polygon[1] = draw(st.sampled_from([math.nan, math.inf, None, "1", True]))
        elif what == "junk":
            polygons.append(draw(anything))
        else:
            polygons.clear()
    return polygons


@st.composite
def coco_dicts(draw):
    """A small COCO dict, valid more often than not, with one kind of damage now and then."""
    images = [{"id": i + 1, "height": h, "width": w, "file_name": f"{i}.png"} for i, (h, w) in enumerate(SIZES)]
    if _rarely(draw):
        image = images[draw(st.integers(0, len(images) - 1))]
        image[draw(st.sampled_from(["id", "height", "width"]))] = draw(numbers | st.integers(40000, 60000))
    categories = [{"id": 1, "name": "a", "supercategory": "x"}, {"id": 2, "name": "b", "supercategory": "x"},
                  {"id": 3, "name": "c", "supercategory": "y"}]
    if _rarely(draw):
        categories[draw(st.integers(0, 2))][draw(st.sampled_from(["id", "name", "supercategory", "frequency"]))] = draw(
            anything | st.sampled_from(["r", "c", "f"]))
    annotations = []
    for index in range(draw(st.integers(0, 4))):
        image = draw(st.sampled_from(images))
        height, width = SIZES[images.index(image)]
        ann = {"id": index + 1, "image_id": image["id"], "category_id": draw(st.integers(1, 3)),
               "iscrowd": draw(st.sampled_from([0, 0, 1])), "segmentation": draw(segmentations(height, width))}
        if draw(st.booleans()):
            ann["bbox"] = draw(st.lists(numbers, min_size=3, max_size=5)) if _rarely(draw) else [1.0, 2.0, 3.0, 4.0]
        if draw(st.booleans()):
            ann["area"] = draw(numbers) if _rarely(draw) else 10.0
        if _rarely(draw, 8):
            ann[draw(st.sampled_from(["id", "image_id", "category_id", "iscrowd", "segmentation"]))] = draw(anything)
        annotations.append(ann)
    data = {"images": images, "categories": categories, "annotations": annotations}
    if _rarely(draw, 12):
        data[draw(st.sampled_from(["images", "categories", "annotations"]))] = draw(anything)
    return data


SPECS = [PRESETS["hard"], NoiseSpec(seed=3, class_noise=None), NoiseSpec.from_dict(
    {"class_noise": {"kind": "asymmetric", "rate": 0.5}, "spatial": [{"op": "opening", "prob": 0.5, "kernel": 101},
                                                                     {"op": "localization", "prob": 0.5, "sigma": 1000}]})]


@FUZZ
@given(coco_dicts(), st.sampled_from(SPECS), st.booleans())
def test_coco_reader_and_noise_on_any_coco_dict(data, spec, allow_empty):
    try:
        validate_coco(data, allow_empty_masks=allow_empty)
    except CocoFormatError as err:
        _one_line(err)
        valid = False
    else:
        valid = True
    try:  # what validation passes, the engine (which validates while noising) must noise
        result = apply_noise(data, spec, allow_empty_masks=allow_empty)
    except HfNoisyError as err:
        _one_line(err)
        assert not valid or isinstance(err, SpecError), err
        return
    assert valid and len(result.data["annotations"]) <= len(data["annotations"])


@FUZZ
@given(st.one_of(st.binary(max_size=120), coco_dicts().map(lambda d: json.dumps(d, allow_nan=True).encode()),
                 st.integers(0, 9).map(lambda n: b'{"images": [{"id": ' + b"7" * (4000 + n * 200)
                                                          + b"}]}")))
def test_coco_bytes(raw):
    try:
        validate_coco(parse_coco_bytes(raw, source="f.json"), source="f.json")
    except CocoFormatError as err:
        assert _one_line(err).args[0].startswith("f.json")


# -- results files ----------------------------------------------------------------------------------------------
GT = {"images": [{"id": i + 1, "height": h, "width": w, "file_name": f"{i}.png"} for i, (h, w) in enumerate(SIZES)],
      "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
      "annotations": [
          {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]],
           "area": 100.0, "bbox": [2, 2, 10, 10]},
          {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": 0, "segmentation": [[0, 0, 4, 0, 4, 6]],
           "area": 12.0, "bbox": [0, 0, 4, 6]},
          {"id": 3, "image_id": 1, "category_id": 2, "iscrowd": 1, "bbox": [0, 0, 30, 20], "area": 600,
           "segmentation": {"size": [20, 30], "counts": [0, 600]}}]}
validate_coco(GT)


@st.composite
def detections(draw):
    """A detection, valid more often than not: masks or boxes or both, with one kind of damage now and then."""
    image = draw(st.integers(0, 1))
    height, width = SIZES[image]
    det = {"image_id": image + 1, "category_id": draw(st.integers(1, 2)), "score": draw(st.floats(0, 1))}
    if not _rarely(draw, 4):
        det["segmentation"] = draw(segmentations(height, width))
    if draw(st.booleans()):
        box = st.tuples(st.floats(-5, 40), st.floats(-5, 40), st.floats(0, 40), st.floats(0, 40)).map(list)
        det["bbox"] = draw(st.lists(numbers, max_size=5)) if _rarely(draw) else draw(box)
    if _rarely(draw, 8):
        det[draw(st.sampled_from(["image_id", "category_id", "score", "bbox"]))] = draw(numbers | anything)
    return det


iou_type_lists = st.lists(st.sampled_from(["segm", "bbox", "boundary"]), min_size=1, max_size=3, unique=True)


@FUZZ
@given(st.lists(detections(), max_size=5) | anything, iou_type_lists)
def test_predictions_reader_and_evaluation(results, iou_types):
    try:
        evaluations = evaluate_coco(GT, results, iou_types)
    except PredictionError as err:
        _one_line(err)
        return
    assert list(evaluations) == iou_types
    for evaluation in evaluations.values():
        assert all(-1.0 <= value <= 1.0 for value in evaluation.stats.values())


@FUZZ
@given(st.one_of(st.binary(max_size=100), st.lists(detections(), max_size=3).map(
    lambda r: json.dumps(r, allow_nan=True).encode())))
def test_predictions_file_with_any_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.json"
        path.write_bytes(raw)
        try:
            results = load_predictions(path)
        except PredictionError as err:
            assert str(path) in _one_line(err).args[0]
            return
        assert isinstance(results, list)


# -- build arguments --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory) -> Path:
    from hf_noisy.synthetic import make_shapes_coco

    return make_shapes_coco(tmp_path_factory.mktemp("shapes"), num_train=2, num_val=1, seed=0)


BAD_ARGUMENTS = {
    "configs": st.just([]) | st.lists(st.sampled_from(["", "extreme", "Hard", "clean "]) | st.text(max_size=4),
                                     min_size=1, max_size=2),
    "seed": st.integers(-(2**65), -1) | st.integers(2**64, 2**66),
    "images": st.sampled_from(["inline", "", "Shared"]) | anything,
    "num_proc": st.integers(-3, 0),
    "max_images": st.integers(-3, 0),
    "images_per_shard": st.integers(-3, 0),
}


@st.composite
def build_arguments(draw) -> dict:
    """Good arguments, with at most one of them (half of the time) replaced by a bad value."""
    kwargs = {"configs": draw(st.lists(st.sampled_from(["clean", "easy", "hard"]), min_size=1, max_size=3,
                                       unique=True)),
              "seed": draw(st.integers(0, 3) | st.just(2**64 - 1)), "images": draw(st.sampled_from(["embedded", "shared"])),
              "num_proc": draw(st.integers(1, 2)), "max_images": draw(st.none() | st.integers(1, 2)),
              "images_per_shard": draw(st.integers(1, 2))}
    if kwargs["images"] == "shared" and "clean" not in kwargs["configs"] and draw(st.booleans()):
        kwargs["configs"].insert(0, "clean")
    bad = draw(st.none() | st.sampled_from(sorted(BAD_ARGUMENTS)))
    if bad is not None:
        kwargs[bad] = draw(BAD_ARGUMENTS[bad])
    return kwargs


@settings(FUZZ, max_examples=_DEEP or 8, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(build_arguments())
def test_build_arguments(shapes_root, kwargs):
    from hf_noisy.hub import build_benchmark, load_coco_n

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "built"
        try:
            result = build_benchmark("coco-n", out, coco_root=shapes_root, **kwargs)
        except HfNoisyError as err:
            _one_line(err)
            assert not out.exists() and list(Path(tmp).iterdir()) == []  # nothing written
            hypothesis.event("refused")
            return
        hypothesis.event("built")
        assert set(result.metadata["configs"]) == set(kwargs["configs"])
        assert len(load_coco_n(out, kwargs["configs"][-1], split="validation")) >= 1
