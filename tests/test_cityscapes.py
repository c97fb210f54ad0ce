"""Cityscapes source: instanceIds / polygons -> COCO, pixel for pixel, with stable ids and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from hf_noisy.cli import main
from hf_noisy.coco import dumps_coco, load_coco, validate_coco, write_coco
from hf_noisy.errors import HfNoisyError
from hf_noisy.masks import decode
from hf_noisy.noise import NoiseSpec, apply_noise
from hf_noisy.sources.cityscapes import (
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_CITATION,
    CITYSCAPES_LICENSE,
    cityscapes_frame_name,
    cityscapes_image_id,
    cityscapes_image_path,
    convert_cityscapes,
    read_cityscapes_split,
)

SAMPLE_FRAME = "frankfurt_000000_000294"
INSTANCE_CLASSES = {category["id"] for category in CITYSCAPES_CATEGORIES}


# -- helpers ---------------------------------------------------------------------------------------------
def _write_frame(root: Path, split: str, frame: str, *, size: tuple[int, int], ids: np.ndarray | None = None,
                 polygons: dict | None = None) -> None:
    """A Cityscapes frame under ``root``: an RGB image of ``size`` (h, w), and an instanceIds png and/or
    polygons json."""
    city = frame.split("_")[0]
    image_dir, label_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size[::-1], (90, 120, 150)).save(image_dir / f"{frame}_leftImg8bit.png")
    if ids is not None:
        Image.fromarray(ids.astype(np.uint16)).save(label_dir / f"{frame}_gtFine_instanceIds.png")
    if polygons is not None:
        (label_dir / f"{frame}_gtFine_polygons.json").write_text(json.dumps(polygons), encoding="utf-8")


def _synthetic_ids(height: int = 40, width: int = 60) -> np.ndarray:
    """Stuff, instances of several classes (one with a hole, one in two parts), group regions and instances of
    classes Cityscapes does not evaluate (caravan, trailer)."""
    ids = np.full((height, width), 7, np.int32)  # road
    ids[:10] = 23  # sky
    ids[10:14, :] = 11  # building
    ids[15:30, 2:12] = 24000  # person 0 ...
    ids[20:24, 5:8] = 8  # ... with a hole (sidewalk)
    ids[15:30, 13:16] = 24001  # person 1, touching a group of persons
    ids[15:30, 16:20] = 24  # persongroup -> crowd
    ids[31:35, 2:8] = 25000  # rider 0
    ids[16:22, 22:30] = 26000  # car 0, two parts
    ids[32:38, 40:46] = 26000
    ids[16:22, 30:40] = 26  # cargroup -> crowd
    ids[25:30, 22:28] = 29000  # caravan: instance class ignored in evaluation
    ids[25:30, 30:34] = 30  # trailer group: ignored
    ids[24:36, 48:58] = 33001  # bicycle 1 (no bicycle 0: ids need not be contiguous)
    ids[0:3, 50:53] = 17  # pole
    return ids


def _read_ids(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(np.int64)


def _assert_exact(data: dict, ids: np.ndarray, image_id: int) -> None:
    """Every value of an instance class in ``ids`` is one annotation whose mask is exactly ``ids == value``."""
    anns = {ann["id"]: ann for ann in data["annotations"] if ann["image_id"] == image_id}
    values = [v for v in np.unique(ids).tolist() if (v // 1000 if v >= 1000 else v) in INSTANCE_CLASSES]
    assert sorted(anns) == [image_id * 100_000 + v for v in values]
    for value in values:
        ann = anns[image_id * 100_000 + value]
        mask = (ids == value).astype(np.uint8)
        assert np.array_equal(decode(ann["segmentation"]), mask), value
        assert ann["category_id"] == (value // 1000 if value >= 1000 else value)
        assert ann["iscrowd"] == int(value < 1000)
        assert ann["area"] == int(mask.sum())
        rows, cols = np.nonzero(mask)
        assert ann["bbox"] == [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1),
                               float(rows.max() - rows.min() + 1)]
        assert isinstance(ann["segmentation"]["counts"], str)


def _assert_pycocotools_round_trip(data: dict, tmp_path: Path, ids_by_image: dict[int, np.ndarray]) -> None:
    path = tmp_path / "roundtrip.json"
    write_coco(data, path)
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == sorted(ids_by_image)
    for ann in coco.loadAnns(coco.getAnnIds()):
        value = ann["id"] - ann["image_id"] * 100_000
        assert np.array_equal(coco.annToMask(ann), (ids_by_image[ann["image_id"]] == value).astype(np.uint8))


def _listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


# -- constants -------------------------------------------------------------------------------------------
def test_categories_are_the_label_tables_evaluated_instance_classes():
    from cityscapesscripts.helpers.labels import labels

    expected = [{"id": label.id, "name": label.name, "supercategory": label.category}
                for label in labels if label.hasInstances and not label.ignoreInEval]
    assert list(CITYSCAPES_CATEGORIES) == expected
    assert [c["name"] for c in CITYSCAPES_CATEGORIES] == ["person", "rider", "car", "truck", "bus", "train",
                                                          "motorcycle", "bicycle"]
    assert "non-commercial" in CITYSCAPES_LICENSE and "cityscapes-dataset.com" in CITYSCAPES_LICENSE
    assert "Cordts" in CITYSCAPES_CITATION and "CVPR" in CITYSCAPES_CITATION and "2016" in CITYSCAPES_CITATION


# -- the real sample -------------------------------------------------------------------------------------
def test_real_sample_every_instance_pixel_for_pixel(shared_dir, tmp_path, capsys):
    root = shared_dir / "data" / "cityscapes-tiny"
    before = _listing(root)
    data = convert_cityscapes(root, "val", progress=True)
    assert "cityscapes val" in capsys.readouterr().err  # the progress bar, on stderr
    validate_coco(data)
    ids = _read_ids(root / "gtFine" / "val" / "frankfurt" / f"{SAMPLE_FRAME}_gtFine_instanceIds.png")
    image_id = cityscapes_image_id(SAMPLE_FRAME)
    assert data["images"] == [{"id": image_id, "file_name": f"frankfurt/{SAMPLE_FRAME}_leftImg8bit.png",
                               "height": 128, "width": 256}]
    assert cityscapes_image_path(root, "val", data["images"][0]).is_file()
    # SOURCE.md: persons 24000-24003, cars 26000-26002, no group pixels
    assert [(a["category_id"], a["iscrowd"]) for a in data["annotations"]] == [(24, 0)] * 4 + [(26, 0)] * 3
    _assert_exact(data, ids, image_id)
    _assert_pycocotools_round_trip(data, tmp_path, {image_id: ids})
    assert data["info"]["hf_noisy"]["frames"] == {"instanceIds": 1, "polygons": 0}
    assert _listing(root) == before  # nothing written into the user's root


# -- synthetic instanceIds: groups, several classes, ignored classes -------------------------------------
def test_instance_ids_groups_become_crowd_and_other_classes_are_ignored(tmp_path):
    root = tmp_path / "cityscapes"
    ids = _synthetic_ids()
    _write_frame(root, "train", "aachen_000001_000019", size=ids.shape, ids=ids)
    data = convert_cityscapes(root, "train")
    validate_coco(data)
    image_id = cityscapes_image_id("aachen_000001_000019")
    _assert_exact(data, ids, image_id)
    got = {ann["id"] - image_id * 100_000: (ann["category_id"], ann["iscrowd"]) for ann in data["annotations"]}
    assert got == {24: (24, 1), 26: (26, 1), 24000: (24, 0), 24001: (24, 0), 25000: (25, 0), 26000: (26, 0),
                   33001: (33, 0)}  # caravan 29000, trailer group 30 and every stuff class are left out
    car = next(a for a in data["annotations"] if a["id"] == image_id * 100_000 + 26000)
    assert car["bbox"] == [22.0, 16.0, 24.0, 22.0]  # both parts of the car in one mask
    _assert_pycocotools_round_trip(data, tmp_path, {image_id: ids})


def test_asymmetric_class_noise_stays_within_supercategory(tmp_path):
    root = tmp_path / "cityscapes"
    _write_frame(root, "train", "aachen_000001_000019", size=(40, 60), ids=_synthetic_ids())
    data = convert_cityscapes(root, "train")
    spec = NoiseSpec.from_dict({"version": 1, "seed": 3, "class_noise": {"kind": "asymmetric", "rate": 1.0}})
    noisy = apply_noise(data, spec).data
    supercategory = {c["id"]: c["supercategory"] for c in CITYSCAPES_CATEGORIES}
    flipped = [(a["original_category_id"], a["category_id"]) for a in noisy["annotations"] if not a["iscrowd"]]
    assert flipped and all(old != new and supercategory[old] == supercategory[new] for old, new in flipped)
    assert dict(flipped)[24] == 25 and dict(flipped)[25] == 24  # person and rider are each other's only peer


# -- polygons only: drawn by cityscapesScripts -----------------------------------------------------------
POLYGONS = {
    "imgHeight": 48,
    "imgWidth": 64,
    "objects": [
        {"label": "road", "polygon": [[0, 30], [63, 30], [63, 47], [0, 47]]},
        {"label": "car", "polygon": [[5, 10], [40, 10], [40, 35], [5, 35]]},
        {"label": "person", "polygon": [[30, 5], [50, 5], [50, 40], [30, 40]]},  # later: occludes the car
        {"label": "car", "polygon": [[45, 20], [60, 25], [52, 44]]},  # occludes the person
        {"label": "bicyclegroup", "polygon": [[2, 38], [20, 38], [20, 46], [2, 46]]},
        {"label": "person", "polygon": [[0, 0], [63, 0], [63, 47]], "deleted": 1},  # deleted: not drawn
        {"label": "license plate", "polygon": [[10, 30], [20, 30], [20, 33], [10, 33]]},  # id -1: not drawn
    ],
}


def test_polygons_only_frame_equals_cityscapesscripts_instance_image(tmp_path):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage

    root = tmp_path / "cityscapes"
    _write_frame(root, "val", "lindau_000000_000019", size=(48, 64), polygons=POLYGONS)
    before = _listing(root)
    data = convert_cityscapes(root, "val")
    validate_coco(data)
    assert _listing(root) == before  # the instance image was drawn in memory
    assert data["info"]["hf_noisy"]["frames"] == {"instanceIds": 0, "polygons": 1}

    annotation = Annotation()
    annotation.fromJsonFile(str(root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_polygons.json"))
    official = np.asarray(createInstanceImage(annotation, "ids")).astype(np.int64)
    image_id = cityscapes_image_id("lindau_000000_000019")
    _assert_exact(data, official, image_id)
    masks = {ann["id"] - image_id * 100_000: decode(ann["segmentation"]) for ann in data["annotations"]}
    assert sorted(masks) == [33, 24000, 26000, 26001]  # bicycle group (crowd), person, two cars

    # drawing order: the person covers the first car where they overlap, the second car covers the person
    assert masks[26000][10:36, 30:41].sum() == 0 and masks[24000][10:36, 30:41].all()
    assert masks[26000][10:36, 5:30].all()
    assert masks[26001][30, 50] == 1 and masks[24000][30, 50] == 0
    assert masks[24000].sum() + masks[26000].sum() + masks[26001].sum() == np.count_nonzero(
        (official >= 24000) & (official < 34000))


def test_instance_ids_png_is_preferred_over_polygons(tmp_path):
    root = tmp_path / "cityscapes"
    ids = _synthetic_ids(48, 64)
    _write_frame(root, "val", "lindau_000000_000019", size=(48, 64), ids=ids, polygons=POLYGONS)
    data = convert_cityscapes(root, "val")
    assert data["info"]["hf_noisy"]["frames"] == {"instanceIds": 1, "polygons": 0}
    _assert_exact(data, ids, cityscapes_image_id("lindau_000000_000019"))


def test_test_split_with_unlabelled_frames(tmp_path):
    root = tmp_path / "cityscapes"  # the released test gtFine has no instances
    _write_frame(root, "test", "berlin_000000_000019", size=(40, 60), ids=np.zeros((40, 60), np.int32))
    data = convert_cityscapes(root, "test")
    validate_coco(data)
    assert [image["id"] for image in data["images"]] == [2_000000_000019] and data["annotations"] == []


# -- ids ---------------------------------------------------------------------------------------------------
def test_image_id_rule_is_a_bijection_of_the_frame_name():
    assert cityscapes_image_id("frankfurt_000000_000294") == 11_000000_000294
    assert cityscapes_image_id("aachen_000173_000019") == 1_000173_000019
    assert cityscapes_image_id("zurich_000121_000019") == 27_000121_000019
    frames = ["frankfurt_000000_000294", "frankfurt_000001_000294", "frankfurt_000000_000295",
              "lindau_000000_000294", "munster_000173_000019", "monchengladbach_999999_999999"]
    ids = [cityscapes_image_id(frame) for frame in frames]
    assert len(set(ids)) == len(ids)
    assert [cityscapes_frame_name(i) for i in ids] == frames
    assert max(ids) * 100_000 + 33999 < 2**63  # annotation ids fit int64
    with pytest.raises(HfNoisyError, match="not one of the 27 Cityscapes gtFine cities"):
        cityscapes_image_id("atlantis_000000_000001")
    with pytest.raises(HfNoisyError, match="not a Cityscapes frame name"):
        cityscapes_image_id("frankfurt_0_294")


def test_ids_do_not_depend_on_other_frames_or_runs(tmp_path):
    frames = ["lindau_000000_000019", "frankfurt_000001_000077", "munster_000042_000019"]
    full, part = tmp_path / "full", tmp_path / "part"
    for k, frame in enumerate(frames):
        ids = np.roll(_synthetic_ids(), 3 * k, axis=1)
        _write_frame(full, "val", frame, size=ids.shape, ids=ids)
        if frame != "frankfurt_000001_000077":
            _write_frame(part, "val", frame, size=ids.shape, ids=ids)
    data_full, data_part = convert_cityscapes(full, "val"), convert_cityscapes(part, "val")
    assert [image["file_name"].split("/")[1][:-16] for image in data_full["images"]] == sorted(frames)
    by_name = {image["file_name"]: image["id"] for image in data_full["images"]}
    assert all(by_name[image["file_name"]] == image["id"] for image in data_part["images"])
    assert {image["id"] for image in data_full["images"]} == {cityscapes_image_id(frame) for frame in frames}
    kept = [ann for ann in data_full["annotations"] if ann["image_id"] != cityscapes_image_id(frames[1])]
    assert kept == data_part["annotations"]  # same annotation ids and content
    assert dumps_coco(convert_cityscapes(full, "val")) == dumps_coco(data_full)  # byte-identical rerun
    assert dumps_coco(convert_cityscapes(full, "val", num_proc=2)) == dumps_coco(data_full)


# -- errors ------------------------------------------------------------------------------------------------
def _break(root: Path, how: str) -> Path:
    """Make a one-frame root broken in one way; return the path the error must name."""
    frame_dir = root / "gtFine" / "val" / "lindau"
    ids = _synthetic_ids()
    _write_frame(root, "val", "lindau_000000_000019", size=ids.shape, ids=ids)
    label = frame_dir / "lindau_000000_000019_gtFine_instanceIds.png"
    image = root / "leftImg8bit" / "val" / "lindau" / "lindau_000000_000019_leftImg8bit.png"
    if how == "no labels":
        label.unlink()
        return image
    if how == "unreadable label":
        label.write_bytes(b"\x89PNG not really")
        return label
    if how == "unreadable image":
        image.write_bytes(b"")
        return image
    if how == "truncated image":
        Image.effect_noise((200, 100), 60).convert("RGB").resize(ids.shape[::-1]).save(image)
        data = image.read_bytes()
        image.write_bytes(data[: len(data) * 2 // 3])
        return image
    if how == "truncated label":
        data = label.read_bytes()
        label.write_bytes(data[: len(data) // 2])
        return label
    if how == "rgb label":
        Image.new("RGB", ids.shape[::-1]).save(label)
        return label
    if how == "size mismatch":
        Image.fromarray(ids[:, :-1].astype(np.uint16)).save(label)
        return label
    if how == "bad polygons":
        label.unlink()
        polygons = dict(POLYGONS, imgHeight=40, imgWidth=60, objects=[{"label": "spaceship", "polygon": [[0, 0], [5, 0], [5, 5]]}])
        path = frame_dir / "lindau_000000_000019_gtFine_polygons.json"
        path.write_text(json.dumps(polygons))
        return path
    if how == "broken json":
        label.unlink()
        path = frame_dir / "lindau_000000_000019_gtFine_polygons.json"
        path.write_text("{")
        return path
    if how == "unknown city":
        bad = root / "leftImg8bit" / "val" / "atlantis"
        bad.mkdir()
        Image.new("RGB", (4, 4)).save(bad / "atlantis_000000_000001_leftImg8bit.png")
        return bad / "atlantis_000000_000001_leftImg8bit.png"
    raise AssertionError(how)


@pytest.mark.parametrize("how, message", [
    ("no labels", "no gtFine annotation"),
    ("unreadable label", "cannot read the instanceIds png"),
    ("unreadable image", "cannot read the image"),
    ("truncated image", "cannot read the image"),
    ("truncated label", "cannot read the instanceIds png"),
    ("rgb label", "16- or 32-bit single-channel"),
    ("size mismatch", "labels are 59x40 but the image"),
    ("bad polygons", "unknown label 'spaceship'"),
    ("broken json", "not a Cityscapes polygon file"),
    ("unknown city", "not one of the 27"),
])
def test_bad_frames_raise_naming_the_path(tmp_path, how, message):
    root = tmp_path / "cityscapes"
    path = _break(root, how)
    with pytest.raises(HfNoisyError, match=message) as info:
        convert_cityscapes(root, "val")
    assert str(path) in str(info.value)


def test_missing_root_split_or_bad_split_name(tmp_path):
    with pytest.raises(HfNoisyError, match="no such directory") as info:
        convert_cityscapes(tmp_path / "nowhere", "val")
    assert str(tmp_path / "nowhere") in str(info.value)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(HfNoisyError, match="a_file: not a directory"):
        convert_cityscapes(tmp_path / "a_file", "val")
    root = tmp_path / "cityscapes"
    _write_frame(root, "val", "lindau_000000_000019", size=(40, 60), ids=_synthetic_ids())
    with pytest.raises(HfNoisyError, match="no such directory") as info:
        convert_cityscapes(root, "train")
    assert str(root / "leftImg8bit" / "train") in str(info.value)
    (root / "leftImg8bit" / "train").mkdir()
    with pytest.raises(HfNoisyError, match="gtFine_trainvaltest.zip") as info:
        convert_cityscapes(root, "train")
    assert str(root / "gtFine" / "train") in str(info.value)
    (root / "gtFine" / "train").mkdir()
    with pytest.raises(HfNoisyError, match="no <city>/<frame>_leftImg8bit.png images"):
        convert_cityscapes(root, "train")
    assert convert_cityscapes(root, "validation") == convert_cityscapes(root, "val")  # both spellings
    with pytest.raises(HfNoisyError, match="unknown split 'valid'; expected train, validation"):
        convert_cityscapes(root, "valid")


# -- CLI ---------------------------------------------------------------------------------------------------
def test_cli_converts_and_writes_atomically(tmp_path, capsys):
    root = tmp_path / "cityscapes"
    _write_frame(root, "train", "aachen_000001_000019", size=(40, 60), ids=_synthetic_ids())
    out = tmp_path / "out" / "train.json"
    assert main(["convert", "cityscapes", "--root", str(root), "--split", "train", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote {out}: 1 images, 5 instances, 2 crowd regions "
                                               "(cityscapes train)")
    assert dumps_coco(load_coco(out)) == dumps_coco(convert_cityscapes(root, "train"))
    assert os.listdir(out.parent) == ["train.json"]  # no temporary file left behind


def test_cli_bad_root_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "val.json"
    assert main(["convert", "cityscapes", "--root", str(tmp_path / "nowhere"), "--split", "val", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-noisy convert: error: ") and str(tmp_path / "nowhere") in err
    assert not out.exists()
    out.write_text("previous")  # a failed run leaves an existing output as it was
    root = tmp_path / "cityscapes"
    _break(root, "size mismatch")
    assert main(["convert", "cityscapes", "--root", str(root), "--split", "val", "-o", str(out)]) == 2
    assert out.read_text() == "previous" and sorted(os.listdir(tmp_path)) == ["cityscapes", "val.json"]


def test_docs_cityscapes_example_runs(shared_dir):
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "sources.md").read_text()
    section = page[page.index("## Cityscapes"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    root = str(shared_dir / "data" / "cityscapes-tiny")
    namespace: dict = {}
    exec(compile(block.replace('"/data/cityscapes"', repr(root)).replace("progress=True", "progress=False"),
                 "docs/guide/sources.md", "exec"), namespace)
    assert namespace["path"].is_file() and len(namespace["coco"]["annotations"]) == 7
    assert namespace["split"].data["annotations"] == namespace["coco"]["annotations"]


def test_large_ids_evaluate_like_small_ones(tmp_path):
    """Image and annotation ids above 2**53 give the same metrics (faster-coco-eval) as ids renumbered 1..N."""
    from hf_noisy.masks import encode
    from hf_noisy.metrics import evaluate_coco

    root = tmp_path / "cityscapes"
    for k, frame in enumerate(["lindau_000000_000019", "munster_000042_000019"]):
        _write_frame(root, "val", frame, size=(40, 60), ids=np.roll(_synthetic_ids(), 5 * k, axis=1))
    gt = convert_cityscapes(root, "val")
    predictions = []
    for k, ann in enumerate(gt["annotations"]):  # shifted copies of every mask, crowd regions included
        mask = np.roll(decode(ann["segmentation"]), k % 3, axis=k % 2)
        predictions.append({"image_id": ann["image_id"], "category_id": 26 if k % 4 == 0 else ann["category_id"],
                            "segmentation": encode(mask), "score": 1.0 - 0.03 * k})
    image_ids = {image["id"]: n for n, image in enumerate(gt["images"], start=1)}
    small = {**gt, "images": [{**image, "id": image_ids[image["id"]]} for image in gt["images"]],
             "annotations": [{**ann, "id": n, "image_id": image_ids[ann["image_id"]]}
                             for n, ann in enumerate(gt["annotations"], start=1)]}
    small_predictions = [{**p, "image_id": image_ids[p["image_id"]]} for p in predictions]
    assert max(ann["id"] for ann in gt["annotations"]) > 2**53
    large_stats = evaluate_coco(gt, predictions, ["segm", "bbox"])
    small_stats = evaluate_coco(small, small_predictions, ["segm", "bbox"])
    for iou_type in ("segm", "bbox"):
        assert large_stats[iou_type].stats == small_stats[iou_type].stats
        assert large_stats[iou_type].per_category == small_stats[iou_type].per_category
        assert 0 < large_stats[iou_type].stats["AP"] < 1


# -- the builder's view ------------------------------------------------------------------------------------
def _two_split_root(root: Path) -> dict[str, np.ndarray]:
    frames = {}
    for k, frame in enumerate(["aachen_000001_000019", "bochum_000000_000313", "zurich_000121_000019"]):
        frames[frame] = np.roll(_synthetic_ids(), 4 * k, axis=1)
        _write_frame(root, "train", frame, size=(40, 60), ids=frames[frame])
    frames["lindau_000000_000019"] = _synthetic_ids()
    _write_frame(root, "val", "lindau_000000_000019", size=(40, 60), ids=frames["lindau_000000_000019"])
    return frames


def test_read_cityscapes_split_for_the_builder(tmp_path):
    root = tmp_path / "cityscapes"
    _two_split_root(root)
    split = read_cityscapes_split(root, "validation")
    assert split.data == convert_cityscapes(root, "val")
    assert split.image_paths == (root / "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png",)
    split.check_images()
    out = tmp_path / "val.json"
    assert main(["convert", "cityscapes", "--root", str(root), "--split", "val", "-o", str(out)]) == 0
    assert split.provenance == {"annotations": "gtFine/val", "image_dir": "leftImg8bit/val",
                                "frames": {"instanceIds": 1, "polygons": 0},
                                "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    assert len(read_cityscapes_split(root, "train").image_paths) == 3
    assert read_cityscapes_split(root, "val") == split  # both spellings of the split name
    with pytest.raises(HfNoisyError, match="unknown split 'test' for Cityscapes"):
        read_cityscapes_split(root, "test")


def test_build_cityscapes_n_keeps_every_mask(tmp_path):
    """End to end through the builder: the clean config's rows hold exactly the instanceIds masks."""
    from hf_noisy.hub import build_benchmark, load_coco_n

    root = tmp_path / "cityscapes"
    frames = _two_split_root(root)
    build_benchmark("cityscapes-n", tmp_path / "cityscapes-n", cityscapes_root=root, configs=("clean", "hard"))
    for split, count in (("train", 3), ("validation", 1)):
        rows = load_coco_n(str(tmp_path / "cityscapes-n"), "clean", split=split)
        assert len(rows) == count
        for row in rows:
            ids = frames[cityscapes_frame_name(row["image_id"])]
            values = sorted(obj["id"] - row["image_id"] * 100_000 for obj in row["objects"])
            assert values == [24, 26, 24000, 24001, 25000, 26000, 33001]
            for obj in row["objects"]:
                value = obj["id"] - row["image_id"] * 100_000
                assert np.array_equal(decode(obj["segmentation"]), (ids == value).astype(np.uint8))
                assert obj["iscrowd"] == int(value < 1000)
