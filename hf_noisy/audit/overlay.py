"""Overlays of the most suspicious annotations: the annotation (left) beside the predictions that flagged it
(right), drawn with :mod:`hf_noisy.viz`'s panels, labels and legend."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..fsutil import atomic_directory
from ..masks import Crop, mask_iou, segmentation_to_rle
from ..viz.pair import category_colour, instance_label, op_colour
from ..viz.panel import BoxMark, Item, LegendEntry, compose, draw_panel
from ..viz.text import text_px

__all__ = ["render_audit_overlays"]


def render_audit_overlays(audit: dict, gt: dict, results: list, image_dir: str | os.PathLike,
                          out_dir: str | os.PathLike, *, top: int = 20) -> list[Path]:
    """Write ``<out_dir>/<rank>_ann<id>.png`` for the first ``top`` flagged annotations of ``audit`` (the dict
    :func:`~hf_noisy.audit.audit_coco` returned for ``gt`` and ``results``); the folder is replaced as a whole.

    ``rank`` is the annotation's 1-based place in ``audit["annotations"]`` (sorted by descending score), also
    printed in the picture's title, so overlay ``#k`` is row ``k`` of the audit JSON. Left: the annotation as
    labelled (a recorded ``noise_op`` in brackets and as the outline colour, ``*`` after a recorded class flip).
    Right: its matched prediction and the prediction behind a suggested class, each with its score. Each picture
    is cut around what it shows and scaled up for small objects (see :func:`_zoom`); a legend below names the
    classes and gives the audit's reason. An annotation with an empty mask is still drawn under its rank: its
    box as a dashed outline when it has one, and the title says the mask is empty. A missing image file is drawn
    on a grey canvas of the annotated size."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    images = {i["id"]: i for i in gt["images"]}
    anns = {a["id"]: a for a in gt["annotations"]}
    flagged = [(rank, row) for rank, row in enumerate(audit["annotations"], 1) if row["suspected"] != "none"][:top]
    written = []
    with atomic_directory(out_dir, overwrite=True) as tmp:
        for rank, row in flagged:
            meta = images[row["image_id"]]
            picture = cv2.imread(str(Path(image_dir) / meta["file_name"]), cv2.IMREAD_COLOR)
            if picture is None or picture.shape[:2] != (meta["height"], meta["width"]):
                picture = np.full((meta["height"], meta["width"], 3), 128, np.uint8)
            name = f"{rank:03d}_ann{row['id']}.png"
            ok, png = cv2.imencode(".png", _render(rank, row, anns[row["id"]], results, picture, names))
            (Path(tmp) / name).write_bytes(png.tobytes())
            written.append(Path(out_dir) / name)
    return written


def _render(rank: int, row: dict, ann: dict, results: list, picture: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """One audit overlay: the annotation (left) and the predictions that flag it (right), titled and with a legend."""
    size = picture.shape[:2]
    shown = [results[index] for index in _flagging_predictions(row, results, size)]
    masks = [Crop.from_segmentation(item["segmentation"], *size).to_full() for item in [ann, *shown]]
    box = None
    if not masks[0].any() and ann.get("bbox") and ann["bbox"][2] * ann["bbox"][3] > 0:
        x, y, w, h = ann["bbox"]
        box = (int(x), int(y), int(np.ceil(x + w)), int(np.ceil(y + h)))
    outline = np.zeros(size, np.uint8)
    if box is not None:
        outline[box[1] : box[3], box[0] : box[2]] = 1
    picture, masks, place = _zoom(picture, masks, outline)
    marks = []
    if box is not None:
        (x0, y0), scale = place
        marks.append(BoxMark(tuple(int(round((v - o) * scale)) for v, o in zip(box, (x0, y0, x0, y0))),
                             "empty mask: its bbox"))
    op = ann.get("noise_op")
    left = [Item(masks[0], category_colour(ann["category_id"]), instance_label(ann, names),
                 outline=op_colour(op) if op not in (None, "none") else None,
                 crowd=bool(ann.get("iscrowd")))]
    right = [Item(mask, category_colour(pred["category_id"]),
                  f"{names.get(pred['category_id'], pred['category_id'])} {pred['score']:.2f}")
             for pred, mask in zip(shown, masks[1:])]
    empty = "" if masks[0].any() else " - empty mask" + (", its bbox dashed" if box else ": nothing to draw")
    px = text_px(*picture.shape[:2])
    panels = [draw_panel(picture, left, marks, title=f"#{rank} ann {row['id']}{empty}", px=px),
              draw_panel(picture, right, title=f"predictions: {row['suspected']} {row['score']:.2f}", px=px)]
    categories = sorted({ann["category_id"], *(pred["category_id"] for pred in shown)},
                        key=lambda c: (names.get(c, str(c)), c))
    legend = [LegendEntry("none", f"#{rank} = rank in the audit JSON; left: as labelled, right: predictions (score);"),
              *(LegendEntry("fill", names.get(c, str(c)), category_colour(c)) for c in categories)]
    if op not in (None, "none"):
        legend.append(LegendEntry("outline", f"[{op}] = recorded noise op", op_colour(op)))
    if ann.get("class_flipped"):
        legend.append(LegendEntry("none", "* = class flipped (recorded)"))
    if row.get("reason"):
        legend.append(LegendEntry("none", f"why: {row['reason']}"))
    hidden = sum(panel.hidden for panel in panels)
    if hidden:
        legend.append(LegendEntry("none", f"{hidden} label{'s' * (hidden > 1)} left out (no room)"))
    return compose(panels, legend, px=px)


def _zoom(picture: np.ndarray, masks: list[np.ndarray], extra: np.ndarray, side: int = 480
          ) -> tuple[np.ndarray, list[np.ndarray], tuple[tuple[int, int], float]]:
    """The picture and masks cut to the joint box of the masks and ``extra`` (a mask too) with a margin (half its
    size, at least 24 px), or the whole picture when all are empty, scaled up (nearest neighbour for masks, at
    most 4x) so that the longer side reaches ``side`` pixels; with the cut's top-left corner and the scale."""
    height, width = picture.shape[:2]
    ys, xs = np.nonzero(np.bitwise_or.reduce([*masks, extra]))
    if len(xs):
        margin = max(24, (xs.max() - xs.min()) // 2, (ys.max() - ys.min()) // 2)
        x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width)
        y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height)
    else:
        x0, y0, x1, y1 = 0, 0, width, height
    scale = min(4.0, max(1.0, side / max(x1 - x0, y1 - y0)))
    out_size = (int(round((x1 - x0) * scale)), int(round((y1 - y0) * scale)))
    picture = cv2.resize(picture[y0:y1, x0:x1], out_size, interpolation=cv2.INTER_LINEAR)
    masks = [cv2.resize(m[y0:y1, x0:x1], out_size, interpolation=cv2.INTER_NEAREST) for m in masks]
    return picture, masks, ((x0, y0), scale)


def _flagging_predictions(row: dict, results: list, size: tuple[int, int]) -> list[int]:
    """Indices of the results shown beside an annotation: its match, and the best prediction of the
    suggested class on the same image overlapping the same place (when it is another one)."""
    shown = [row["prediction"]] if row["prediction"] is not None else []
    suggested = row["suggested_category_id"]
    if suggested is not None and (not shown or results[shown[0]]["category_id"] != suggested):
        height, width = size

        def rle(index: int) -> dict:
            return segmentation_to_rle(results[index]["segmentation"], height, width)

        anchor = rle(shown[0]) if shown else None
        best = None
        for index, pred in enumerate(results):
            if pred["image_id"] != row["image_id"] or pred["category_id"] != suggested:
                continue
            if anchor is not None and mask_iou(rle(index), anchor) < 0.3:
                continue
            if best is None or pred["score"] > results[best]["score"]:
                best = index
        if best is not None:
            shown.append(best)
    return shown
