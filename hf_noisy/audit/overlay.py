"""Overlays of the most suspicious annotations: the annotation (left) beside the predictions that flagged it
(right), drawn in :mod:`hf_noisy.viz`'s style."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..fsutil import atomic_directory
from ..masks import Crop, encode, mask_iou, segmentation_to_rle
from ..viz import render_pair

__all__ = ["render_audit_overlays"]


def render_audit_overlays(audit: dict, gt: dict, results: list, image_dir: str | os.PathLike,
                          out_dir: str | os.PathLike, *, top: int = 20) -> list[Path]:
    """Write ``<out_dir>/<rank>_ann<id>.png`` for the ``top`` highest-scoring flagged annotations of ``audit``
    (the dict :func:`~hf_noisy.audit.audit_coco` returned for ``gt`` and ``results``; empty masks, which have
    nothing to draw, are left out); the folder is replaced as a whole. Left: the annotation as labelled (a recorded ``noise_op`` in brackets, ``*`` for a recorded class
    flip). Right: its matched prediction and the prediction behind a suggested class, each tagged with its score.
    Each picture is cut around the masks it shows and scaled up for small objects (see :func:`_zoom`).
    A missing image file is drawn on a grey canvas of the annotated size."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    images = {i["id"]: i for i in gt["images"]}
    anns = {a["id"]: a for a in gt["annotations"]}
    # an empty mask has nothing to draw (its row says so): the overlays show the next ones instead
    flagged = [row for row in audit["annotations"] if row["suspected"] != "none" and not _empty(anns[row["id"]], images)][:top]
    written = []
    with atomic_directory(out_dir, overwrite=True) as tmp:
        for rank, row in enumerate(flagged, 1):
            meta = images[row["image_id"]]
            picture = cv2.imread(str(Path(image_dir) / meta["file_name"]), cv2.IMREAD_COLOR)
            if picture is None or picture.shape[:2] != (meta["height"], meta["width"]):
                picture = np.full((meta["height"], meta["width"], 3), 128, np.uint8)
            size = (meta["height"], meta["width"])
            ann = anns[row["id"]]
            shown = [results[index] for index in _flagging_predictions(row, results, size)]
            masks = [Crop.from_segmentation(item["segmentation"], *size).to_full() for item in [ann, *shown]]
            picture, masks = _zoom(picture, masks)
            left = [{**ann, "segmentation": encode(masks[0])}]
            # viz prints a ``noise_op`` value in brackets after the name: here, the prediction's score
            right = [{"segmentation": encode(mask), "category_id": pred["category_id"], "noise_op": f"{pred['score']:.2f}"}
                     for pred, mask in zip(shown, masks[1:])]
            title = f"#{rank} ann {row['id']}: {row['suspected']} {row['score']:.2f}"
            picture = render_pair(picture, left, right, names, title, left_title="annotation")
            ok, png = cv2.imencode(".png", picture)
            name = f"{rank:03d}_ann{row['id']}.png"
            (Path(tmp) / name).write_bytes(png.tobytes())
            written.append(Path(out_dir) / name)
    return written


def _zoom(picture: np.ndarray, masks: list[np.ndarray], side: int = 480) -> tuple[np.ndarray, list[np.ndarray]]:
    """The picture and masks cut to the masks' joint box with a margin (half its size, at least 24 px), scaled
    up (nearest neighbour for masks, at most 4x) so that the longer side reaches ``side`` pixels."""
    ys, xs = np.nonzero(np.bitwise_or.reduce(masks))
    height, width = picture.shape[:2]
    margin = max(24, (xs.max() - xs.min()) // 2, (ys.max() - ys.min()) // 2)
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + margin + 1, width)
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + margin + 1, height)
    scale = min(4.0, max(1.0, side / max(x1 - x0, y1 - y0)))
    out_size = (int(round((x1 - x0) * scale)), int(round((y1 - y0) * scale)))
    picture = cv2.resize(picture[y0:y1, x0:x1], out_size, interpolation=cv2.INTER_LINEAR)
    masks = [cv2.resize(m[y0:y1, x0:x1], out_size, interpolation=cv2.INTER_NEAREST) for m in masks]
    return picture, masks


def _empty(ann: dict, images: dict) -> bool:
    image = images[ann["image_id"]]
    return Crop.from_segmentation(ann["segmentation"], image["height"], image["width"]).area == 0


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
