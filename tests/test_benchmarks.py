"""Every benchmark from the one builder: LVIS-N (LVIS-format files over coco-tiny's images) and a precomputed-file
config (the rule COCO-WAN uses); each loads with plain ``load_dataset`` and keeps validation clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_noisy.coco import load_coco
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import Clean, Noised, Precomputed, benchmark_info, build_benchmark, build_dataset, export_coco
from hf_noisy.noise import NoiseSpec, apply_noise
from hf_noisy.noise.spec import SpecError
from hf_noisy.sources import lvis_image_name, read_coco_split, read_lvis_split

N = 6


def _lvis_file(coco: dict, image_dir: str, extra_images: list[dict] = (), extra_dir: str = "") -> dict:
    """An LVIS v1-style file: images named only by coco_url, federated label sets, no crowd, no supercategories."""
    categories = [{"id": c["id"], "name": c["name"], "synset": f"{c['name'].replace(' ', '_')}.n.01",
                   "frequency": "rfc"[k % 3]} for k, c in enumerate(coco["categories"])]
    images = []
    for image, folder in [*((i, image_dir) for i in coco["images"][:N]), *((i, extra_dir) for i in extra_images)]:
        present = sorted({a["category_id"] for a in coco["annotations"] if a["image_id"] == image["id"]})
        absent = [c["id"] for c in categories if c["id"] not in present]
        images.append({"id": image["id"], "width": image["width"], "height": image["height"],
                       "coco_url": f"http://images.cocodataset.org/{folder}/{image['file_name']}",
                       "neg_category_ids": absent[image["id"] % 7::13][:4], "not_exhaustive_category_ids": present[:1]})
    kept = {i["id"] for i in images}
    annotations = [{k: v for k, v in a.items() if k != "iscrowd"} for a in coco["annotations"]
                   if a["image_id"] in kept and not a.get("iscrowd", 0)]
    return {"images": images, "annotations": annotations, "categories": categories}


@pytest.fixture(scope="module")
def lvis_root(coco_tiny: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lvis")
    train = load_coco(coco_tiny / "annotations" / "instances_train2017.json")
    val = load_coco(coco_tiny / "annotations" / "instances_val2017.json")
    (root / "lvis_v1_train.json").write_text(json.dumps(_lvis_file(train, "train2017")))
    # LVIS v1 val holds some COCO train2017 images: the builder must find them in train2017/
    (root / "lvis_v1_val.json").write_text(json.dumps(_lvis_file(val, "val2017", train["images"][N:N + 1], "train2017")))
    return root


@pytest.fixture(scope="module")
def lvis_built(lvis_root: Path, coco_tiny: Path, tmp_path_factory) -> Path:
    return build_benchmark("lvis-n", tmp_path_factory.mktemp("lvis-n") / "lvis-n", lvis_root=lvis_root,
                           coco_root=coco_tiny, configs=["clean", "hard"]).path


def test_lvis_n_rows_are_complete_in_every_config(lvis_built: Path, lvis_root: Path, coco_tiny: Path):
    from datasets import Image, load_dataset

    for config in ("clean", "hard"):
        for split, rows in load_dataset(str(lvis_built), config).items():
            assert isinstance(rows.features["image"], Image) and rows.num_rows == (N if split == "train" else N + 1)
            row = rows[0]
            assert row["image"].size == (row["width"], row["height"]) and row["objects"]
            assert row["objects"][0]["iscrowd"] == 0
    val = load_dataset(str(lvis_built), "hard", split="validation").cast_column("image", Image(decode=False))
    last = val[N]  # the val image that lives in train2017/
    assert last["image"]["bytes"] == (coco_tiny / "train2017" / last["file_name"]).read_bytes()


def test_lvis_n_validation_exports_the_clean_lvis_ground_truth(lvis_built: Path, lvis_root: Path):
    source = json.loads((lvis_root / "lvis_v1_val.json").read_text())
    exported = export_coco(lvis_built, "hard", "validation")
    for mine, theirs in zip(exported["images"], source["images"], strict=True):
        assert mine["id"] == theirs["id"] and mine["file_name"] == lvis_image_name(theirs)
        assert mine["neg_category_ids"] == theirs["neg_category_ids"]
        assert mine["not_exhaustive_category_ids"] == theirs["not_exhaustive_category_ids"]
    assert [a["id"] for a in exported["annotations"]] == [a["id"] for a in source["annotations"]]
    assert [a["category_id"] for a in exported["annotations"]] == [a["category_id"] for a in source["annotations"]]
    assert [(c["id"], c["frequency"], c["synset"]) for c in exported["categories"]] == \
        [(c["id"], c["frequency"], c["synset"]) for c in source["categories"]]
    meta = json.loads((lvis_built / "hf_noisy_benchmark.json").read_text())
    assert meta["benchmark"] == "LVIS-N" and meta["source"]["validation"]["annotations"] == "lvis_v1_val.json"
    assert meta["configs"]["hard"]["stats"]["class_flipped"] > 0
    card = (lvis_built / "README.md").read_text()
    for needle in ("LVIS", "CC BY 4.0", "Gupta", "obtain LVIS yourself", "neg_category_ids"):
        assert needle in card


def test_lvis_v05_file_names_map_to_coco_2017():
    assert lvis_image_name({"id": 1, "file_name": "COCO_val2014_000000397133.jpg"}) == "000000397133.jpg"
    assert lvis_image_name({"id": 1, "coco_url": "http://images.cocodataset.org/train2017/000000000009.jpg",
                            "file_name": "COCO_train2014_000000000009.jpg"}) == "000000000009.jpg"
    with pytest.raises(HfNoisyError, match="neither coco_url nor file_name"):
        lvis_image_name({"id": 3})


def test_lvis_tiny_v05_reads_and_reports_missing_images(shared_dir: Path, tmp_path: Path, coco_tiny: Path):
    root = tmp_path / "lvis"
    root.mkdir()
    (root / "lvis_v0.5_val.json").symlink_to(shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json")
    split = read_lvis_split(root, coco_tiny, "validation")
    assert len(split.data["images"]) == 100 and len(split.data["annotations"]) == 977
    assert all(p.name == i["file_name"] and not p.name.startswith("COCO_") for p, i in zip(split.image_paths, split.data["images"]))
    with pytest.raises(HfNoisyError, match="image file"):  # lvis-tiny has no images; coco-tiny lacks these
        split.check_images()
    with pytest.raises(HfNoisyError, match="no LVIS train annotations"):
        read_lvis_split(root, coco_tiny, "train")


def test_asymmetric_noise_without_supercategories_is_an_error(lvis_root: Path, coco_tiny: Path, tmp_path: Path):
    train = read_lvis_split(lvis_root, coco_tiny, "train")
    spec = NoiseSpec.from_dict({"version": 1, "seed": 1, "class_noise": {"kind": "asymmetric", "rate": 0.4}})
    with pytest.raises(SpecError, match="none of the 80 categories has one"):
        apply_noise(train.data, spec)
    with pytest.raises(SpecError, match="supercategory"):
        build_dataset(benchmark_info("lvis-n"), {"train": train, "validation": read_lvis_split(lvis_root, coco_tiny, "validation")},
                      {"clean": Clean(), "asym": Noised(spec)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _precomputed(coco_tiny: Path, path: Path, op: str) -> Path:
    """A stand-in for a weak-annotation file: masks dilated by the engine, relabelled as made by a SAM prompt."""
    train = read_coco_split(coco_tiny, "train").head(N).data
    spec = NoiseSpec.from_dict({"version": 1, "seed": 1, "spatial": [{"op": "dilate", "prob": 1.0, "kernel": 5}]})
    data = apply_noise(train, spec).data
    for ann in data["annotations"]:
        if ann["noise_op"] != "none":
            ann.update(noise_op=op, noise_param=None, sam_prompt=[float(v) for v in ann["bbox"]], sam_iou=0.875)
    path.write_text(json.dumps(data))
    return path


def test_precomputed_configs_build_coco_wan(coco_tiny: Path, tmp_path: Path):
    from datasets import load_dataset

    wan = tmp_path / "wan"
    wan.mkdir()
    for level, op in (("easy", "sam_box"), ("medium", "sam_point"), ("hard", "sam_point")):
        _precomputed(coco_tiny, wan / f"{level}.json", op)
    out = build_benchmark("coco-wan", tmp_path / "coco-wan", coco_root=coco_tiny, wan_dir=wan, max_images=N).path
    medium = load_dataset(str(out), "medium")
    row = medium["train"][0]
    assert row["image"].size == (row["width"], row["height"])
    changed = [o for o in row["objects"] if o["noise_op"] == "sam_point"]
    assert changed and all(o["sam_iou"] == 0.875 and len(o["sam_prompt"]) == 4 for o in changed)
    clean_val = load_dataset(str(out), "clean", split="validation")
    assert medium["validation"]["objects"] == clean_val["objects"] and all(
        o["sam_iou"] is None for r in clean_val["objects"] for o in r)
    meta = json.loads((out / "hf_noisy_benchmark.json").read_text())
    quality = meta["configs"]["easy"]["quality"]["all"]
    assert 0.0 < quality["mask_AP"] < 1.0 and 0.0 < quality["mean_mask_iou"] < 1.0
    assert meta["configs"]["easy"]["file"]["name"] == "easy.json" and meta["configs"]["easy"]["rule"] == "precomputed"
    card = (out / "README.md").read_text()
    assert "Annotation quality" in card and "re-made by SAM from each object's box" in card
    exported = export_coco(out, "easy", "train")
    assert any(a.get("sam_iou") == 0.875 for a in exported["annotations"])


def test_precomputed_file_must_keep_clean_ids(coco_tiny: Path, tmp_path: Path):
    path = _precomputed(coco_tiny, tmp_path / "easy.json", "sam_box")
    data = json.loads(path.read_text())
    data["annotations"][0]["id"] = 10**12
    path.write_text(json.dumps(data))
    train = read_coco_split(coco_tiny, "train").head(N)
    splits = {"train": train, "validation": read_coco_split(coco_tiny, "validation").head(N)}
    with pytest.raises(HfNoisyError, match="must keep the clean ids"):
        build_dataset(benchmark_info("coco-wan"), splits, {"clean": Clean(), "easy": Precomputed(path)}, tmp_path / "out")
    missing = tmp_path / "wan"
    missing.mkdir()
    with pytest.raises(HfNoisyError, match="missing easy.json"):
        build_benchmark("coco-wan", tmp_path / "out2", coco_root=coco_tiny, wan_dir=missing)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_cityscapes_n_from_the_real_frame(shared_dir: Path, tmp_path: Path):
    """The real sample frame as both splits (it is a val frame; train gets a link to it): every config and split
    loads with image and objects, and validation is the clean conversion."""
    from datasets import load_dataset

    from hf_noisy.hub import build_benchmark
    from hf_noisy.sources.cityscapes import convert_cityscapes

    sample = shared_dir / "data" / "cityscapes-tiny"
    root = tmp_path / "cityscapes"
    for kind in ("leftImg8bit", "gtFine"):
        (root / kind / "train").mkdir(parents=True)
        (root / kind / "val").symlink_to(sample / kind / "val")
        (root / kind / "train" / "frankfurt").symlink_to(sample / kind / "val" / "frankfurt")
    out = build_benchmark("cityscapes-n", tmp_path / "cityscapes-n", cityscapes_root=root,
                          images="embedded").path  # explicitly: a private copy
    for config in ("clean", "easy", "medium", "hard"):
        for split, rows in load_dataset(str(out), config).items():
            row = rows[0]
            assert rows.num_rows == 1 and row["image"].size == (256, 128) and len(row["objects"]) == 7, (config, split)
    clean_val = convert_cityscapes(root, "val")
    exported = export_coco(out, "hard", "validation")
    assert [(a["id"], a["category_id"], a["segmentation"], a["iscrowd"]) for a in exported["annotations"]] == \
        [(a["id"], a["category_id"], a["segmentation"], a["iscrowd"]) for a in clean_val["annotations"]]
    card = (out / "README.md").read_text()
    assert "Cityscapes" in card and "Cordts" in card and "obtain Cityscapes yourself" in card
