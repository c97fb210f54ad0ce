"""hf_noisy.viz: the label placer (a pure function), legible labels inside the picture, the legend, the
changed-only filter, and byte-identical output; ``hf-noisy show --changed-only``."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from hf_noisy.cli import main
from hf_noisy.masks import encode
from hf_noisy.viz import place_labels, render_overlays, render_pair
from hf_noisy.viz.pair import category_colour, legend_entries
from hf_noisy.viz.panel import Item, draw_panel, title_height
from hf_noisy.viz.text import load_font, text_px

H, W = 420, 560
NAMES = {1: "cat", 2: "dog", 3: "traffic light"}


def _apart(boxes: list) -> bool:
    return not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                   for a, b in itertools.combinations(boxes, 2))


def test_placer_keeps_labels_inside_the_bounds_and_apart():
    rng = np.random.default_rng(0)
    targets, sizes = [], []
    for _ in range(80):
        x, y = int(rng.integers(0, 320)), int(rng.integers(0, 240))
        targets.append((x, y, min(x + int(rng.integers(4, 60)), 320), min(y + int(rng.integers(4, 60)), 240)))
        sizes.append((int(rng.integers(20, 130)), int(rng.integers(12, 20))))
    placements = place_labels(targets, sizes, (320, 240))
    assert placements == place_labels(targets, sizes, (320, 240))  # deterministic
    placed = [p.box for p in placements if p is not None]
    assert 30 <= len(placed) < 80  # most find room, but not all of 80 on 320 x 240
    for p, (w, h) in zip(placements, sizes):
        if p is not None:
            x0, y0, x1, y1 = p.box
            assert 0 <= x0 and 0 <= y0 and x1 <= 320 and y1 <= 240 and (x1 - x0, y1 - y0) == (w, h)
    assert _apart(placed)


def test_placer_tries_the_spots_next_to_the_target_in_order_then_moves_with_a_leader():
    target = (100, 100, 150, 150)
    placements = place_labels([target] * 10, [(40, 12)] * 10, (400, 300), gap=2)
    # above, below, inside top-left, centred, right, left; the right-aligned ones above and below now overlap
    assert [p.box[:2] for p in placements[:6]] == [(100, 86), (100, 152), (102, 102), (105, 119), (152, 100), (58, 100)]
    assert all(p.box[2:] == (p.box[0] + 40, p.box[1] + 12) for p in placements)
    assert not any(p.leader for p in placements[:6]) and all(p.leader for p in placements[6:])
    assert _apart([p.box for p in placements])


def test_placer_shifts_labels_inside_at_the_edges_and_leaves_out_what_cannot_fit():
    right, top = place_labels([(300, 50, 320, 70), (10, 0, 50, 20)], [(100, 14), (60, 14)], (320, 240))
    assert right.box[2] <= 320 and right.box[0] == 220  # shifted left, not cut at the right edge
    assert top.box[1] >= 0
    assert place_labels([(0, 0, 10, 10)], [(400, 14)], (320, 240)) == [None]  # wider than the picture
    blocked = [(0, 0, 320, 240)]  # everything taken: left out, whatever the reach
    assert place_labels([(100, 100, 120, 120)], [(30, 12)], (320, 240), taken=blocked) == [None]
    crowd = place_labels([(100, 100, 110, 110)] * 40, [(60, 14)] * 40, (320, 240), reach=20)
    assert crowd.count(None) > 0 and all(p is None or not p.leader or
                                         max(0, 100 - p.box[2], p.box[0] - 110, 100 - p.box[3], p.box[1] - 110) <= 20
                                         for p in crowd)


def _disc(cx: int, cy: int, r: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    return mask


def test_panel_labels_are_scaled_whole_inside_and_apart():
    image = np.full((H, W, 3), 90, np.uint8)
    items = [Item(_disc(x, y, 14), category_colour(1 + k % 3), "traffic light [localization] *")
             for k, (x, y) in enumerate(itertools.product(range(30, W, 70), range(30, H, 60)))]
    items.append(Item(_disc(W - 8, H // 2, 6), category_colour(1), "ring [localization]"))  # at the right edge
    panel = draw_panel(image, items)
    px = text_px(H, W)
    assert px == 12 and text_px(1000, 1500) == 22  # 2.2% of the shorter side, at least 12
    font = load_font(px)
    boxes = [label.box for label in panel.labels]
    assert len(boxes) + panel.hidden == len(items) and len(boxes) >= 20
    assert all(0 <= b[0] and 0 <= b[1] and b[2] <= W and b[3] <= H for b in boxes) and _apart(boxes)
    for label in panel.labels:
        assert font.getlength(label.text) < label.box[2] - label.box[0]
    edge = next(label for label in panel.labels if label.text.startswith("ring"))
    assert edge.text == "ring [localization]" and edge.box[2] <= W  # whole, not cut at the edge
    # the text is drawn: light pixels inside a dark label box
    x0, y0, x1, y1 = edge.box
    assert (panel.picture[y0:y1, x0:x1] > 200).all(axis=2).sum() > 20


def _scene() -> tuple[np.ndarray, list[dict], list[dict]]:
    """A grey picture with three clean discs; noisy: the first dilated, the second flipped, the third unchanged,
    and a fourth clean disc left out (missing)."""
    image = np.full((H, W, 3), 100, np.uint8)
    discs = [(120, 120, 50), (300, 150, 60), (430, 300, 45), (150, 320, 40)]
    clean = [{"id": k + 1, "image_id": 1, "category_id": 1 + k % 2, "segmentation": encode(_disc(*d)), "iscrowd": 0,
              "bbox": [d[0] - d[2], d[1] - d[2], 2 * d[2], 2 * d[2]], "area": float(_disc(*d).sum())}
             for k, d in enumerate(discs)]
    dilated = cv2.dilate(_disc(*discs[0]), np.ones((9, 9), np.uint8))
    noisy = [{**clean[0], "segmentation": encode(dilated), "noise_op": "dilate", "class_flipped": False},
             {**clean[1], "category_id": 3, "noise_op": "none", "class_flipped": True},
             {**clean[2], "noise_op": "none", "class_flipped": False}]
    return image, clean, noisy


def test_legend_explains_classes_ops_flips_and_marks():
    image, clean, noisy = _scene()
    texts = [e.text for e in legend_entries(clean, noisy, NAMES, marks=True)]
    assert {"cat", "dog", "traffic light", "dilate", "* = class flipped"} <= set(texts)
    assert any("missing" in t for t in texts)
    assert "* = class flipped" not in [e.text for e in legend_entries(clean, noisy[:1], NAMES)]
    picture = render_pair(image, clean, noisy, NAMES, mark_removed=True)
    top = title_height(text_px(H, W))
    assert picture.shape[1] == 2 * W + 6 and picture.shape[0] > top + H + 20  # a legend strip below
    strip = picture[top + H :]
    assert (strip > 200).all(axis=2).sum() > 200  # its text
    assert (strip == category_colour(3)).all(axis=2).sum() >= 25  # the flipped class's swatch
    assert (picture[top : top + H, :W] != 100).any(axis=2).sum() > 0  # the picture itself not covered by strips
    assert (picture[top + 5, 5] == 100).all() and (picture[top + H - 5, W - 5] == 100).all()


def test_changed_only_draws_only_what_noise_changed():
    image, clean, noisy = _scene()
    top = title_height(text_px(H, W))
    full = render_pair(image, clean, noisy, NAMES, mark_removed=True)
    only = render_pair(image, clean, noisy, NAMES, mark_removed=True, changed_only=True)
    for x, y in ((430, 300),):  # the unchanged disc: drawn by default, not with changed_only, on both sides
        for offset in (0, W + 6):
            assert (full[top + y, offset + x] != 100).any()
            assert (only[top + y, offset + x] == 100).all()
    for x, y in ((120, 120), (300, 150)):  # the dilated and the flipped disc: drawn on both sides
        for offset in (0, W + 6):
            assert (only[top + y, offset + x] != 100).any()
    assert (only[top + 320, 150] != 100).any()  # the missing one's clean side too
    assert "changed instances only:" in [e.text for e in legend_entries(clean, noisy, NAMES, changed_only=True)]


@pytest.fixture
def files(tmp_path):
    image, clean, noisy = _scene()
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    meta = {"id": 1, "file_name": "a.png", "height": H, "width": W}
    categories = [{"id": k, "name": v} for k, v in NAMES.items()]
    clean_data = {"images": [meta], "annotations": clean, "categories": categories}
    noisy_data = {"images": [meta], "annotations": noisy, "categories": categories}
    (tmp_path / "clean.json").write_text(json.dumps(clean_data))
    (tmp_path / "noisy.json").write_text(json.dumps(noisy_data))
    return tmp_path, clean_data, noisy_data


def test_same_input_gives_the_same_png_bytes_and_changed_only_in_python_and_cli(files, capsys):
    tmp_path, clean, noisy = files
    first = render_overlays(clean, noisy, tmp_path / "images", tmp_path / "a")[0].read_bytes()
    assert render_overlays(clean, noisy, tmp_path / "images", tmp_path / "b")[0].read_bytes() == first
    only = render_overlays(clean, noisy, tmp_path / "images", tmp_path / "c", changed_only=True)[0].read_bytes()
    assert only != first
    assert main(["show", str(tmp_path / "clean.json"), str(tmp_path / "noisy.json"), "--images",
                 str(tmp_path / "images"), "-o", str(tmp_path / "d"), "--changed-only"]) == 0
    assert (tmp_path / "d" / "1.png").read_bytes() == only


def test_small_pictures_are_drawn_at_a_whole_scale():
    image, clean, noisy = _scene()
    small = cv2.resize(image, (W // 2, H // 2))
    half = [{**a, "segmentation": encode(cv2.resize(_disc(*c), (W // 2, H // 2), interpolation=cv2.INTER_NEAREST))}
            for a, c in zip(noisy, [(120, 120, 50), (300, 150, 60), (430, 300, 45)])]
    picture = render_pair(small, half, half, NAMES)
    assert picture.shape[1] == 2 * W + 6  # 280 x 210 drawn at 2x (shorter side under 400)
    assert render_pair(small, half, half, NAMES, min_side=1).shape[1] == W + 6


def test_a_mask_noise_emptied_is_a_dashed_box_where_it_was():
    from hf_noisy.viz.panel import RED

    image, clean, noisy = _scene()
    emptied = {**noisy[2], "segmentation": encode(np.zeros((H, W), np.uint8)), "noise_op": "erode",
               "bbox": [0, 0, 0, 0], "area": 0}
    top = title_height(text_px(H, W))
    x0, y0 = clean[2]["bbox"][:2]
    for marked in (True, False):
        picture = render_pair(image, clean[:3], [*noisy[:2], emptied], NAMES, mark_removed=marked)
        edge = picture[top + y0, W + 6 + x0 : W + 6 + x0 + 5]
        assert (edge == RED).all(axis=1).any() == marked
