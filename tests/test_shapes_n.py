"""Shapes-N: the generator's promises (deterministic, prefix-stable, every class, no overlap, colour says nothing
of the class) and the benchmark built like the others (same bytes for any --num-proc, every level's statistics in
the card, NAME=SPEC configs for ablations, the CLI's options and refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from hf_noisy.cli import main
from hf_noisy.coco import load_coco
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import build_benchmark, export_coco
from hf_noisy.masks import Crop
from hf_noisy.sources.shapes import SHAPES_CATEGORIES, write_shapes_root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_same_bytes_and_the_first_images_do_not_depend_on_the_count(tmp_path: Path):
    a = _files(write_shapes_root(tmp_path / "a", num_train=6, num_val=2))
    b = _files(write_shapes_root(tmp_path / "b", num_train=6, num_val=2))
    assert a == b
    more = write_shapes_root(tmp_path / "c", num_train=9, num_val=2)
    for name, data in a.items():
        if name.endswith(".png"):
            assert (more / name).read_bytes() == data, name
    other = _files(write_shapes_root(tmp_path / "d", num_train=6, num_val=2, generator_seed=1))
    assert other["train2017/000000000001.png"] != a["train2017/000000000001.png"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict:
    root = write_shapes_root(tmp_path_factory.mktemp("shapes"), num_train=40, num_val=1)
    data = load_coco(root / "annotations" / "instances_train2017.json")
    return {"root": root, "data": data}


def test_every_class_and_shape_property_is_there(source: dict):
    data = source["data"]
    counts = {c["id"]: 0 for c in SHAPES_CATEGORIES}
    for ann in data["annotations"]:
        counts[ann["category_id"]] += 1
    assert min(counts.values()) >= 15, counts
    rings = [a for a in data["annotations"] if a["category_id"] == 5]
    assert rings and all(isinstance(a["segmentation"], dict) for a in rings)  # RLE: polygons cannot hold a hole
    for ring in rings[:5]:
        mask = Crop.from_segmentation(ring["segmentation"], 128, 128).to_full()
        filled = mask.copy()
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(filled, contours, -1, 1, -1)
        assert filled.sum() > mask.sum() * 1.1  # a real hole
    thin = [a for a in data["annotations"] if a["category_id"] in (6, 7)]
    eroded = [cv2.erode(Crop.from_segmentation(a["segmentation"], 128, 128).to_full(), np.ones((7, 7), np.uint8)).sum()
              for a in thin]
    assert sum(e == 0 for e in eroded) >= len(thin) // 4  # erosion at the hard level's k=7 empties thin objects
    areas = [a["area"] for a in data["annotations"]]
    assert min(areas) >= 12 and max(areas) < 128 * 128 / 4


def test_objects_never_overlap_and_some_touch(source: dict):
    data = source["data"]
    touching = 0
    for image in data["images"]:
        masks = [Crop.from_segmentation(a["segmentation"], 128, 128).to_full()
                 for a in data["annotations"] if a["image_id"] == image["id"]]
        assert 3 <= len(masks) <= 7
        stack = np.sum(masks, axis=0)
        assert stack.max() == 1, f"overlap in image {image['id']}"
        grown = [cv2.dilate(m, np.ones((3, 3), np.uint8)) for m in masks]
        touching += any((grown[i] & masks[j]).any() for i in range(len(masks)) for j in range(len(masks)) if i != j)
    assert touching >= len(data["images"]) // 4


def test_colour_does_not_tell_the_class(source: dict):
    """Each class is drawn in several palette colours, and the colours' spread is alike across classes."""
    data, root = source["data"], source["root"]
    hues: dict[int, set] = {c["id"]: set() for c in SHAPES_CATEGORIES}
    for image in data["images"][:30]:
        pixels = cv2.imread(str(root / "train2017" / image["file_name"]))
        for ann in (a for a in data["annotations"] if a["image_id"] == image["id"]):
            mask = Crop.from_segmentation(ann["segmentation"], 128, 128).to_full().astype(bool)
            mean = pixels[mask].mean(0)
            hues[ann["category_id"]].add(tuple(int(v) // 64 for v in mean))  # a coarse colour bin
    assert all(len(bins) >= 3 for bins in hues.values()), hues


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "erode.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "seed": 1, "spatial": [{"op": "erode", "prob": 1.0, "kernel": 7}]}))
    return path


@pytest.mark.slow
def test_build_is_byte_identical_for_any_num_proc_and_the_card_has_every_level(tmp_path: Path):
    kwargs = dict(num_train=6, num_val=2, images_per_shard=4)
    one = build_benchmark("shapes-n", tmp_path / "one", num_proc=1, **kwargs)
    two = build_benchmark("shapes-n", tmp_path / "two", num_proc=2, **kwargs)
    assert _files(one.path) == _files(two.path)
    card = (one.path / "README.md").read_text()
    meta = json.loads((one.path / "hf_noisy_benchmark.json").read_text())
    assert meta["benchmark_id"] == "shapes-n" and meta["benchmark_version"] == "custom"
    assert meta["generator"] == {"num_train": 6, "num_val": 2, "image_size": 128, "generator_seed": 0}
    for level in ("easy", "medium", "hard"):
        stats = meta["configs"][level]["stats"]
        assert stats["class_flipped"] > 0 and stats["ops"]
        assert f"| {level} |" in card or f"`{level}`" in card
    assert "What it lacks compared with COCO" in card and "CC0" in card


def test_a_spec_file_makes_a_named_config(tmp_path: Path, spec_file: Path):
    built = build_benchmark("shapes-n", tmp_path / "abl", num_train=8, num_val=2,
                            configs=["clean", f"erode7={spec_file}"]).path
    noisy = export_coco(built, "erode7", "train", tmp_path / "erode7.json")
    clean = export_coco(built, "clean", "train", tmp_path / "clean.json")
    assert len(noisy["annotations"]) == len(clean["annotations"])
    assert {a["noise_op"] for a in noisy["annotations"]} == {"erode"}
    assert all(a["class_flipped"] is False for a in noisy["annotations"])
    with pytest.raises(HfNoisyError, match="NAME=SPEC"):
        build_benchmark("shapes-n", tmp_path / "bad", num_train=2, num_val=1, configs=["clean", "erode7"])
    with pytest.raises(HfNoisyError, match="kept for the unchanged"):
        build_benchmark("shapes-n", tmp_path / "bad", num_train=2, num_val=1, configs=[f"clean={spec_file}"])
    with pytest.raises(HfNoisyError, match="distinct"):
        build_benchmark("shapes-n", tmp_path / "bad", num_train=2, num_val=1, configs=["hard", "hard"])
    assert not (tmp_path / "bad").exists()


def test_cli_builds_and_refuses_source_options(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    assert main(["build", "shapes-n", "--out", str(out), "--num-train", "3", "--num-val", "1", "--image-size", "96",
                 "--levels", "clean,hard", "--no-progress"]) == 0
    assert json.loads((out / "hf_noisy_benchmark.json").read_text())["generator"]["image_size"] == 96
    assert main(["build", "shapes-n", "--out", str(tmp_path / "x"), "--max-images", "3"]) == 2
    assert "--num-train" in capsys.readouterr().err
    assert main(["build", "shapes-n", "--out", str(tmp_path / "y"), "--image-size", "16"]) == 2
    assert "image_size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
