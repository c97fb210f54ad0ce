"""Benchmark the dataset builder: build time per 1,000 images, local disk use and Hub (Xet) storage vs one copy
of the images.

    python benchmarks/bench_build.py [COCO_ROOT] [--num-proc N] [--levels clean,easy,medium,hard]

COCO_ROOT defaults to ../shared/data/coco-tiny. Builds COCO-N with ``embedded`` (default) and ``shared`` image
storage in a temporary folder and prints one JSON line per build:

* ``seconds_per_1000_images``: wall time of the whole build (noise, rasterise, read images, write parquet).
* ``disk_ratio``: bytes of all parquet files / bytes of one copy of the source images.
* ``dedup_ratio``: what content-addressed storage keeps: the bytes of the *unique* content-defined chunks over
  all parquet files of the build / bytes of one copy of the images. Target for ``embedded``: <= 1.10x.

The chunks are cut as the Hub's Xet storage cuts uploads (xet-core's chunker): a gear rolling hash over the last
64 bytes, ``h = (h << 1) + GEAR[byte]`` (64-bit wrap-around); a chunk ends after a byte whose hash has its top
16 bits all zero (mask ``0xFFFF << 48``: target chunk size 64 KiB), but never before 8 KiB (target / 8) and
always at 128 KiB (target * 2). Chunks are compared by SHA-256. Xet's own gear table is a fixed random table;
this script draws its 256 entries from PCG64(0x5EED), so boundaries fall elsewhere than Xet's but with the same
statistics (the dedup ratio is what matters, not where each boundary lies).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from hf_noisy.hub import build_benchmark
from hf_noisy.sources import COCO_SPLITS

TARGET_CHUNK = 64 * 1024
MIN_CHUNK = TARGET_CHUNK // 8
MAX_CHUNK = TARGET_CHUNK * 2
WINDOW = 64  # bytes that a 64-bit gear hash remembers
MASK = np.uint64(0xFFFF << 48)
GEAR = np.random.Generator(np.random.PCG64(0x5EED)).integers(0, 2**64, 256, dtype=np.uint64, endpoint=False)


def gear_hashes(data: bytes) -> np.ndarray:
    """The rolling gear hash after every byte: ``sum(GEAR[b[i-k]] << k for k < 64)`` mod 2**64 (by doubling)."""
    h = GEAR[np.frombuffer(data, np.uint8)]
    span = 1
    while span < WINDOW:  # h_i = s_i + (s_{i-span} << span): six passes give the 64-byte window
        shifted = np.zeros_like(h)
        shifted[span:] = h[:-span] << np.uint64(span)
        h = h + shifted
        span *= 2
    return h


def chunk_bounds(data: bytes) -> list[tuple[int, int]]:
    """Content-defined chunks ``[(start, end), ...]`` of ``data`` with Xet's size rules (module docstring)."""
    ends = np.flatnonzero((gear_hashes(data) & MASK) == 0) + 1
    bounds, start, n = [], 0, len(data)
    while start < n:
        k = int(np.searchsorted(ends, start + MIN_CHUNK))
        end = int(ends[k]) if k < len(ends) and ends[k] - start <= MAX_CHUNK else min(start + MAX_CHUNK, n)
        bounds.append((start, end))
        start = end
    return bounds


def dedup_bytes(paths: list[Path]) -> tuple[int, int]:
    """(bytes of the unique chunks, number of chunks) over the files."""
    seen: dict[bytes, int] = {}
    chunks = 0
    for path in paths:
        data = path.read_bytes()
        for start, end in chunk_bounds(data):
            seen.setdefault(hashlib.sha256(data[start:end]).digest(), end - start)
            chunks += 1
    return sum(seen.values()), chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("coco_root", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/coco-tiny"))
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--levels", default="clean,easy,medium,hard")
    args = parser.parse_args()
    root = Path(args.coco_root)
    levels = [level for level in args.levels.split(",") if level]
    image_bytes = sum(p.stat().st_size for _, d in COCO_SPLITS.values() for p in (root / d).iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        for images in ("embedded", "shared"):
            result = build_benchmark("coco-n", Path(tmp) / images, coco_root=root, images=images,
                                     num_proc=args.num_proc, configs=levels)
            count = sum(s["num_images"] for s in result.metadata["source"].values())
            shards = sorted((Path(tmp) / images).rglob("*.parquet"))
            stored = sum(p.stat().st_size for p in shards)
            unique, chunks = dedup_bytes(shards)
            print(json.dumps({
                "images": images, "configs": len(levels), "num_proc": args.num_proc, "num_images": count,
                "annotations": sum(s["num_annotations"] for s in result.metadata["source"].values()),
                "seconds": round(result.seconds, 2),
                "seconds_per_1000_images": round(1000 * result.seconds / count, 1),
                "image_bytes": image_bytes, "dataset_bytes": stored, "disk_ratio": round(stored / image_bytes, 3),
                "dedup_bytes": unique, "chunks": chunks, "mean_chunk_bytes": round(stored / chunks),
                "dedup_ratio": round(unique / image_bytes, 3),
            }))


if __name__ == "__main__":
    main()
