"""`val` and `validation` name the same split in every command and library entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import build_benchmark, export_coco, load_coco_n
from hf_noisy.sources import read_coco_split
from hf_noisy.sources.lvis import lvis_file
from hf_noisy.splits import canonical_split


def test_canonical_split_spellings():
    assert [canonical_split(s) for s in ("train", "val", "validation", "Validation ", "test")] == \
        ["train", "validation", "validation", "validation", "test"]
    assert canonical_split("val[:10]") == "validation[:10]"  # datasets' slice syntax survives
    for bad in ("valid", "dev", "", "training"):
        with pytest.raises(HfNoisyError, match="expected train, validation \\(or val\\) or test"):
            canonical_split(bad)


@pytest.fixture(scope="module")
def built(coco_tiny: Path, tmp_path_factory) -> Path:
    return build_benchmark("coco-n", tmp_path_factory.mktemp("splits") / "coco-n", coco_root=coco_tiny, max_images=2,
                           configs=["clean"]).path


def test_export_and_load_take_val(built: Path, tmp_path: Path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["export", str(built), "--config", "clean", "--split", "val", "-o", str(a)]) == 0
    assert main(["export", str(built), "--config", "clean", "--split", "validation", "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(a.read_text())["info"]["hf_noisy"]["split"] == "validation"
    assert export_coco(built, "clean", "val") == export_coco(built, "clean", "validation")
    assert load_coco_n(built, "clean", split="val")["image_id"] == load_coco_n(built, "clean", split="validation")["image_id"]
    assert main(["export", str(built), "--config", "clean", "--split", "valid", "-o", str(tmp_path / "c.json")]) == 2
    assert "unknown split 'valid'" in capsys.readouterr().err and not (tmp_path / "c.json").exists()


def test_sources_take_both_spellings(coco_tiny: Path, tmp_path: Path):
    assert read_coco_split(coco_tiny, "val") == read_coco_split(coco_tiny, "validation")
    with pytest.raises(HfNoisyError, match="unknown split 'test' for COCO 2017"):
        read_coco_split(coco_tiny, "test")
    (tmp_path / "lvis_v1_val.json").write_text("{}")
    assert lvis_file(tmp_path, "val") == lvis_file(tmp_path, "validation") == tmp_path / "lvis_v1_val.json"
    with pytest.raises(HfNoisyError, match="unknown split 'test' for LVIS"):
        lvis_file(tmp_path, "test")


def test_convert_takes_validation(shared_dir: Path, tmp_path: Path):
    root = shared_dir / "data" / "cityscapes-tiny"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["convert", "cityscapes", "--root", str(root), "--split", "val", "-o", str(a), "--no-progress"]) == 0
    assert main(["convert", "cityscapes", "--root", str(root), "--split", "validation", "-o", str(b), "--no-progress"]) == 0
    assert a.read_bytes() == b.read_bytes()
