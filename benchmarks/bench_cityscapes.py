"""Benchmark the Cityscapes converter against the usual recipe, on full-size synthetic frames.

    python benchmarks/bench_cityscapes.py [--frames 16] [--instances 20] [--num-proc 1 2] [--repeat 3]

Writes ``--frames`` frames of 2048x1024 (an RGB photo-like png, an instanceIds png with ``--instances`` elliptic
instances of person/car/bicycle, partly occluding each other, and two group regions) into a temporary Cityscapes
root, then converts them, interleaved and after a warm-up, with

* ``recipe``: what converters commonly do per frame (and MMDetection's Cityscapes converter does): ``np.unique``
  over the label image, then per value a full-image Fortran-order mask encoded by ``pycocotools.mask.encode``,
  with ``area`` and ``toBbox`` from pycocotools;
* ``hf-noisy``: :func:`hf_noisy.sources.convert_cityscapes` (image checksums checked, masks encoded in their
  bounding box), with each ``--num-proc``.

It checks that both give the same masks, boxes, areas, classes and crowd flags, and prints one JSON line per
variant: median milliseconds per frame and the speed ratio to the recipe measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from hf_noisy.sources import CITYSCAPES_CATEGORIES, convert_cityscapes

HEIGHT, WIDTH = 1024, 2048
CLASSES = (24, 26, 33)  # person, car, bicycle


def make_root(root: Path, frames: int, instances: int, seed: int = 0) -> None:
    """A Cityscapes ``val`` split of synthetic frames under ``root``."""
    rng = np.random.default_rng(seed)
    image_dir, label_dir = root / "leftImg8bit" / "val" / "frankfurt", root / "gtFine" / "val" / "frankfurt"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    for f in range(frames):
        ids = np.full((HEIGHT, WIDTH), 7, np.uint16)  # road
        ids[: HEIGHT // 3] = 23  # sky
        for k in range(instances):
            center = (int(rng.integers(0, WIDTH)), int(rng.integers(HEIGHT // 3, HEIGHT)))
            axes = (int(rng.integers(8, 250)), int(rng.integers(8, 180)))
            cv2.ellipse(ids, center, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.choice(CLASSES)) * 1000 + k, -1)
        cv2.rectangle(ids, (100, 800), (400, 950), 26, -1)  # a car group
        cv2.rectangle(ids, (1500, 700), (1600, 900), 24, -1)  # a person group
        name = f"frankfurt_000000_{f:06d}"
        Image.fromarray(ids).save(label_dir / f"{name}_gtFine_instanceIds.png")
        photo = rng.integers(0, 48, (HEIGHT, WIDTH, 3), dtype=np.uint8) + np.linspace(0, 200, WIDTH, dtype=np.uint8)[None, :, None]
        Image.fromarray(photo).save(image_dir / f"{name}_leftImg8bit.png", compress_level=1)


def recipe(root: Path) -> list[dict]:
    """The usual per-frame conversion (see the module docstring); annotations only."""
    classes = {c["id"] for c in CITYSCAPES_CATEGORIES}
    annotations = []
    for path in sorted((root / "gtFine" / "val").glob("*/*_gtFine_instanceIds.png")):
        ids = np.asarray(Image.open(path))
        with Image.open(str(path).replace("gtFine", "leftImg8bit").replace("_instanceIds", "")):
            pass
        for value in np.unique(ids).tolist():
            class_id = value // 1000 if value >= 1000 else value
            if class_id not in classes:
                continue
            rle = mask_utils.encode(np.asfortranarray((ids == value).astype(np.uint8)))
            annotations.append({"category_id": class_id, "iscrowd": int(value < 1000), "area": int(mask_utils.area(rle)),
                                "bbox": mask_utils.toBbox(rle).tolist(), "counts": rle["counts"].decode()})
    return annotations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--instances", type=int, default=20, help="instances drawn per frame (some are hidden)")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cityscapes"
        make_root(root, args.frames, args.instances)
        ours = convert_cityscapes(root, "val")  # warm-up and the agreement check
        theirs = recipe(root)
        assert [(a["category_id"], a["iscrowd"], a["area"], a["bbox"], a["segmentation"]["counts"])
                for a in ours["annotations"]] == [(a["category_id"], a["iscrowd"], a["area"], a["bbox"], a["counts"])
                                                  for a in theirs], "hf-noisy and the recipe disagree"
        variants = {"recipe": lambda: recipe(root)}
        for n in args.num_proc:
            variants[f"hf-noisy --num-proc {n}"] = lambda n=n: convert_cityscapes(root, "val", num_proc=n)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["recipe"])
        for name, values in times.items():
            median = statistics.median(values)
            print(json.dumps({"variant": name, "frames": args.frames, "annotations": len(ours["annotations"]),
                              "ms_per_frame": round(1000 * median / args.frames, 1),
                              "speedup_vs_recipe": round(base / median, 2)}))


if __name__ == "__main__":
    main()
