"""Clean-vs-noisy overlays (like the paper's Fig. 3): clean left, noisy right, a legend below.

Fill colour is the class. On the noisy side, an instance a noise op changed has a thick outline in the op's
colour and the op in brackets after its name; ``*`` after a name marks a flipped class. The annotation-error ops
read at a glance: a clean instance with no output (``missing``, a ``merge``'s removed neighbour, or a mask noise
emptied) is a dashed red box labelled ``missing`` / ``merged into <id>`` / ``emptied``; a ``duplicate``'s copy
has an arrow from its source; a crowd region (after ``crowd_flip`` or not) has a dashed white outline and
``(crowd)`` in its label. The legend lists the classes, ops and marks the picture shows, and how many labels
found no room.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..fsutil import atomic_write_bytes, check_output
from ..masks import Crop
from .panel import RED, BoxMark, Item, LegendEntry, compose, draw_panel
from .text import text_px

__all__ = ["OP_COLOURS", "category_colour", "changed", "instance_label", "legend_entries", "op_colour",
           "render_overlays", "render_pair"]

#: Outline colour (BGR) of each noise op on the noisy side; an op not listed gets a grey-white.
OP_COLOURS: dict[str, tuple[int, int, int]] = {
    "dilate": (0, 140, 255), "erode": (255, 255, 0), "opening": (200, 160, 0), "localization": (255, 0, 255),
    "approximation": (0, 255, 255), "duplicate": (255, 255, 255), "split": (0, 255, 128), "merge": (200, 80, 160),
    "box": (255, 128, 0), "shift": (180, 105, 255), "vertex_dropout": (0, 200, 180), "crowd_flip": (230, 230, 230),
}


def op_colour(op: str) -> tuple[int, int, int]:
    """The outline colour (BGR) of noise op ``op`` (:data:`OP_COLOURS`; grey-white for an op not listed)."""
    return OP_COLOURS.get(op, (200, 200, 200))


def category_colour(category_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per category id (hue ``47 * id`` mod 180 in OpenCV's HSV)."""
    hsv = np.uint8([[[(category_id * 47) % 180, 200, 235]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def changed(ann: dict) -> bool:
    """Whether noise changed ``ann``: a recorded ``noise_op`` other than ``"none"``, or a flipped class."""
    return ann.get("noise_op") not in (None, "none") or bool(ann.get("class_flipped"))


def instance_label(ann: dict, names: dict[int, str]) -> str:
    """``name`` (the class), then ``*`` after a flipped class, `` [op]`` after a recorded noise op, `` (crowd)``."""
    label = names.get(ann["category_id"], str(ann["category_id"]))
    if ann.get("class_flipped"):
        label += "*"
    if changed(ann) and ann.get("noise_op") not in (None, "none"):
        label += f" [{ann['noise_op']}]"
    if ann.get("iscrowd"):
        label += " (crowd)"
    return label


def _items(annotations: Sequence[dict], names: dict[int, str], height: int, width: int, scale: int, *,
           noisy: bool) -> list[Item]:
    items = []
    for ann in annotations:
        op = ann.get("noise_op")
        outline = op_colour(op) if noisy and op not in (None, "none") else None
        mask = Crop.from_segmentation(ann["segmentation"], height, width).to_full()
        if scale > 1:
            mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
        items.append(Item(mask,
                          category_colour(ann["category_id"]), instance_label(ann, names), outline=outline,
                          crowd=bool(ann.get("iscrowd")), key=ann.get("id"), first=noisy and changed(ann)))
    return items


def _removed(clean: Sequence[dict], noisy: Sequence[dict], height: int, width: int) -> list[tuple[dict, str]]:
    """The clean annotations with no output, each with its label: ``missing``, ``merged into <id>``, or
    ``emptied [op]`` (kept with an empty mask)."""
    kept = {ann["id"] for ann in noisy}
    merged_into = {source: ann["id"] for ann in noisy if ann.get("noise_op") == "merge"
                   for source in ann.get("noise_source_ids", [])[1:]}
    emptied = {ann["id"]: ann.get("noise_op") for ann in noisy
               if Crop.from_segmentation(ann["segmentation"], height, width).area == 0}
    removed = []
    for ann in clean:
        if ann["id"] in emptied:
            op = emptied[ann["id"]]
            removed.append((ann, "emptied" + (f" [{op}]" if op not in (None, "none") else "")))
        elif ann["id"] not in kept:
            removed.append((ann, f"merged into {merged_into[ann['id']]}" if ann["id"] in merged_into else "missing"))
    return removed


def _changed_only(clean: Sequence[dict], noisy: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The changed noisy annotations (with the sources they name, for context) and the clean ones they come from,
    or that have no output."""
    shown = [ann for ann in noisy if changed(ann)]
    sources = {source for ann in shown for source in ann.get("noise_source_ids") or ()}
    shown_ids = {ann["id"] for ann in shown} | sources
    kept = {ann["id"] for ann in noisy}
    return ([ann for ann in clean if ann["id"] in shown_ids or ann["id"] not in kept],
            [ann for ann in noisy if ann["id"] in shown_ids])


def legend_entries(clean: Sequence[dict], noisy: Sequence[dict], names: dict[int, str], *, marks: bool = False,
                   arrows: bool = False, hidden: int = 0, changed_only: bool = False) -> list[LegendEntry]:
    """The legend of a clean-vs-noisy picture of these annotations: the classes (fill colours), the noise ops
    (outline colours), and what the picture shows of flips (``*``), removed instances (``marks``), duplicates'
    ``arrows``, crowd regions, left-out labels (``hidden``) and the ``changed_only`` filter."""
    entries = [LegendEntry("none", "changed instances only:" if changed_only else "fill = class:")]
    if changed_only:
        entries.append(LegendEntry("none", "fill = class:"))
    categories = sorted({ann["category_id"] for ann in [*clean, *noisy]}, key=lambda c: (names.get(c, str(c)), c))
    entries += [LegendEntry("fill", names.get(c, str(c)), category_colour(c)) for c in categories]
    ops = sorted({ann["noise_op"] for ann in noisy if ann.get("noise_op") not in (None, "none")})
    if ops:
        entries.append(LegendEntry("none", "outline, [op] = noise op:"))
        entries += [LegendEntry("outline", op, op_colour(op)) for op in ops]
    if any(ann.get("class_flipped") for ann in noisy):
        entries.append(LegendEntry("none", "* = class flipped"))
    if marks:
        entries.append(LegendEntry("dashed", "clean instance with no output (missing / merged / emptied)", RED))
    if arrows:
        entries.append(LegendEntry("arrow", "duplicate: from source to copy"))
    if any(ann.get("iscrowd") for ann in [*clean, *noisy]):
        entries.append(LegendEntry("crowd", "crowd region"))
    if hidden:
        entries.append(LegendEntry("none", f"{hidden} label{'s' * (hidden > 1)} left out (no room)"))
    return entries


def render_pair(image: np.ndarray, clean: Sequence[dict], noisy: Sequence[dict], names: dict[int, str],
                title: str = "noisy", left_title: str = "clean", mark_removed: bool = False, *,
                changed_only: bool = False, legend: bool = True, min_side: int = 400) -> np.ndarray:
    """Side-by-side BGR picture: ``clean`` annotations on the left (titled ``left_title``), ``noisy`` on the right,
    the titles in a strip above and (with ``legend``) a legend strip below; the picture itself is not covered.

    Marks are as the module docstring says. With ``mark_removed`` (both sides annotations with ids), a clean
    instance that no noisy annotation has the id of or names in ``noise_source_ids`` is marked on the right (its
    clean box, dashed): ``missing`` (left out, or dropped as empty) or ``merged into <id>``; one whose noisy mask
    is empty, ``emptied [op]``. With ``changed_only``, only the noisy
    annotations noise changed (:func:`changed`), the sources they name and their clean counterparts are drawn.
    Labels are :func:`~hf_noisy.viz.text.text_px` pixels high, placed without overlap inside the picture. A
    picture whose shorter side is under ``min_side`` pixels is drawn at the smallest whole scale that reaches it
    (so that labels cover less of small pictures).
    """
    height, width = image.shape[:2]
    scale = -(-min_side // min(height, width)) if min(height, width) < min_side else 1
    if changed_only:
        clean, noisy = _changed_only(clean, noisy)
    marks = []
    if mark_removed:
        for ann, label in _removed(clean, noisy, height, width):
            if ann.get("bbox"):
                x, y, w, h = ann["bbox"]
                box = (int(x), int(y), int(np.ceil(x + w)), int(np.ceil(y + h)))
                marks.append(BoxMark(tuple(v * scale for v in box), label))
    arrows = [(ann["noise_source_ids"][0], ann["id"]) for ann in noisy  # a duplicate's copy: from its source
              if ann.get("noise_op") == "duplicate" and ann.get("noise_source_ids")
              and ann.get("id") != ann["noise_source_ids"][0]]
    if scale > 1:
        image = cv2.resize(image, (width * scale, height * scale), interpolation=cv2.INTER_LINEAR)
    px = text_px(*image.shape[:2])
    left = draw_panel(image, _items(clean, names, height, width, scale, noisy=False), title=left_title, px=px)
    right = draw_panel(image, _items(noisy, names, height, width, scale, noisy=True), marks, arrows, title=title,
                       px=px)
    entries = legend_entries(clean, noisy, names, marks=bool(marks), arrows=bool(arrows),
                             hidden=left.hidden + right.hidden, changed_only=changed_only) if legend else []
    return compose([left, right], entries, px=px)


def render_overlays(
    clean: dict,
    noisy: dict,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    num_images: int = 4,
    image_ids: Sequence[int] | None = None,
    title: str = "noisy",
    overwrite: bool = False,
    changed_only: bool = False,
) -> list[Path]:
    """Write ``<out_dir>/<image_id>.png`` overlays (:func:`render_pair`) for the first ``num_images`` images (or
    ``image_ids``); ``changed_only`` draws only what noise changed.

    Every image is read before anything is written: a missing ``image_dir``, or an image that is missing,
    unreadable or not of the annotated size, raises :class:`~hf_noisy.errors.HfNoisyError` naming it. Existing
    PNG files are replaced only with ``overwrite``, and never one inside ``image_dir``.
    """
    from ..errors import HfNoisyError

    if not Path(image_dir).is_dir():
        raise HfNoisyError(f"{image_dir}: no such folder (the images' folder)")
    names = {c["id"]: c["name"] for c in clean["categories"]}
    images = {i["id"]: i for i in clean["images"]}
    wanted = list(image_ids) if image_ids is not None else [i["id"] for i in clean["images"][:num_images]]
    unknown = [i for i in wanted if i not in images]
    if unknown:
        raise HfNoisyError(f"image id(s) {unknown} are not in the clean file")
    by_image: dict[int, tuple[list, list]] = {i: ([], []) for i in wanted}
    for side, data in enumerate((clean, noisy)):
        for ann in data["annotations"]:
            if ann["image_id"] in by_image:
                by_image[ann["image_id"]][side].append(ann)
    targets = [check_output(Path(out_dir) / f"{image_id}.png", [image_dir], overwrite=overwrite) for image_id in wanted]
    pictures = {}
    for image_id in wanted:
        meta = images[image_id]
        file = Path(image_dir) / meta["file_name"]
        if not file.is_file():
            raise HfNoisyError(f"{file}: no such file (image {image_id})")
        picture = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if picture is None:
            raise HfNoisyError(f"{file}: not a readable image (image {image_id})")
        if picture.shape[:2] != (meta["height"], meta["width"]):
            raise HfNoisyError(f"{file}: {picture.shape[1]}x{picture.shape[0]} pixels, but image {image_id} is "
                               f"annotated as {meta['width']}x{meta['height']}")
        pictures[image_id] = picture
    written = []
    for image_id, path in zip(wanted, targets):
        picture = render_pair(pictures[image_id], *by_image[image_id], names, title, mark_removed=True,
                              changed_only=changed_only)
        ok, png = cv2.imencode(".png", picture)
        atomic_write_bytes(path, png.tobytes(), overwrite=overwrite)
        written.append(path)
    return written
