"""hf_noisy._simplify against shapely: every ring the fast path claims must equal GEOS's topology-preserving
simplification vertex for vertex (same start, same order, closed); rings it cannot prove come back flagged."""

import json
from collections import Counter

import cv2
import numpy as np
import pytest
import shapely

from hf_noisy import _simplify
from hf_noisy.masks import Crop
from hf_noisy.noise import spatial

TOLERANCES = (0.5, 1, 2, 3.7, 5, 10, 15, 20, 40)


def _rings(crops: list[Crop]) -> list[np.ndarray]:
    """Outer contours of >= 4 points (what approximate simplifies), int32 (n, 2)."""
    return [c for crop in crops if crop.area for c in spatial._contours(crop, "fill")[0] if len(c) >= 4]


def _compare(rings: list[np.ndarray], tolerance: float) -> tuple[int, int, list[int]]:
    """(rings, proven, mismatched ring indices) of the fast path against shapely at ``tolerance``."""
    points = np.ascontiguousarray(np.concatenate(rings), np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)
    kept, kept_offsets, proven = _simplify.simplify_rings(points, offsets, tolerance)
    kept = np.frombuffer(kept, np.int32).reshape(-1, 2)
    kept_offsets, proven = np.frombuffer(kept_offsets, np.int64), np.frombuffer(proven, np.uint8)
    polygons = shapely.polygons(shapely.linearrings(points.astype(np.float64), indices=np.repeat(np.arange(len(rings)), np.diff(offsets))))
    expected = [np.asarray(p.exterior.coords).astype(np.int32) for p in shapely.simplify(polygons, tolerance, preserve_topology=True)]
    bad = [r for r in np.nonzero(proven)[0] if not np.array_equal(kept[kept_offsets[r] : kept_offsets[r + 1]], expected[r])]
    assert all(kept_offsets[r] == kept_offsets[r + 1] for r in np.nonzero(proven == 0)[0])
    return len(rings), int(proven.sum()), bad


def _coco_crops(path) -> list[Crop]:
    data = json.loads(path.read_text())
    sizes = {i["id"]: (i["height"], i["width"]) for i in data["images"]}
    return [Crop.from_segmentation(a["segmentation"], *sizes[a["image_id"]]) for a in data["annotations"]]


def _cityscapes_crops(shared_dir) -> list[Crop]:
    ids = cv2.imread(str(next((shared_dir / "data/cityscapes-tiny/gtFine").rglob("*_instanceIds.png"))), cv2.IMREAD_UNCHANGED)
    return [Crop((ids == v).astype(np.uint8), 0, 0, ids.shape) for v in np.unique(ids) if v >= 1000]


def _with_morphology(crops: list[Crop]) -> list[Crop]:
    return crops + [op(c, k) for c in crops for op in (spatial.dilate, spatial.erode) for k in (3, 5, 7)]


def _random_crops(seed: int, count: int) -> list[Crop]:
    """Blobs, thin lines, 1-pixel spurs, checkerboard-ish noise, masks on the image border, tiny masks."""
    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        h, w = rng.integers(4, 80, 2)
        kind = index % 6
        if kind == 0:  # blobs
            mask = (cv2.GaussianBlur(rng.random((h, w)), (0, 0), rng.uniform(1, 6)) > 0.5).astype(np.uint8)
        elif kind == 1:  # thin lines
            mask = np.zeros((h, w), np.uint8)
            for _ in range(rng.integers(1, 4)):
                cv2.line(mask, tuple(int(v) for v in rng.integers(0, min(h, w), 2)), tuple(int(v) for v in rng.integers(0, min(h, w), 2)), 1, 1)
        elif kind == 2:  # a box with 1-pixel spurs
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : 3 * h // 4 + 1, w // 4 : 3 * w // 4 + 1] = 1
            for _ in range(rng.integers(1, 6)):
                y, x = rng.integers(0, h), rng.integers(0, w)
                mask[y, min(x, w // 2) : max(x, w // 2) + 1] = 1
        elif kind == 3:  # checkerboard-ish
            mask = (rng.random((h, w)) < rng.uniform(0.3, 0.7)).astype(np.uint8)
        elif kind == 4:  # touching the border
            mask = (rng.random((h, w)) < 0.9).astype(np.uint8)
            mask[0, :] = mask[:, 0] = 1
        else:  # tiny: 1-3 pixels
            mask = np.zeros((h, w), np.uint8)
            y, x = rng.integers(0, h - 1), rng.integers(0, w - 1)
            mask[y : y + rng.integers(1, 3), x : x + rng.integers(1, 3)] = 1
        crops.append(Crop(mask, 0, 0, (int(h), int(w))))
    return crops


def _check(crops: list[Crop], tolerances=TOLERANCES) -> dict:
    """{tolerance: (rings, proven)}, asserting that every proven ring equals shapely's."""
    rings = _rings(crops)
    report = {}
    for tolerance in tolerances:
        count, proven, bad = _compare(rings, tolerance)
        assert bad == [], f"tolerance {tolerance}: fast path differs from shapely on rings {bad[:10]}"
        report[tolerance] = (count, proven)
    print(report)
    return report


def test_random_masks_match_shapely():
    report = _check(_random_crops(0, 600))
    assert all(count > 300 for count, _ in report.values())
    assert sum(proven for _, proven in report.values()) > 0  # the fast path does take some rings


def test_real_masks_with_morphology_match_shapely(shared_dir):
    """Every outer contour of every mask of coco-tiny (train + val), lvis-tiny and cityscapes-tiny, as given
    and after dilate / erode by 3, 5 and 7, at every tolerance: no mismatch, and the fast path takes most rings."""
    data = shared_dir / "data"
    sets = {
        "coco-tiny": _coco_crops(data / "coco-tiny/annotations/instances_train2017.json") + _coco_crops(data / "coco-tiny/annotations/instances_val2017.json"),
        "lvis-tiny": _coco_crops(data / "lvis-tiny/lvis_val_100.json"),
        "cityscapes-tiny": _cityscapes_crops(shared_dir),
    }
    pooled = Counter()
    for name, crops in sets.items():
        print(name, end=" ")
        for tolerance, (count, proven) in _check(_with_morphology(crops)).items():
            pooled[tolerance, "rings"] += count
            pooled[tolerance, "proven"] += proven
    assert all(pooled[t, "proven"] > 0.7 * pooled[t, "rings"] for t in TOLERANCES), pooled


@pytest.mark.slow
def test_many_random_masks_match_shapely():
    _check(_random_crops(1, 5000))


@pytest.mark.parametrize(
    "points, offsets, message",
    [
        (np.zeros((4, 2), np.int64), np.array([0, 4], np.int64), "points"),
        (np.zeros((4, 3), np.int32), np.array([0, 4], np.int64), "points"),
        (np.zeros((4, 2), np.int32), np.array([0, 4], np.int32), "offsets"),
        (np.zeros((4, 2), np.int32), np.array([0, 5], np.int64), "offsets"),
        (np.zeros((4, 2), np.int32), np.array([1, 4], np.int64), "offsets"),
        (np.zeros((4, 2), np.int32), np.array([0, 3, 2, 4], np.int64), "offsets"),
        (np.zeros((8, 2), np.int32)[::2], np.array([0, 4], np.int64), "contiguous"),
    ],
)
def test_bad_arguments_raise(points, offsets, message):
    with pytest.raises((ValueError, BufferError), match=message):
        _simplify.simplify_rings(points, offsets, 1.0)


def test_bad_tolerance_raises():
    with pytest.raises(ValueError, match="tolerance"):
        _simplify.simplify_rings(np.zeros((4, 2), np.int32), np.array([0, 4], np.int64), float("nan"))


@pytest.mark.parametrize(
    "ring, tolerance",
    [  # found by the random sweep: dropping the start vertex removes a flattening segment that crosses the input
        ([[5, 1], [5, 2], [0, 7], [2, 5], [3, 6], [3, 5], [4, 4], [4, 3], [5, 2]], 1.0),
        ([[0, 0], [4, 3], [8, 0], [8, -10], [0, -10]], 3.0),  # a 3-4-5 tie: distance == tolerance flattens
        ([[5, 0], [10, 0], [10, 10], [0, 10], [0, 0]], 1.0),  # the start vertex goes; the ring starts at (0, 0)
    ],
)
def test_known_rings(ring, tolerance):
    assert _compare([np.array(ring, np.int32)], tolerance)[2] == []
