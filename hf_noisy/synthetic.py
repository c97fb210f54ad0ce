"""A small, deterministic COCO-format dataset of shapes: the built-in data of ``hf-noisy demo`` and of tests.

It is laid out like COCO 2017 (``train2017/``, ``val2017/``, ``annotations/instances_*.json``) and holds
what makes noise interesting: objects with holes (rings, stored as RLE since COCO polygons cannot
have holes), thin objects that erosion can empty, touching objects, several polygons per object, and crowd
regions (``iscrowd=1`` RLE). Images are PNGs drawn with OpenCV. Same ``seed`` gives the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .coco import write_coco
from .fsutil import atomic_write_bytes
from .masks import Crop

__all__ = ["CATEGORIES", "make_shapes_coco"]

#: (id, name, supercategory): ids are not contiguous, as in COCO.
CATEGORIES = [
    {"id": 1, "name": "square", "supercategory": "polygon"},
    {"id": 2, "name": "triangle", "supercategory": "polygon"},
    {"id": 4, "name": "star", "supercategory": "polygon"},
    {"id": 5, "name": "disc", "supercategory": "round"},
    {"id": 7, "name": "ring", "supercategory": "round"},
    {"id": 8, "name": "bar", "supercategory": "thin"},
    {"id": 9, "name": "dots", "supercategory": "thin"},
]
_COLORS = {1: (66, 135, 245), 2: (245, 158, 66), 4: (230, 60, 90), 5: (70, 190, 120), 7: (160, 90, 220), 8: (40, 40, 40), 9: (120, 120, 30)}


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == "square":
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full(4, r)
    elif kind == "triangle":
        t = angle + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, r)
    elif kind == "star":
        t = angle + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    else:  # disc: a 24-gon
        t = angle + np.arange(24) * 2 * np.pi / 24
        radii = np.full(24, r)
    return np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], axis=1)


def _flat(points: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in points.reshape(-1)]


def _raster(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32).reshape(-1, 1, 2) for p in polygons], 1)
    return mask


def make_shapes_coco(root: str | os.PathLike, *, num_train: int = 12, num_val: int = 4, seed: int = 0) -> Path:
    """Write a COCO root like COCO 2017's: ``train2017/``, ``val2017/`` (PNG images) and
    ``annotations/instances_{train,val}2017.json``; return ``root``. Image and annotation ids are unique
    across the splits."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    _write_split(root, "train2017", range(1000, 1000 + num_train), 1, rng)
    _write_split(root, "val2017", range(5000, 5000 + num_val), 100_001, rng)
    return root


def _write_split(root: Path, split: str, image_ids: range, first_ann_id: int, rng: np.random.Generator,
                 height: int = 240, width: int = 320) -> None:
    images, annotations = [], []
    ann_id = first_ann_id
    for index, image_id in enumerate(image_ids):
        yy, xx = np.mgrid[0:height, 0:width]
        canvas = np.stack([180 + 40 * xx / width, 190 + 30 * yy / height, 200 - 30 * xx / width], axis=-1)
        canvas += rng.normal(0, 6, canvas.shape)
        objects: list[tuple[int, object, np.ndarray, int]] = []  # (category, segmentation, mask, iscrowd)

        for _ in range(int(rng.integers(3, 6))):
            category = int(rng.choice([1, 2, 4, 5]))
            kind = {1: "square", 2: "triangle", 4: "star", 5: "disc"}[category]
            r = float(rng.uniform(14, 40))
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            poly = _polygon(kind, cx, cy, r, float(rng.uniform(0, np.pi)))
            objects.append((category, [_flat(poly)], _raster([poly], height, width), 0))

        # two touching squares sharing an edge
        side = float(rng.uniform(16, 26))
        x, y = float(rng.uniform(10, width - 2 * side - 10)), float(rng.uniform(10, height - side - 10))
        for dx in (0.0, side):
            square = np.array([[x + dx, y], [x + dx + side, y], [x + dx + side, y + side], [x + dx, y + side]])
            objects.append((1, [_flat(square)], _raster([square], height, width), 0))

        # a ring (object with a hole): RLE
        r = float(rng.uniform(22, 36))
        cx, cy = rng.uniform(r + 2, width - r - 2), rng.uniform(r + 2, height - r - 2)
        ring = np.zeros((height, width), np.uint8)
        cv2.circle(ring, (int(cx), int(cy)), int(r), 1, -1)
        cv2.circle(ring, (int(cx), int(cy)), int(r * 0.5), 0, -1)
        objects.append((7, Crop.from_full(ring).to_rle(), ring, 0))

        # a thin bar (3 px): erosion with k >= 5 empties it
        x0, y0 = int(rng.integers(5, width - 90)), int(rng.integers(5, height - 10))
        bar = np.array([[x0, y0], [x0 + 80, y0 + 6], [x0 + 80, y0 + 9], [x0, y0 + 3]], float)
        objects.append((8, [_flat(bar)], _raster([bar], height, width), 0))

        # an object in two parts (two polygons)
        parts = [_polygon("disc", 30 + 10 * index % 200, height - 30, 9, 0), _polygon("disc", 58 + 10 * index % 200, height - 28, 7, 0)]
        objects.append((5, [_flat(p) for p in parts], _raster(parts, height, width), 0))

        if index % 3 == 0:  # a crowd region of dots
            crowd = np.zeros((height, width), np.uint8)
            for _ in range(25):
                cv2.circle(crowd, (int(rng.integers(200, width - 10)), int(rng.integers(10, 80))), 3, 1, -1)
            objects.append((9, Crop.from_full(crowd).to_rle(), crowd, 1))

        for category, segmentation, mask, iscrowd in objects:
            colour = np.array(_COLORS[category], float)
            canvas[mask.astype(bool)] = colour + rng.normal(0, 4, (int(mask.sum()), 3))
            geometry = Crop.from_segmentation(segmentation, height, width).encode()  # as pycocotools rasterises it
            annotations.append(
                {"id": ann_id, "image_id": image_id, "category_id": category, "iscrowd": iscrowd,
                 "segmentation": segmentation, "area": float(geometry.area), "bbox": geometry.bbox}
            )
            ann_id += 1
        file_name = f"{image_id:012d}.png"
        ok, png = cv2.imencode(".png", np.clip(canvas, 0, 255).astype(np.uint8)[:, :, ::-1])
        assert ok
        atomic_write_bytes(root / split / file_name, png.tobytes())
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
    data = {
        "info": {"description": "hf-noisy synthetic shapes", "version": "1.0", "year": 2026},
        "licenses": [{"id": 1, "name": "CC0-1.0"}],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    write_coco(data, root / "annotations" / f"instances_{split}.json")
