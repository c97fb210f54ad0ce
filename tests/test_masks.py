import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from hf_noisy.masks import Crop, MaskError, check_rle, compress_counts


def _reference_rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask))
    return rle["counts"].decode("ascii")


@pytest.mark.parametrize("seed", range(4))
def test_crop_codec_matches_pycocotools_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    for _ in range(400):
        h, w = rng.integers(1, 25, 2)
        mask = (rng.random((h, w)) < rng.random() ** 2).astype(np.uint8)
        if rng.random() < 0.3:  # a solid block, often touching borders
            mask[:] = 0
            mask[rng.integers(0, h) : rng.integers(0, h + 1), rng.integers(0, w) : rng.integers(0, w + 1)] = 1
        expected = _reference_rle(mask)
        assert Crop.from_full(mask).to_rle()["counts"] == expected
        crop = Crop.from_rle({"size": [int(h), int(w)], "counts": expected}, margin=int(rng.integers(0, 3)))
        assert np.array_equal(crop.to_full(), mask)
        assert crop.to_rle()["counts"] == expected
        assert crop.area == int(mask.sum())
        encoded = crop.encode()  # the C encoder's own box and area, from the runs
        assert encoded.bbox == mask_utils.toBbox({"size": [int(h), int(w)], "counts": expected}).tolist()
        assert encoded.rle["counts"] == expected and encoded.area == crop.area


@pytest.mark.parametrize("seed", range(4))
def test_polygons_rasterise_as_pycocotools(seed):
    """Random polygons, partly outside the image (within COCO's tolerance), with repeated vertices, explicitly
    closed rings, self-intersections and several overlapping parts: the window equals frPyObjects + merge."""
    rng = np.random.default_rng(seed)
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 200 if rng.random() < 0.2 else 40, 2))
        polygons = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 12))
            points = np.stack([rng.uniform(-1.5, w + 1.5, k), rng.uniform(-1.5, h + 1.5, k)], axis=1)
            if rng.random() < 0.3:
                points = np.round(points * 2) / 2
            if rng.random() < 0.2:
                points[1] = points[0]
            if rng.random() < 0.2:
                points = np.concatenate([points, points[:1]])
            polygons.append(points.ravel().tolist())
        margin = int(rng.integers(0, 4))
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w)))
        crop = Crop.from_segmentation(polygons, h, w, margin=margin)
        assert np.array_equal(crop.to_full(), expected), (h, w, polygons)
        if expected.any():
            rows, cols = np.nonzero(expected)
            assert (crop.x0, crop.y0) == (max(cols.min() - margin, 0), max(rows.min() - margin, 0))
            assert (crop.x1, crop.y1) == (min(cols.max() + 1 + margin, w), min(rows.max() + 1 + margin, h))
        else:
            assert crop.mask.shape == (0, 0)


def test_polygon_rasteriser_rejects_bad_coordinates():
    with pytest.raises(MaskError, match="non-finite"):
        Crop.from_segmentation([[0, 0, 5, float("nan"), 5, 5]], 10, 10)
    with pytest.raises(MaskError, match="even number"):
        Crop.from_segmentation([[0, 0, 5, 0, 5]], 10, 10)
    with pytest.raises(TypeError):
        Crop.from_segmentation([[0, 0, "5", 0, 5, 5]], 10, 10)


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_crops_equal_ann_to_mask_on_coco_tiny(coco_tiny, split):
    coco = COCO(str(coco_tiny / f"annotations/instances_{split}.json"))
    for ann in coco.dataset["annotations"]:
        image = coco.imgs[ann["image_id"]]
        full = coco.annToMask(ann)
        crop = Crop.from_segmentation(ann["segmentation"], image["height"], image["width"], margin=2)
        assert np.array_equal(crop.to_full(), full), ann["id"]
        assert crop.to_rle()["counts"] == _reference_rle(full), ann["id"]
        # the window is the tight box grown by the margin, clipped to the image
        x, y, bw, bh = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(full)))
        assert crop.x0 == max(int(x) - 2, 0) and crop.y0 == max(int(y) - 2, 0)


def test_any_nonzero_value_is_foreground():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        values = rng.choice(np.array([1, 7, 128, 255], np.uint8), size=(h, w))
        mask = np.where(rng.random((h, w)) < rng.random(), values, 0).astype(np.uint8)
        crop = Crop(mask, 0, 0, (h, w))  # as is: not normalised to {0, 1}
        assert crop.encode().rle["counts"] == _reference_rle((mask > 0).astype(np.uint8))


def test_empty_mask_round_trip():
    empty = Crop.from_full(np.zeros((7, 5), np.uint8))
    rle = empty.to_rle()
    assert rle["counts"] == _reference_rle(np.zeros((7, 5), np.uint8))
    decoded = Crop.from_rle(rle)
    assert decoded.mask.shape == (0, 0) and decoded.area == 0 and decoded.encode().bbox == [0.0, 0.0, 0.0, 0.0]


def test_uncompressed_counts_and_checks():
    counts = [0, 3, 5, 1, 200, 7, 34]
    rle = {"size": [10, 25], "counts": counts}
    mask = np.zeros(250, np.uint8)
    mask[0:3] = 1
    mask[8:9] = 1
    mask[209:216] = 1
    mask = mask.reshape(25, 10).T
    assert np.array_equal(Crop.from_rle(rle).to_full(), mask)
    assert Crop.from_rle(rle).to_rle()["counts"] == _reference_rle(mask)
    check_rle(rle)
    compressed = Crop.from_rle(rle).to_rle()
    with pytest.raises(MaskError, match="cover 250 pixels"):
        check_rle({"size": [10, 26], "counts": compressed["counts"]})
    with pytest.raises(MaskError, match="cover 249 pixels"):
        check_rle({"size": [10, 25], "counts": counts[:-1] + [33]})
    with pytest.raises(MaskError, match="truncated"):
        check_rle({"size": [1, 1], "counts": "0P"})  # 'P' = 0x20 set: a run that never ends
    with pytest.raises(MaskError, match="alphabet"):
        check_rle({"size": [1, 1], "counts": "1~"})


def test_full_height_windows_and_runs_across_columns():
    mask = np.zeros((6, 5), np.uint8)
    mask[4:, 1] = 1
    mask[:3, 2] = 1  # one run from the bottom of column 1 into column 2
    mask[:, 4] = 1  # the last pixel is foreground
    crop = Crop.from_full(mask)
    assert crop.to_rle()["counts"] == _reference_rle(mask)
    decoded = Crop.from_rle({"size": [6, 5], "counts": _reference_rle(mask)})
    assert (decoded.x0, decoded.y0, decoded.mask.shape) == (1, 0, (6, 4))
    assert np.array_equal(decoded.to_full(), mask)


@pytest.mark.parametrize("seed", range(3))
def test_compress_counts_writes_pycocotools_strings(seed):
    """Uncompressed RLE is compressed without pycocotools (kept off the noise path's imports): same string."""
    rng = np.random.default_rng(seed)
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        runs, left = [], h * w
        while left:
            run = int(min(left, rng.choice([0, 1, 2, rng.integers(0, 50), rng.integers(0, h * w + 1)])))
            run = run or (1 if runs and runs[-1] == 0 else 0)
            runs.append(run)
            left -= run
        expected = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"].decode("ascii")
        assert compress_counts(runs) == expected
    big = [0, 2**31 - 7, 3, 4]  # long runs and negative differences (run - the run two before)
    assert compress_counts(big) == mask_utils.frPyObjects({"size": [1, sum(big)], "counts": big}, 1, sum(big))["counts"].decode()
    with pytest.raises(TypeError):
        compress_counts([1, 2.5])
    with pytest.raises(OverflowError):
        compress_counts([0, 2**63])
