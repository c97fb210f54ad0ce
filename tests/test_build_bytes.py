"""Builds keep their bytes: every file of coco-n builds of coco-tiny (annotation-only and embedded, 1 and 2
processes, small and default shards) has the SHA-256 recorded by running the builder before issue 25's work on
it (``build_output_sha256.json``), the reference a streamed builder must keep."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

RECORDED = json.loads((Path(__file__).parent / "build_output_sha256.json").read_text())


@pytest.mark.parametrize("key", sorted(RECORDED["builds"]))
def test_build_bytes_as_recorded(key: str, coco_tiny: Path, tmp_path: Path) -> None:
    from hf_noisy.hub import build_benchmark

    images, num_proc, per_shard = key.split("/")
    out = build_benchmark("coco-n", tmp_path / "built", coco_root=coco_tiny, images=images, num_proc=int(num_proc),
                          images_per_shard=int(per_shard), verify_images=False).path
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file()}
    assert files == RECORDED["builds"][key]
