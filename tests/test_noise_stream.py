"""Streamed noise (``noise_file``) writes the same bytes as the in-memory engine did.

Two references: SHA-256s of ``noise_file``'s output recorded by running the code before it streamed
(``noise_output_sha256.json``: every preset, ``num_proc`` 1/2/3, coco-tiny train and val, lvis-tiny), and the
in-memory path (:func:`~hf_noisy.noise.noise_to_json` on the whole parsed file), kept as public API, for inputs
laid out in ways the tiny files are not (compact, other key orders, extra top-level values, strings with
escapes, many chunks) and for bad inputs, whose error must be the one the in-memory path raises.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
import pytest

from hf_noisy import coco_stream
from hf_noisy.coco import CocoFormatError, parse_coco_bytes
from hf_noisy.noise import io as noise_io
from hf_noisy.noise import load_spec, noise_file, noise_to_json
from hf_noisy.noise import stream as noise_stream

RECORDED = json.loads((Path(__file__).parent / "noise_output_sha256.json").read_text())
INPUTS = {
    "coco-tiny-train": "data/coco-tiny/annotations/instances_train2017.json",
    "coco-tiny-val": "data/coco-tiny/annotations/instances_val2017.json",
    "lvis-tiny": "data/lvis-tiny/lvis_val_100.json",
}


@pytest.fixture
def streamed_only(monkeypatch):
    """Every input streams (a whole-file read fails the test) and starts workers however few annotations."""

    def whole_file(*args, **kwargs):
        raise AssertionError("noise_file read the whole file instead of streaming it")

    monkeypatch.setattr(noise_io, "noise_to_json", whole_file)
    monkeypatch.setattr(noise_stream, "SMALL_INPUT", 0)


@pytest.mark.parametrize("key", sorted(RECORDED["sha256"]))
def test_bytes_as_recorded_before_streaming(key: str, shared_dir: Path, tmp_path: Path, streamed_only) -> None:
    name, level, num_proc, *strict = key.split("/")
    spec = load_spec("hard", seed=7) if level == "hard-seed7" else load_spec(level)
    out = tmp_path / "out.json"
    noise_file(shared_dir / INPUTS[name], out, spec, num_proc=int(num_proc), allow_empty_masks=not strict)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == RECORDED["sha256"][key]


def in_memory(raw: bytes, spec, num_proc: int = 1, source: str = "<data>", allow_empty_masks: bool = True) -> bytes:
    """What ``noise_file`` wrote before it streamed: the whole file parsed, noised and serialised at once."""
    data = parse_coco_bytes(raw, source=source)
    text, _ = noise_to_json(data, spec, num_proc=num_proc, input_sha256=hashlib.sha256(raw).hexdigest(),
                            allow_empty_masks=allow_empty_masks, source=source)
    return text


def layouts(data: dict) -> dict[str, bytes]:
    """The same COCO content written in ways a streaming reader must cope with."""
    annotations = data["annotations"]
    many = [dict(ann, id=ann["id"] + k * 10**7) for k in range(4) for ann in annotations]  # several chunks
    return {
        "compact": orjson.dumps(data),
        "indented": json.dumps(data, indent=3).encode(),
        "categories-last": orjson.dumps({"annotations": annotations, "images": data["images"],
                                         "categories": data["categories"]}),
        "extras": json.dumps({"type": "instances", "n": 3.5, "ok": True, "none": None, "info": {"x": "a\"]}{["},
                              "images": data["images"], "annotations": annotations, "categories": data["categories"],
                              "licenses": [{"name": "é \\ \u2028"}]}, ensure_ascii=True).encode(),
        "no-info": orjson.dumps({"categories": data["categories"], "images": data["images"],
                                 "annotations": [dict(ann, note="}{][\\\"") for ann in annotations]}),
        "many": orjson.dumps(dict(data, annotations=many)),
        "empty": orjson.dumps(dict(data, annotations=[])),
        "spaces": b"  \n" + orjson.dumps(data).replace(b'"annotations":[', b'"annotations" :\n [ ') + b"\n\t ",
    }


@pytest.mark.slow
@pytest.mark.parametrize("num_proc,block", [(1, None), (2, None), (1, 97), (2, 4096)])
def test_same_bytes_as_in_memory_for_any_layout(num_proc: int, block: int | None, shared_dir: Path, tmp_path: Path,
                                                monkeypatch) -> None:
    """Every layout, read in the default blocks and in blocks that cut keys, strings and annotations."""
    if block:
        monkeypatch.setattr(coco_stream, "BLOCK_BYTES", block)
    data = json.loads((shared_dir / INPUTS["coco-tiny-val"]).read_text())
    spec = load_spec("hard")
    expected = {layout: in_memory(raw, spec, source=str(tmp_path / f"{layout}.json"))
                for layout, raw in layouts(data).items()}
    monkeypatch.setattr(noise_io, "noise_to_json", None)  # every layout streams
    monkeypatch.setattr(noise_stream, "SMALL_INPUT", 0)
    for layout, raw in layouts(data).items():
        path = tmp_path / f"{layout}.json"
        path.write_bytes(raw)
        noise_file(path, tmp_path / f"{layout}.out.json", spec, num_proc=num_proc, allow_empty_masks=True)
        assert (tmp_path / f"{layout}.out.json").read_bytes() == expected[layout], layout


def broken(data: dict) -> dict[str, bytes]:
    """Bad inputs; each must fail as the in-memory path fails."""
    anns = data["annotations"]
    late_bad = [dict(ann, id=ann["id"] + k * 10**7) for k in range(3) for ann in anns]
    late_bad[-1] = dict(late_bad[-1], category_id=999999)
    empty_early = [dict(anns[0], segmentation=[[0, 0, 0, 0, 0, 0]])] + late_bad[1:]
    return {
        "not-json": orjson.dumps(data)[:-5],
        "trailing": orjson.dumps(data) + b"x",
        "nan": orjson.dumps(data).replace(b'"area":', b'"area":NaN,"was":', 1),
        "duplicate-id": orjson.dumps(dict(data, annotations=anns + anns[:1])),
        "late-bad-category": orjson.dumps(dict(data, annotations=late_bad)),
        "empty-mask-before-bad-category": orjson.dumps(dict(data, annotations=empty_early)),
        "annotations-not-list": orjson.dumps(dict(data, annotations={"a": 1})),
        "no-annotations": orjson.dumps({k: v for k, v in data.items() if k != "annotations"}),
        "top-level-list": b"[1, 2]",
        "duplicate-key": orjson.dumps(data)[:-1] + b',"annotations":[]}',
    }


@pytest.mark.slow
@pytest.mark.parametrize("num_proc", [1, 2])
def test_errors_as_in_memory(num_proc: int, shared_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(noise_stream, "SMALL_INPUT", 0)
    monkeypatch.setattr(coco_stream, "BLOCK_BYTES", 1000)
    data = json.loads((shared_dir / INPUTS["coco-tiny-val"]).read_text())
    spec = load_spec("hard")
    for case, raw in broken(data).items():
        path = tmp_path / f"{case}.json"
        path.write_bytes(raw)
        try:
            expected = in_memory(raw, spec, num_proc, source=str(path), allow_empty_masks=False)
        except CocoFormatError as err:
            expected = err
        out = tmp_path / f"{case}.out.json"
        if isinstance(expected, bytes):
            noise_file(path, out, spec, num_proc=num_proc)
            assert out.read_bytes() == expected, case
            continue
        with pytest.raises(CocoFormatError) as caught:
            noise_file(path, out, spec, num_proc=num_proc)
        assert str(caught.value) == str(expected), case
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}")] == []


def test_small_inputs_start_no_workers(shared_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """At most SMALL_INPUT annotations: one process whatever num_proc says (starting workers costs more)."""

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for a small input")

    monkeypatch.setattr(noise_stream, "worker_pool", no_pool)
    path = shared_dir / INPUTS["coco-tiny-train"]
    noise_file(path, tmp_path / "out.json", load_spec("easy"), num_proc=3, allow_empty_masks=True)
    expected = RECORDED["sha256"]["coco-tiny-train/easy/3"]
    assert hashlib.sha256((tmp_path / "out.json").read_bytes()).hexdigest() == expected
