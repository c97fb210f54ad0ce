"""Benchmark the COCO-N builder: build time per 1,000 images and disk use vs one copy of the images.

    python benchmarks/bench_build.py [COCO_ROOT] [--num-proc N]

COCO_ROOT defaults to ../shared/data/coco-tiny. Builds all four configs with ``shared`` and ``embedded``
image storage in a temporary folder and prints one JSON line per build.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from hf_noisy.hub import build_coco_n
from hf_noisy.hub.build import COCO_SPLITS


def _size(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("coco_root", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/coco-tiny"))
    parser.add_argument("--num-proc", type=int, default=1)
    args = parser.parse_args()
    root = Path(args.coco_root)
    image_bytes = _size(p for _, d in COCO_SPLITS.values() for p in (root / d).iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        for images in ("shared", "embedded"):
            result = build_coco_n(root, Path(tmp) / images, images=images, num_proc=args.num_proc)
            count = sum(s["num_images"] for s in result.metadata["source"].values())
            stored = _size((Path(tmp) / images).rglob("*"))
            print(json.dumps({
                "images": images, "num_proc": args.num_proc, "num_images": count,
                "annotations": sum(s["num_annotations"] for s in result.metadata["source"].values()),
                "seconds": round(result.seconds, 2), "seconds_per_1000_images": round(1000 * result.seconds / count, 1),
                "image_bytes": image_bytes, "dataset_bytes": stored, "ratio_to_one_image_copy": round(stored / image_bytes, 3),
            }))


if __name__ == "__main__":
    main()
