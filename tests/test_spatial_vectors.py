"""Pixel parity with the paper's released generator on real COCO (../shared/data/vectors)."""

import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from hf_noisy.masks import Crop
from hf_noisy.noise import spatial
from hf_noisy.synthetic import make_shapes_coco

OPS = {"dilate": spatial.dilate, "erode": spatial.erode, "opening": spatial.opening, "approximation": spatial.approximate}


def test_all_reference_vectors_pixel_identical(shared_dir, coco_tiny):
    vectors = json.loads((shared_dir / "data/vectors/spatial_ops_train2017.json").read_text())
    assert "Noisy-Labels-Instance-Segmentation" in vectors["generator"]
    coco = json.loads((coco_tiny / "annotations/instances_train2017.json").read_text())
    anns = {a["id"]: a for a in coco["annotations"]}
    images = {i["id"]: i for i in coco["images"]}
    checked, mismatched = Counter(), []
    batches = defaultdict(list)  # approximation vectors per tolerance, for the batched path
    for vector in vectors["vectors"]:
        ann = anns[vector["ann_id"]]
        image = images[ann["image_id"]]
        assert vector["size"] == [image["height"], image["width"]]
        crop = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"])
        out = OPS[vector["op"]](crop, vector["param"])
        checked[vector["op"]] += 1
        if out.to_rle()["counts"] != vector["counts"]:
            mismatched.append((vector["ann_id"], vector["op"], vector["param"]))
        if vector["op"] == "approximation":
            batches[vector["param"]].append((crop, vector))
    assert sum(checked.values()) == vectors["count"] == 2820
    assert set(checked) == set(OPS)
    assert mismatched == []
    for tolerance, batch in batches.items():  # the engine's path: all of a chunk's polygons in one shapely call
        outs = spatial.approximate_many([crop for crop, _ in batch], tolerance)
        assert [out.to_rle()["counts"] for out in outs] == [vector["counts"] for _, vector in batch]


@pytest.mark.slow
@pytest.mark.parametrize("holes", ["fill", "keep"])
def test_batched_approximation_equals_one_at_a_time(tmp_path, holes):
    """Shapes with holes, touching objects and crowd regions, with empty crops mixed in: the batch gives
    each crop what approximate gives it alone."""
    coco = json.loads((make_shapes_coco(tmp_path, num_train=12, num_val=2) / "annotations/instances_train2017.json").read_text())
    sizes = {i["id"]: (i["height"], i["width"]) for i in coco["images"]}
    crops = [Crop.from_segmentation(a["segmentation"], *sizes[a["image_id"]]) for a in coco["annotations"]]
    height, width = sizes[coco["annotations"][0]["image_id"]]
    crops[3:3] = [Crop(np.zeros((0, 0), np.uint8), 0, 0, (height, width)), Crop(np.zeros((4, 4), np.uint8), 2, 2, (height, width))]
    assert any(len(spatial._contours(c, "keep")[0]) > 1 for c in crops if c.area)  # some have holes
    for tolerance in (2, 15):
        batched = spatial.approximate_many(crops, tolerance, holes)
        assert [b.to_rle() for b in batched] == [spatial.approximate(c, tolerance, holes).to_rle() for c in crops]


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
