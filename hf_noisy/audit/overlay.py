"""Overlays of the most suspicious annotations: the annotation (left) beside the predictions that flagged it
(right), drawn in :mod:`hf_noisy.viz`'s style."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..fsutil import atomic_directory
from ..masks import mask_iou, segmentation_to_rle
from ..viz import render_pair

__all__ = ["render_audit_overlays"]


def render_audit_overlays(audit: dict, gt: dict, results: list, image_dir: str | os.PathLike,
                          out_dir: str | os.PathLike, *, top: int = 20) -> list[Path]:
    """Write ``<out_dir>/<rank>_ann<id>.png`` for the ``top`` highest-scoring flagged annotations of ``audit``
    (the dict :func:`~hf_noisy.audit.audit_coco` returned for ``gt`` and ``results``); the folder is replaced
    as a whole. Left: the annotation as labelled (a recorded ``noise_op`` in brackets, ``*`` for a recorded class
    flip). Right: its matched prediction and the prediction behind a suggested class, each tagged with its score.
    A missing image file is drawn on a grey canvas of the annotated size."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    images = {i["id"]: i for i in gt["images"]}
    anns = {a["id"]: a for a in gt["annotations"]}
    flagged = [row for row in audit["annotations"] if row["suspected"] != "none"][:top]
    written = []
    with atomic_directory(out_dir, overwrite=True) as tmp:
        for rank, row in enumerate(flagged, 1):
            meta = images[row["image_id"]]
            picture = cv2.imread(str(Path(image_dir) / meta["file_name"]), cv2.IMREAD_COLOR)
            if picture is None or picture.shape[:2] != (meta["height"], meta["width"]):
                picture = np.full((meta["height"], meta["width"], 3), 128, np.uint8)
            shown = []
            for index in _flagging_predictions(row, results, (meta["height"], meta["width"])):
                pred = results[index]
                # viz prints a ``noise_op`` value in brackets after the name: here, the prediction's score
                shown.append({"segmentation": pred["segmentation"], "category_id": pred["category_id"],
                              "noise_op": f"{pred['score']:.2f}"})
            title = f"#{rank} ann {row['id']}: {row['suspected']} {row['score']:.2f}"
            picture = render_pair(picture, [anns[row["id"]]], shown, names, title, left_title="annotation")
            ok, png = cv2.imencode(".png", picture)
            name = f"{rank:03d}_ann{row['id']}.png"
            (Path(tmp) / name).write_bytes(png.tobytes())
            written.append(Path(out_dir) / name)
    return written


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
