"""The builder streams its sources: a split read from a file keeps its annotations in the file (validated in
one streamed pass, indexed by image row), the build never parses the whole file, and the bytes stay those
recorded before it streamed (``build_output_sha256.json``); bad files fail as when they were read whole."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import orjson
import pytest

from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.coco_stream import AnnotationFile
from hf_noisy.sources import SourceSplit, read_coco_split, read_lvis_split

RECORDED = json.loads((Path(__file__).parent / "build_output_sha256.json").read_text())


@pytest.fixture
def streamed_only(monkeypatch):
    """Reading a whole annotation file, or a split's annotations all at once, fails the test."""

    def whole_file(*args, **kwargs):
        raise AssertionError("an annotation file was read whole")

    def all_at_once(self):
        raise AssertionError("a split's annotations were read all at once")

    monkeypatch.setattr("hf_noisy.coco.load_coco", whole_file)
    monkeypatch.setattr(SourceSplit, "data", property(all_at_once))


@pytest.mark.parametrize("key", ["none/1/30", "embedded/2/30"])
def test_build_streams_and_keeps_its_bytes(key: str, coco_tiny: Path, tmp_path: Path, streamed_only) -> None:
    from hf_noisy.hub import build_benchmark

    images, num_proc, per_shard = key.split("/")
    out = build_benchmark("coco-n", tmp_path / "built", coco_root=coco_tiny, images=images, num_proc=int(num_proc),
                          images_per_shard=int(per_shard), verify_images=False).path
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file()}
    assert files == RECORDED["builds"][key]


def test_a_file_split_reads_as_the_file(coco_tiny: Path) -> None:
    path = coco_tiny / "annotations/instances_train2017.json"
    whole = load_coco(path)
    split = read_coco_split(coco_tiny, "train")
    annotations = split.annotations
    assert isinstance(annotations, AnnotationFile) and len(annotations) == len(whole["annotations"])
    assert list(annotations) == whole["annotations"]
    assert annotations[7] == whole["annotations"][7] and annotations[3:9] == whole["annotations"][3:9]
    assert split.data == whole and split.header == {k: v for k, v in whole.items() if k != "annotations"}
    row_of = {image["id"]: row for row, image in enumerate(whole["images"])}
    groups = [[] for _ in whole["images"]]
    for ann in whole["annotations"]:
        groups[row_of[ann["image_id"]]].append(ann)
    assert annotations.by_image(0, len(groups)) == groups
    assert annotations.by_image(5, 17) == groups[5:17]
    head = split.head(10)
    in_memory = SourceSplit.of(whole, split.image_paths).head(10)
    assert head.images == in_memory.images and list(head.annotations) == in_memory.annotations
    assert head.annotations.by_image(0, 10) == groups[:10]


def test_a_file_split_pickles_without_its_annotations(coco_tiny: Path) -> None:
    """Workers receive the index (a few bytes per annotation), never the parsed annotations."""
    annotations = read_coco_split(coco_tiny, "train").annotations
    size = len(pickle.dumps(annotations))
    raw = len(orjson.dumps(list(annotations)))
    assert size < 1024 + 64 * len(annotations) < raw


def test_lvis_annotations_get_iscrowd_when_read(shared_dir: Path, coco_tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "lvis"
    root.mkdir()
    (root / "lvis_v1_val.json").symlink_to(shared_dir / "data/lvis-tiny/lvis_val_100.json")
    split = read_lvis_split(root, coco_tiny, "validation")
    assert isinstance(split.annotations, AnnotationFile)
    assert all(ann["iscrowd"] == 0 for ann in split.annotations)
    assert all(ann["iscrowd"] == 0 for anns in split.annotations.by_image(0, 100) for ann in anns)


def _root_with_train(coco_tiny: Path, tmp_path: Path, raw: bytes) -> Path:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations/instances_train2017.json").write_bytes(raw)
    return root


@pytest.mark.parametrize("change", ["bbox", "empty mask", "duplicate id", "NaN", "not JSON"])
def test_bad_files_fail_as_when_read_whole(change: str, coco_tiny: Path, tmp_path: Path) -> None:
    data = json.loads((coco_tiny / "annotations/instances_train2017.json").read_text())
    polygon_ann = next(ann for ann in data["annotations"][300:] if isinstance(ann["segmentation"], list))
    if change == "bbox":
        data["annotations"][400]["bbox"] = [1, 2, 3]
    elif change == "empty mask":
        polygon_ann["segmentation"] = [[-50.0, -50.0, -40.0, -50.0, -40.0, -40.0]]
    elif change == "duplicate id":
        data["annotations"][500]["id"] = data["annotations"][200]["id"]
    raw = json.dumps(data).encode()
    if change == "NaN":
        raw = raw.replace(b'"area": ', b'"area": NaN, "x": ', 1)
    elif change == "not JSON":
        raw = raw[:-5]
    root = _root_with_train(coco_tiny, tmp_path, raw)
    path = root / "annotations/instances_train2017.json"
    with pytest.raises(CocoFormatError) as whole:
        load_coco(path)
    with pytest.raises(CocoFormatError) as streamed:
        read_coco_split(root, "train")
    assert str(streamed.value) == str(whole.value)
