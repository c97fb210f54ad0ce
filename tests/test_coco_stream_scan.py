"""scan_coco's annotation spans (followed in C, a block at a time) for layouts and bad structures, in any blocks."""

import orjson
import pytest

from hf_noisy import coco_stream
from hf_noisy.coco_stream import NotStreamable, scan_coco

GOOD = {
    "objects": b'{"images":[],"annotations":[{"id":1,"s":"]},{["},{"id":2,"p":[[1,2],[3]]}]}',
    "spaces": b' {"annotations" :\n [ {"id":1} ,\n\t{"id":2}\n ] , "images":[]} \n',
    "escapes": b'{"annotations":["\\\\", "\\"]", {"a":"\\\\\\"}"}], "images":[]}',
    "scalars": b'{"annotations":[1, "a]b", [1,[2]], {"x":[{}]} , null ,true], "images":[]}',
    "empty": b'{"annotations":[ \n ],"images":[]}',
}
BAD = {
    "trailing comma": b'{"annotations":[1,2,], "images":[]}',
    "leading comma": b'{"annotations":[,1], "images":[]}',
    "double comma": b'{"annotations":[1,,2], "images":[]}',
    "no comma": b'{"annotations":[{"a":1} {"b":2}], "images":[]}',
    "no comma between scalars": b'{"annotations":[1 2], "images":[]}',
    "unbalanced": b'{"annotations":[1}], "images":[]}',
    "cut": b'{"annotations":[1,{"a":"]',
}


@pytest.mark.parametrize("block", [1, 2, 7, 97, 1 << 20])
def test_spans_are_the_elements_whatever_the_blocks(block, tmp_path, monkeypatch):
    monkeypatch.setattr(coco_stream, "BLOCK_BYTES", block)
    for name, raw in GOOD.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(raw)
        layout = scan_coco(path)
        elements = [orjson.loads(raw[start:end]) for start, end in zip(layout.starts, layout.ends)]
        assert elements == orjson.loads(raw)["annotations"], name
        assert all(raw[start:end] == raw[start:end].strip() for start, end in zip(layout.starts, layout.ends)), name
        assert list(layout.head) == [key for key in orjson.loads(raw) if key != "annotations"], name


@pytest.mark.parametrize("block", [1, 3, 1 << 20])
def test_bad_structures_are_not_streamed(block, tmp_path, monkeypatch):
    monkeypatch.setattr(coco_stream, "BLOCK_BYTES", block)
    for raw in BAD.values():
        path = tmp_path / "bad.json"
        path.write_bytes(raw)
        with pytest.raises(NotStreamable):
            scan_coco(path)
