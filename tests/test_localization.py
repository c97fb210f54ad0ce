import numpy as np

from hf_noisy.masks import Crop
from hf_noisy.noise import spatial


def _ring(size=60):
    mask = np.zeros((size, size), np.uint8)
    mask[10:50, 10:50] = 1
    mask[22:38, 22:38] = 0  # a hole
    return mask


def test_localization_sigma_zero_keeps_polygon_and_fills_holes_by_default():
    crop = Crop.from_full(_ring())
    out = spatial.localize(crop, 0.0, np.random.default_rng(0))
    assert out.to_full()[30, 30] == 1  # hole filled, as the reference (outer contours only)
    assert out.to_full()[10:50, 10:50].all()
    kept = spatial.localize(crop, 0.0, np.random.default_rng(0), holes="keep")
    assert np.array_equal(kept.to_full(), _ring())


def test_localization_moves_boundary_by_about_sigma_and_is_seeded():
    crop = Crop.from_full(_ring(200) if False else np.pad(_ring(), 70))
    a = spatial.localize(crop, 4.0, np.random.default_rng(1))
    b = spatial.localize(crop, 4.0, np.random.default_rng(1))
    c = spatial.localize(crop, 4.0, np.random.default_rng(2))
    assert a.to_rle() == b.to_rle()
    assert a.to_rle() != c.to_rle()
    # a square's 4 vertices move ~N(0, 4): the area changes, but stays near the clean 1600 px
    assert a.area != 1600 and abs(a.area - 1600) < 800


def test_localization_clips_to_the_image():
    mask = np.zeros((20, 20), np.uint8)
    mask[0:5, 0:5] = 1
    out = spatial.localize(Crop.from_full(mask), 30.0, np.random.default_rng(3))
    full = out.to_full()
    assert full.shape == (20, 20)
    assert out.x0 >= 0 and out.y0 >= 0 and out.x1 <= 20 and out.y1 <= 20
