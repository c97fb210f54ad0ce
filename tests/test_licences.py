"""Source licences respected by default: Cityscapes-N is annotation-only unless asked, its users join their own
images, `push` refuses images that may not be redistributed, every card says its mode, and the demo's card
describes synthetic data as synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi
from PIL import Image

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import (
    METADATA_FILE, NoiseTransform, build_benchmark, load_coco_n, push_dataset, read_metadata,
)
from hf_noisy.hub.push import check_redistribution
from hf_noisy.noise import PRESETS



@pytest.fixture(scope="module")
def cityscapes_root(shared_dir: Path, tmp_path_factory) -> Path:
    """The real cityscapes-tiny frame as both splits (it is a val frame; train links to it)."""
    sample = shared_dir / "data" / "cityscapes-tiny"
    root = tmp_path_factory.mktemp("cs") / "cityscapes"
    for kind in ("leftImg8bit", "gtFine"):
        (root / kind / "train").mkdir(parents=True)
        (root / kind / "val").symlink_to(sample / kind / "val")
        (root / kind / "train" / "frankfurt").symlink_to(sample / kind / "val" / "frankfurt")
    return root


@pytest.fixture(scope="module")
def annotation_only(cityscapes_root: Path, tmp_path_factory) -> Path:
    return build_benchmark("cityscapes-n", tmp_path_factory.mktemp("csn") / "cityscapes-n",
                           cityscapes_root=cityscapes_root, configs=("clean", "hard")).path


@pytest.fixture(scope="module")
def embedded(cityscapes_root: Path, tmp_path_factory) -> Path:
    return build_benchmark("cityscapes-n", tmp_path_factory.mktemp("cse") / "cityscapes-n",
                           cityscapes_root=cityscapes_root, configs=("clean",), images="embedded").path


def test_cityscapes_n_is_annotation_only_by_default(annotation_only: Path):
    metadata = read_metadata(annotation_only)
    assert metadata["images"] == "none" and metadata["images_redistributable"] is False
    for shard in annotation_only.glob("data/*/*.parquet"):
        assert "image" not in pq.read_schema(shard).names, shard
    assert all(not config["has_images"] for config in metadata["configs"].values())
    card = (annotation_only / "README.md").read_text()
    assert "**Mode:** **annotation-only**" in card and "image_root=" in card
    assert "forbid" not in card  # nothing to warn about: no image bytes


def test_load_coco_n_and_noise_transform_join_your_own_images(annotation_only: Path, cityscapes_root: Path):
    # without image_root the rows come as stored: annotations only
    assert "image" not in load_coco_n(annotation_only, "hard", split="train").features
    hard = load_coco_n(annotation_only, "hard", split="train", image_root=cityscapes_root)
    row = hard[0]
    frame = cityscapes_root / "leftImg8bit/train" / row["file_name"]
    assert row["image"].size == (row["width"], row["height"]) == (256, 128)
    assert np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(frame)))
    # both split spellings, and streaming
    val = load_coco_n(annotation_only, "clean", split="val", image_root=cityscapes_root)
    assert val[0]["image"].size == (256, 128)
    streamed = next(iter(load_coco_n(annotation_only, "hard", split="train", streaming=True, image_root=cityscapes_root)))
    assert streamed["image"].size == (256, 128) and streamed["objects"] == row["objects"]
    # NoiseTransform over the clean rows with your images reproduces the hard config, images untouched
    clean = load_coco_n(annotation_only, "clean", split="train", image_root=cityscapes_root)
    noise = NoiseTransform.for_coco_n(PRESETS["hard"].with_seed(1), read_metadata(annotation_only))
    mine = clean.with_transform(noise)[0]
    assert mine["image"].size == (256, 128)
    assert [o["segmentation"] for o in mine["objects"]] == [o["segmentation"] for o in row["objects"]]
    assert [o["noise_op"] for o in mine["objects"]] == [o["noise_op"] for o in row["objects"]]


def test_a_wrong_image_root_is_one_clear_error(annotation_only: Path, tmp_path: Path):
    with pytest.raises(HfNoisyError, match=r"1 image file\(s\) of this build are missing under .*leftImg8bit/train"):
        load_coco_n(annotation_only, "hard", split="train", image_root=tmp_path)


def _tags(repo_id: str) -> list[str]:
    return [ref.name for ref in HfApi().list_repo_refs(repo_id, repo_type="dataset").tags]


def test_embedded_cityscapes_needs_redistribution_rights_to_push(embedded: Path, hub, capsys):
    repo_id = f"{hub.user}/cityscapes-n"
    card = (embedded / "README.md").read_text()
    assert "**Mode:** **embedded images**" in card and "--i-have-redistribution-rights" in card
    with pytest.raises(HfNoisyError, match="forbid redistribution"):
        push_dataset(embedded, repo_id)
    assert main(["push", str(embedded), "--repo-id", repo_id]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--i-have-redistribution-rights" in err and "--image-storage none" in err
    assert hub.state.repos == {}  # refused before anything was sent
    assert main(["push", str(embedded), "--repo-id", repo_id, "--i-have-redistribution-rights"]) == 0
    assert _tags(repo_id) == [read_metadata(embedded)["benchmark_version"]]


def test_folders_without_restricted_images_push_without_the_flag(annotation_only: Path, coco_tiny: Path,
                                                                 tmp_path: Path, hub):
    push_dataset(annotation_only, f"{hub.user}/cityscapes-n")
    coco = build_benchmark("coco-n", tmp_path / "coco-n", coco_root=coco_tiny, max_images=1, configs=["clean"]).path
    assert "**Mode:** **embedded images**" in (coco / "README.md").read_text()
    push_dataset(coco, f"{hub.user}/coco-n")  # COCO's Flickr images carry their own Creative Commons licences
    assert len(_tags(f"{hub.user}/cityscapes-n")) == len(_tags(f"{hub.user}/coco-n")) == 1


def test_an_older_embedded_cityscapes_folder_is_judged_by_its_benchmark(embedded: Path, tmp_path: Path):
    metadata = json.loads((embedded / METADATA_FILE).read_text())
    del metadata["images_redistributable"]  # folders built before the field existed
    with pytest.raises(HfNoisyError, match="forbid redistribution"):
        check_redistribution(metadata)
    check_redistribution(metadata, have_rights=True)
    check_redistribution({**metadata, "images": "none"})


def test_cli_build_defaults_follow_the_source_terms(cityscapes_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli-csn"
    assert main(["build", "cityscapes-n", "--cityscapes-root", str(cityscapes_root), "--out", str(out),
                 "--levels", "clean", "--no-progress"]) == 0
    assert "images none" in capsys.readouterr().out
    assert read_metadata(out)["images"] == "none"


def test_demo_card_describes_synthetic_shapes(tmp_path: Path):
    from hf_noisy.demo import run_demo

    run_demo(tmp_path / "demo", num_images=2)
    card = (tmp_path / "demo/demo-shapes/README.md").read_text()
    header = card.split("---")[1]
    assert "license: cc0-1.0" in header and "cc-by-4.0" not in card
    assert "synthetic" in card.lower() and "CC0" in card
    assert "COCO 2017 with" not in card and "Flickr" not in card and "Lin, Tsung-Yi" not in card
    assert "obtain" not in card.lower().replace("nothing to obtain", "")
    assert read_metadata(tmp_path / "demo/demo-shapes")["benchmark"] == "Demo shapes"
