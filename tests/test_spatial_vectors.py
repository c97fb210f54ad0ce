"""Pixel parity with the paper's released generator on real COCO (../shared/data/vectors)."""

import json
from collections import Counter

import pytest

from hf_noisy.masks import Crop
from hf_noisy.noise import spatial

OPS = {"dilate": spatial.dilate, "erode": spatial.erode, "opening": spatial.opening, "approximation": spatial.approximate}


def test_all_reference_vectors_pixel_identical(shared_dir, coco_tiny):
    vectors = json.loads((shared_dir / "data/vectors/spatial_ops_train2017.json").read_text())
    assert "Noisy-Labels-Instance-Segmentation" in vectors["generator"]
    coco = json.loads((coco_tiny / "annotations/instances_train2017.json").read_text())
    anns = {a["id"]: a for a in coco["annotations"]}
    images = {i["id"]: i for i in coco["images"]}
    checked, mismatched = Counter(), []
    for vector in vectors["vectors"]:
        ann = anns[vector["ann_id"]]
        image = images[ann["image_id"]]
        assert vector["size"] == [image["height"], image["width"]]
        crop = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"])
        out = OPS[vector["op"]](crop, vector["param"])
        checked[vector["op"]] += 1
        if out.to_rle()["counts"] != vector["counts"]:
            mismatched.append((vector["ann_id"], vector["op"], vector["param"]))
    assert sum(checked.values()) == vectors["count"] == 2820
    assert set(checked) == set(OPS)
    assert mismatched == []


@pytest.mark.parametrize("op", ["dilate", "erode", "opening", "approximation"])
def test_ops_do_not_depend_on_the_window(coco_tiny, op):
    coco = json.loads((coco_tiny / "annotations/instances_val2017.json").read_text())
    images = {i["id"]: i for i in coco["images"]}
    for ann in coco["annotations"][:60]:
        image = images[ann["image_id"]]
        tight = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"])
        loose = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"], margin=25)
        param = 15 if op == "approximation" else 5
        assert OPS[op](tight, param).to_rle() == OPS[op](loose, param).to_rle()
