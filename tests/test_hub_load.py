"""Loading a built COCO-N folder: image join of a ``shared`` build, streaming, masks, on-the-fly noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import ColumnMap, NoiseTransform, build_benchmark, load_coco_n, to_masks
from hf_noisy.hub.transform import categories_from_names
from hf_noisy.noise import PRESETS


@pytest.fixture(scope="module")
def built(coco_tiny: Path, tmp_path_factory) -> Path:
    return build_benchmark("coco-n", tmp_path_factory.mktemp("hub") / "coco-n", coco_root=coco_tiny, max_images=6,
                           images_per_shard=4, configs=["clean", "hard"], images="shared").path


def test_load_coco_n_joins_the_images(built: Path):
    from datasets import load_dataset

    clean = load_dataset(str(built), "clean", split="train")
    hard = load_coco_n(built, "hard", split="train")
    assert hard.num_rows == clean.num_rows == 6
    for i in (0, 5):
        assert hard[i]["image_id"] == clean[i]["image_id"]
        assert np.array_equal(np.asarray(hard[i]["image"]), np.asarray(clean[i]["image"]))
        assert hard[i]["objects"] == load_dataset(str(built), "hard", split="train")[i]["objects"]
    both = load_coco_n(built, "hard")
    assert set(both) == {"train", "validation"} and "image" in both["validation"].features


def test_streaming_gives_the_same_rows(built: Path):
    from datasets import load_dataset

    rows = load_dataset(str(built), "hard", split="train")
    streamed = list(load_dataset(str(built), "hard", split="train", streaming=True))
    assert streamed == list(rows)
    joined = list(load_coco_n(built, "hard", split="train", streaming=True))
    assert [r["image_id"] for r in joined] == list(rows["image_id"])
    assert joined[5]["image"].size == (joined[5]["width"], joined[5]["height"])  # crosses a shard boundary


def test_join_refuses_rows_out_of_step(built: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    shards = sorted((copy / "data" / "hard").glob("train-*"))
    a, b = shards[0].read_bytes(), shards[1].read_bytes()
    shards[0].write_bytes(b), shards[1].write_bytes(a)  # same rows, other order
    with pytest.raises(HfNoisyError, match="same order"):
        load_coco_n(copy, "hard", split="train")


def test_to_masks_decodes_every_object(built: Path, coco_tiny: Path):
    from datasets import load_dataset

    row = load_dataset(str(built), "clean", split="train")[0]
    masks = to_masks(row)
    assert masks.shape == (len(row["objects"]), row["height"], row["width"]) and masks.dtype == np.uint8
    data = json.loads((coco_tiny / "annotations" / "instances_train2017.json").read_text())
    ann = next(a for a in data["annotations"] if a["id"] == row["objects"][0]["id"])
    rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], row["height"], row["width"]))
    assert np.array_equal(masks[0], mask_utils.decode(rle))
    assert to_masks({"objects": [], "height": 4, "width": 5}).shape == (0, 4, 5)


def test_on_the_fly_noise_reproduces_the_built_level(built: Path):
    from datasets import load_dataset

    meta = json.loads((built / "hf_noisy_benchmark.json").read_text())
    clean = load_dataset(str(built), "clean", split="train").remove_columns("image")
    hard = load_dataset(str(built), "hard", split="train")
    transform = NoiseTransform.for_coco_n(PRESETS["hard"], meta)
    mapped = clean.map(transform, batched=True, batch_size=4)
    assert list(mapped["objects"]) == list(hard["objects"])
    assert clean.with_transform(transform)[:6]["objects"] == hard[:6]["objects"]
    assert transform.row(clean[2])["objects"] == hard[2]["objects"]


def test_column_mapping_for_another_dataset():
    from datasets import Dataset

    square = [[10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]]
    rows = {"h": [40, 40], "w": [50, 50], "instances": [
        [{"ann_id": i, "label": 1, "mask": square} for i in range(1, 40)],
        [{"ann_id": 100, "label": 0, "mask": square}],
    ]}
    columns = ColumnMap(objects="instances", height="h", width="w", id="ann_id", category="label", segmentation="mask")
    transform = NoiseTransform(PRESETS["hard"], categories_from_names(["cat", "dog"]), columns)
    out = Dataset.from_dict(rows).map(transform, batched=True)
    first = out[0]["instances"]
    assert {obj["noise_op"] for obj in first} - {"none"}  # some spatial noise among 39 instances
    assert any(obj["class_flipped"] and obj["label"] == 0 for obj in first)
    assert all(obj["mask"]["size"] == [40, 50] and isinstance(obj["mask"]["counts"], str) for obj in first)
    assert out[0]["instances"] == Dataset.from_dict(rows).map(transform, batched=True)[0]["instances"]  # deterministic
    with pytest.raises(HfNoisyError, match="unique integer id"):
        transform.row({"instances": [{"label": 0, "mask": square}], "h": 40, "w": 50})
