"""The annotation-error ops (missing, duplicate, merge, split, box, shift, vertex_dropout, crowd_flip) on real
COCO: rates, provenance, id rules, determinism across processes, chunks and input order, degenerate masks and
bad parameters."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import orjson
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from hf_noisy.coco import validate_coco
from hf_noisy.masks import Crop
from hf_noisy.noise import InstanceNoiser, NoiseSpec, SpatialOp, SpecError, apply_noise, load_spec, noise_file, noise_to_json
from hf_noisy.noise import io as noise_io
from hf_noisy.noise import stream as noise_stream
from hf_noisy.noise.engine import op_drawer
from hf_noisy.noise.structure import new_id_candidates

PARAMS = {"duplicate": {"max_offset": 0.3}, "shift": {"max_offset": 0.3}, "vertex_dropout": {"fraction": 0.5}}
NEW_OPS = ["missing", "duplicate", "merge", "split", "box", "shift", "vertex_dropout", "crowd_flip"]
#: every new op at once, with one of the paper's, so that each is drawn about 70 times on coco-tiny train
ALL_OPS = NoiseSpec.from_dict({"seed": 5, "class_noise": {"kind": "symmetric", "rate": 0.2},
                               "spatial": [{"op": op, "prob": 0.1, **PARAMS.get(op, {})} for op in NEW_OPS]
                               + [{"op": "scale", "prob": 0.1, "kernel": 5}]})


def one_op(op: str, prob: float = 0.2, seed: int = 3, **extra) -> NoiseSpec:
    return NoiseSpec.from_dict({"seed": seed, "spatial": [{"op": op, "prob": prob, **PARAMS.get(op, {})}], **extra})


@pytest.fixture(scope="module")
def train_path(coco_tiny) -> Path:
    return coco_tiny / "annotations/instances_train2017.json"


@pytest.fixture(scope="module")
def train(train_path) -> dict:
    return json.loads(train_path.read_text())


def _within(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(count / n - p) <= sigmas * np.sqrt(p * (1 - p) / n)


def _by_id(annotations: list[dict]) -> dict[int, dict]:
    return {ann["id"]: ann for ann in annotations}


@pytest.mark.parametrize("op", NEW_OPS)
def test_rate_within_sampling_error_and_counts_add_up(train, op):
    spec = one_op(op)
    result = apply_noise(train, spec)
    summary = result.summary
    eligible = [ann for ann in train["annotations"] if not ann["iscrowd"]]
    drawn = sum(op_drawer(spec)(ann["id"], False) == op for ann in eligible)
    assert _within(drawn, len(eligible), 0.2)
    made = summary.ops.get(op, 0)
    if op == "merge":  # a merger needs a same-class neighbour left in its image
        assert made + summary.not_applied.get("merge", 0) <= drawn and made >= 0.3 * drawn
        assert summary.removed == made
    else:
        assert made == drawn and not summary.not_applied
    assert summary.removed == {"missing": made, "merge": made}.get(op, 0)
    assert summary.added == (made if op in ("duplicate", "split") else 0)
    out = result.data["annotations"]
    assert len(out) == len(train["annotations"]) - summary.removed + summary.added - summary.dropped
    assert sum(ann["noise_op"] == op for ann in out) == {"missing": 0, "split": 2 * made}.get(op, made)
    validate_coco(result.data, check_masks=False)
    assert len({ann["id"] for ann in out}) == len(out)


def test_provenance_of_each_op(train):
    result = apply_noise(train, ALL_OPS)
    clean, out = _by_id(train["annotations"]), result.data["annotations"]
    height = {image["id"]: (image["height"], image["width"]) for image in train["images"]}
    by_op: dict[str, list[dict]] = {}
    for ann in out:
        by_op.setdefault(ann["noise_op"], []).append(ann)
    assert set(NEW_OPS) - {"missing"} <= set(by_op)
    for copy in by_op["duplicate"]:
        (source,) = copy["noise_source_ids"]
        assert copy["id"] not in clean and copy["noise_param"] == 0.3
        dx, dy = copy["noise_offset"]
        box = clean[source]["bbox"]
        assert abs(dx) <= 0.3 * box[2] + 1 and abs(dy) <= 0.3 * box[3] + 1
        moved = Crop.from_segmentation(clean[source]["segmentation"], *height[copy["image_id"]])
        expected = Crop(moved.mask, moved.x0 + dx, moved.y0 + dy, moved.image_size)  # no clipping when inside
        if 0 <= expected.x0 and expected.x1 <= expected.image_size[1] and 0 <= expected.y0 and expected.y1 <= expected.image_size[0]:
            assert copy["segmentation"] == expected.to_rle()
    for half in by_op["split"]:
        (source,) = half["noise_source_ids"]
        assert half["id"] == source or half["id"] not in clean
    sources = [half["noise_source_ids"][0] for half in by_op["split"]]
    assert all(sources.count(s) == 2 for s in sources)
    for merged in by_op["merge"]:
        first, second = merged["noise_source_ids"]
        assert first == merged["id"] and clean[second]["category_id"] == clean[first]["category_id"]
        assert clean[second]["image_id"] == merged["image_id"]
        assert second not in {ann["id"] for ann in out}  # the neighbour is removed
        assert merged["area"] >= clean[first]["area"] * 0.9
    for boxed in by_op["box"]:
        assert boxed["area"] == boxed["bbox"][2] * boxed["bbox"][3]
    for thinned in by_op["vertex_dropout"]:
        source = clean[thinned["id"]]
        if isinstance(source["segmentation"], list):
            assert isinstance(thinned["segmentation"], list)
            for before, after in zip(source["segmentation"], thinned["segmentation"]):
                n = len(before) // 2
                assert len(after) // 2 == (n - min(n // 2, n - 3) if n > 3 else n)
    for flipped in by_op["crowd_flip"]:
        assert flipped["iscrowd"] == 1 - clean[flipped["id"]]["iscrowd"]
        assert flipped["segmentation"] == clean[flipped["id"]]["segmentation"]
    summary = result.summary.to_dict()
    assert set(summary) >= {"added", "removed"} and summary["ops"]["missing"] > 0
    coco = COCO()  # pycocotools reads the output
    coco.dataset = result.data
    coco.createIndex()
    assert all(coco.annToMask(ann).sum() == ann["area"] for ann in by_op["box"][:5])


def test_byte_identical_across_num_proc_chunks_and_paths(train_path, tmp_path, monkeypatch):
    """Streamed (many chunks, workers started however small the input) with 1/2/3 processes and the in-memory
    path give the same bytes; mergers find neighbours in other chunks."""
    monkeypatch.setattr(noise_stream, "SMALL_INPUT", 0)
    outputs = []
    for num_proc in (1, 2, 3):
        out = tmp_path / f"out{num_proc}.json"
        noise_file(train_path, out, ALL_OPS, num_proc=num_proc)
        outputs.append(out.read_bytes())
    raw = train_path.read_bytes()
    import hashlib

    from hf_noisy.coco import parse_coco_bytes

    for num_proc in (1, 3):
        text, _ = noise_to_json(parse_coco_bytes(raw), ALL_OPS, num_proc=num_proc, input_sha256=hashlib.sha256(raw).hexdigest())
        outputs.append(text)
    assert all(output == outputs[0] for output in outputs)
    data = json.loads(outputs[0])
    index = {ann["id"]: i for i, ann in enumerate(json.loads(raw)["annotations"])}
    chunk = {ann_id: i // 50 for ann_id, i in index.items()}  # 2 processes cut 705 annotations in chunks of 50
    merged = [ann["noise_source_ids"] for ann in data["annotations"] if ann["noise_op"] == "merge"]
    assert any(chunk[a] != chunk[b] for a, b in merged)


@pytest.mark.parametrize("op", NEW_OPS)
def test_each_op_alone_is_deterministic(op, train, train_path, tmp_path, monkeypatch):
    """Each op alone: streamed with 1 and 3 processes (many chunks), the same bytes; reversed input, the same
    annotations in reversed source order."""
    monkeypatch.setattr(noise_stream, "SMALL_INPUT", 0)
    spec = one_op(op, prob=0.3)
    outputs = []
    for num_proc in (1, 3):
        noise_file(train_path, tmp_path / f"{num_proc}.json", spec, num_proc=num_proc)
        outputs.append((tmp_path / f"{num_proc}.json").read_bytes())
    assert outputs[0] == outputs[1]
    forward = json.loads(outputs[0])["annotations"]
    backward = apply_noise(dict(train, annotations=train["annotations"][::-1]), spec).data["annotations"]
    assert sorted(map(orjson.dumps, forward)) == sorted(map(orjson.dumps, backward))
    source = [ann.get("noise_source_ids", [ann["id"]])[0] for ann in backward]
    assert source == sorted(source, key=[ann["id"] for ann in train["annotations"][::-1]].index)


def test_input_order_changes_only_the_order(train):
    """Shuffled input: the same output annotations, byte for byte, in the shuffled order (each added instance
    right after its source)."""
    forward = apply_noise(train, ALL_OPS).data["annotations"]
    shuffled = list(train["annotations"])
    random.Random(0).shuffle(shuffled)
    backward = apply_noise(dict(train, annotations=shuffled), ALL_OPS).data["annotations"]
    assert sorted(map(orjson.dumps, forward)) == sorted(map(orjson.dumps, backward))

    def groups(outputs):
        source = [ann.get("noise_source_ids", [ann["id"]])[0] for ann in outputs]
        return [s for i, s in enumerate(source) if i == 0 or s != source[i - 1]]

    order = [ann["id"] for ann in shuffled]
    assert groups(backward) == [i for i in order if i in set(groups(backward))]


def test_new_ids_skip_every_input_id_and_each_other(train):
    spec = one_op("duplicate", prob=1.0)
    base = [dict(ann) for ann in train["annotations"][:20] if not ann["iscrowd"]]
    sources = sorted(ann["id"] for ann in base)
    first = next(iter(new_id_candidates(spec.seed, sources[0])))
    # an input annotation holding the first source's first candidate id: that source must take its second
    base.append(dict(base[-1], id=first))
    result = apply_noise(dict(train, annotations=base), spec)
    ids = [ann["id"] for ann in result.data["annotations"]]
    assert len(ids) == len(set(ids)) == 2 * len(base)
    copies = {ann["noise_source_ids"][0]: ann["id"] for ann in result.data["annotations"] if ann["noise_op"] == "duplicate"}
    candidates = new_id_candidates(spec.seed, sources[0])
    next(candidates)
    assert copies[sources[0]] == next(candidates)
    assert all(1 <= new < 2**53 for new in copies.values())


def _image(ann_masks: list[tuple[int, np.ndarray, int]], size=(40, 60)) -> dict:
    """A one-image dataset from ``(id, full mask, category)``."""
    annotations = []
    for ann_id, mask, category in ann_masks:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode()
        annotations.append({"id": ann_id, "image_id": 1, "category_id": category, "iscrowd": 0, "segmentation": rle,
                            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": int(mask.sum())})
    return {"images": [{"id": 1, "height": size[0], "width": size[1], "file_name": "x.jpg"}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": annotations}


def _square(x0, y0, side, size=(40, 60)) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    mask[y0 : y0 + side, x0 : x0 + side] = 1
    return mask


def test_merge_takes_the_nearest_same_class_neighbour_and_removes_it():
    data = _image([(1, _square(0, 0, 5), 1), (2, _square(30, 0, 5), 1), (3, _square(8, 0, 5), 1),
                   (4, _square(6, 10, 5), 2)])
    spec = NoiseSpec(seed=1, spatial=(SpatialOp("merge", 1.0),))
    result = apply_noise(data, spec)
    out = _by_id(result.data["annotations"])
    # 1 (lowest id) merges first with 3 (nearest of class 1; 4 is another class); 2 has no one left
    assert sorted(out) == [1, 2, 4]
    assert out[1]["noise_source_ids"] == [1, 3] and out[1]["area"] == 50
    assert out[2]["noise_op"] == "none" and out[4]["noise_op"] == "none"
    assert result.summary.not_applied == {"merge": 2} and result.summary.removed == 1


def test_split_cuts_across_the_long_axis():
    mask = np.zeros((40, 60), np.uint8)
    mask[10:14, 5:45] = 1  # a 40 x 4 bar
    result = apply_noise(_image([(7, mask, 1)]), NoiseSpec(seed=1, spatial=(SpatialOp("split", 1.0),)))
    first, second = result.data["annotations"]
    assert first["id"] == 7 and second["id"] != 7
    assert first["bbox"] == [5.0, 10.0, 20.0, 4.0] and second["bbox"] == [25.0, 10.0, 20.0, 4.0]


def test_degenerate_masks(train):
    """One pixel: split not made; empty masks (allowed): every op gives a clear result; a shift off the image
    follows empty_masks."""
    pixel = np.zeros((40, 60), np.uint8)
    pixel[3, 3] = 1
    result = apply_noise(_image([(1, pixel, 1)]), NoiseSpec(seed=1, spatial=(SpatialOp("split", 1.0),)))
    assert result.summary.not_applied == {"split": 1} and result.data["annotations"][0]["noise_op"] == "none"
    empty = _image([(1, np.zeros((40, 60), np.uint8), 1), (2, np.zeros((40, 60), np.uint8), 1)])
    for op in NEW_OPS:
        spec = one_op(op, prob=1.0)
        result = apply_noise(empty, spec, allow_empty_masks=True)
        out = result.data["annotations"]
        assert all(ann["area"] == 0 for ann in out)
        assert len(out) == {"missing": 0, "duplicate": 4, "merge": 1}.get(op, 2), op
    edge = _image([(1, _square(50, 30, 10), 1)])
    spec = NoiseSpec(seed=1, spatial=(SpatialOp("shift", 1.0, 1.0),))
    moved = apply_noise(edge, spec).data["annotations"][0]
    dx, dy = moved["noise_offset"]
    inside = max(0, min(60, 60 + dx) - max(50 + dx, 0)) * max(0, min(40, 40 + dy) - max(30 + dy, 0))
    assert moved["area"] == inside
    # a seed whose shift moves the square off the image: kept empty, or dropped
    for seed in range(200):
        spec = NoiseSpec(seed=seed, spatial=(SpatialOp("shift", 1.0, 1.0),))
        if apply_noise(edge, spec).data["annotations"][0]["area"] == 0:
            dropped = apply_noise(edge, NoiseSpec(seed=seed, spatial=spec.spatial, empty_masks="drop"))
            assert dropped.data["annotations"] == [] and dropped.summary.dropped == 1
            break
    else:
        pytest.fail("no seed in 200 moved the corner square off the image")


@pytest.mark.parametrize(("entry", "field"), [
    ({"op": "shift", "prob": 0.1}, "max_offset"),
    ({"op": "duplicate", "prob": 0.1, "max_offset": 1.5}, "max_offset"),
    ({"op": "shift", "prob": 0.1, "max_offset": "big"}, "max_offset"),
    ({"op": "vertex_dropout", "prob": 0.1, "fraction": -0.1}, "fraction"),
    ({"op": "vertex_dropout", "prob": 0.1}, "fraction"),
    ({"op": "missing", "prob": 0.1, "kernel": 3}, "kernel"),
    ({"op": "merge", "prob": 1.5}, "prob"),
    ({"op": "drop", "prob": 0.1}, "spatial op"),
])
def test_bad_parameters_are_refused_naming_the_field(entry, field):
    with pytest.raises(SpecError, match=field):
        NoiseSpec.from_dict({"spatial": [entry]})


def test_spec_form_round_trips_and_structural_ops_need_the_file(tmp_path, train):
    path = tmp_path / "ops.yaml"
    path.write_text("seed: 2\nspatial:\n  - {op: missing, prob: 0.1}\n  - {op: shift, prob: 0.2, max_offset: 0.1}\n")
    spec = load_spec(path)
    assert spec.spatial == (SpatialOp("missing", 0.1), SpatialOp("shift", 0.2, 0.1))
    assert NoiseSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["spatial"][0] == {"op": "missing", "prob": 0.1}
    with pytest.raises(SpecError, match="takes no parameter"):
        SpatialOp("box", 0.1, 3)
    with pytest.raises(SpecError, match="duplicate need the whole file"):
        InstanceNoiser(one_op("duplicate"), train["categories"])
    noiser = InstanceNoiser(one_op("crowd_flip", prob=1.0), train["categories"])
    ann = next(a for a in train["annotations"] if not a["iscrowd"])
    image = next(i for i in train["images"] if i["id"] == ann["image_id"])
    assert noiser(ann, image["height"], image["width"])["iscrowd"] == 1
    assert InstanceNoiser(one_op("missing", prob=1.0), train["categories"])(ann, image["height"], image["width"]) is None


def test_streamed_path_refuses_bad_input_as_the_whole_file_does(train, tmp_path, monkeypatch):
    monkeypatch.setattr(noise_io, "noise_to_json", lambda *a, **k: pytest.fail("read the whole file"))
    bad = dict(train, annotations=train["annotations"][:30] + [dict(train["annotations"][30], category_id=999)])
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps(bad))
    from hf_noisy.coco import CocoFormatError

    with pytest.raises(CocoFormatError, match="category_id"):
        noise_file(path, tmp_path / "out.json", ALL_OPS)
    assert not (tmp_path / "out.json").exists()


def test_docs_spec_of_the_new_ops_loads(tmp_path):
    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "annotation-errors.md").read_text(encoding="utf-8")
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.yaml"
    path.write_text(block)
    spec = load_spec(path)
    assert [op.op for op in spec.spatial] == NEW_OPS[:1] + ["duplicate", "merge", "split", "box", "shift",
                                                            "vertex_dropout", "crowd_flip"]


def test_show_marks_what_the_ops_did(coco_tiny, train, tmp_path):
    """hf-noisy show's overlays: a missing instance is a red dashed box on the noisy side, a copy is drawn."""
    import cv2

    from hf_noisy.viz import render_overlays, render_pair
    from hf_noisy.viz.panel import RED, title_height
    from hf_noisy.viz.text import text_px

    val = json.loads((coco_tiny / "annotations/instances_val2017.json").read_text())
    noisy = apply_noise(val, ALL_OPS).data
    image_id = next(ann["image_id"] for ann in noisy["annotations"] if ann["noise_op"] == "duplicate")
    written = render_overlays(val, noisy, coco_tiny / "val2017", tmp_path, image_ids=[image_id])
    picture = cv2.imread(str(written[0]))
    meta = next(i for i in val["images"] if i["id"] == image_id)
    assert picture.shape[1] == 2 * meta["width"] + 6 and min(meta["height"], meta["width"]) >= 400  # not scaled
    top = title_height(text_px(meta["height"], meta["width"]))  # the titles' strip, above the pictures
    assert picture.shape[0] > top + meta["height"]  # and the legend's, below
    clean = [ann for ann in val["annotations"] if ann["image_id"] == image_id]
    gone = [ann for ann in clean if ann["id"] not in {a["id"] for a in noisy["annotations"]}]
    assert gone, "ALL_OPS removes at least one instance of this image"
    plain = render_pair(cv2.imread(str(coco_tiny / "val2017" / meta["file_name"])), clean,
                        [ann for ann in noisy["annotations"] if ann["image_id"] == image_id],
                        {c["id"]: c["name"] for c in val["categories"]})
    for ann in gone:  # each removed instance: a red dash on its box's top edge, on the noisy side only
        x0, y0 = int(ann["bbox"][0]), int(ann["bbox"][1])
        right = slice(meta["width"] + 6 + x0, meta["width"] + 6 + x0 + 5)
        assert (picture[top + y0, right] == np.array(RED)).all(axis=1).any()
        assert not (plain[top + y0, right] == np.array(RED)).all(axis=1).any()  # unmarked without mark_removed


def test_mask_ops_equal_their_full_image_definitions(train):
    """On real masks, each window op equals its definition on the full image: translate (clipped), box, union,
    and split's two parts partition the mask with the cut perpendicular to the principal axis."""
    from hf_noisy.noise import spatial

    sizes = {image["id"]: (image["height"], image["width"]) for image in train["images"]}
    masks = [Crop.from_segmentation(ann["segmentation"], *sizes[ann["image_id"]]) for ann in train["annotations"][:60]]
    rng = np.random.default_rng(0)
    for crop, other in zip(masks, masks[1:]):
        full = crop.to_full()
        height, width = full.shape
        dx, dy = (int(v) for v in rng.integers(-80, 80, 2))
        expected = np.zeros_like(full)
        expected[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = \
            full[max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)]
        assert (spatial.translate(crop, dx, dy).to_full() == expected).all()
        ys, xs = np.nonzero(full)
        boxed = np.zeros_like(full)
        boxed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
        assert (spatial.box_mask(crop).to_full() == boxed).all()
        if other.image_size == crop.image_size:
            assert (spatial.union(crop, other).to_full() == (full | other.to_full())).all()
        first, second = (part.to_full() for part in spatial.split(crop))
        assert not (first & second).any() and ((first | second) == full).all() and first.any() and second.any()
        centred = np.stack([xs - xs.mean(), ys - ys.mean()])
        axis = np.linalg.eigh(centred @ centred.T)[1][:, -1]
        side = axis @ centred >= 0
        agree = (side == second[ys, xs].astype(bool)).mean()
        assert agree > 0.99 or agree < 0.01  # the same cut (the axis's sign aside), up to pixels on the line


@pytest.mark.parametrize("num_proc", [1, 2])
def test_a_build_holds_configs_of_the_new_ops_as_hf_noisy_noise_makes_them(coco_tiny, tmp_path, num_proc):
    """``missing`` (noised chunk by chunk) and ``duplicate`` (planned over the whole split) configs build, for any
    ``num_proc``, with exactly the annotations ``apply_noise`` gives the train file, and load with datasets."""
    from datasets import load_dataset

    from hf_noisy.coco import load_coco
    from hf_noisy.hub import build_benchmark

    specs = {"miss": one_op("missing"), "dup": one_op("duplicate")}
    for name, spec in specs.items():
        (tmp_path / f"{name}.json").write_text(spec.to_json())
    out = build_benchmark("coco-n", tmp_path / f"built{num_proc}", coco_root=coco_tiny, images="none",
                          num_proc=num_proc, images_per_shard=30, verify_images=False,
                          configs=["clean"] + [f"{name}={tmp_path / f'{name}.json'}" for name in specs]).path
    train = load_coco(coco_tiny / "annotations" / "instances_train2017.json")
    counts = {}
    for name, spec in specs.items():
        expected = apply_noise(train, spec.with_seed(1)).data["annotations"]
        rows = load_dataset(str(out), name, split="train")
        ids = [obj["id"] for objects in rows["objects"] for obj in objects]
        assert sorted(ids) == sorted(ann["id"] for ann in expected), name
        ops = [obj["noise_op"] for objects in rows["objects"] for obj in objects]
        assert ops.count("duplicate") == sum(ann.get("noise_op") == "duplicate" for ann in expected), name
        counts[name] = len(ids)
    assert counts["miss"] < len(train["annotations"]) < counts["dup"]
