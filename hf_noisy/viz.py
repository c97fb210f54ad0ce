"""Clean-vs-noisy overlays (like the paper's Fig. 3): one PNG per image, clean left, noisy right.

The annotation-error ops are drawn so that they read at a glance on the noisy side: a clean instance with no
output (``missing``, or a ``merge``'s removed neighbour) as a dashed red box labelled ``missing`` / ``merged
into <id>``; an added instance (a ``duplicate``'s copy, a ``split``'s second part) in a shifted hue with a
thick outline, and for a copy an arrow from its source; a crowd region (after ``crowd_flip`` or not) with a
dashed outline and ``(crowd)`` in its label.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .fsutil import atomic_write_bytes, check_output
from .masks import Crop

__all__ = ["render_pair", "render_overlays"]


def _colour(category_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per category id."""
    hue = (category_id * 47) % 180
    hsv = np.uint8([[[hue, 200, 235]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


_RED = (40, 40, 230)  # BGR


def _added(ann: dict) -> bool:
    """Whether ``ann`` is an instance an op added (its id is not the one it comes from)."""
    sources = ann.get("noise_source_ids") or [ann.get("id")]
    return ann.get("noise_op") in ("duplicate", "split") and ann.get("id") != sources[0]


def _dashed_rectangle(out: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: tuple, dash: int = 5) -> None:
    for xa in range(x0, x1, 2 * dash):
        for y in (y0, y1):
            cv2.line(out, (xa, y), (min(xa + dash, x1), y), colour, 1)
    for ya in range(y0, y1, 2 * dash):
        for x in (x0, x1):
            cv2.line(out, (x, ya), (x, min(ya + dash, y1)), colour, 1)


def _draw(image: np.ndarray, annotations: Sequence[dict], names: dict[int, str], title: str,
          removed: Sequence[tuple[dict, str]] = ()) -> np.ndarray:
    height, width = image.shape[:2]
    out = image.copy()
    centres: dict[int, tuple[int, int]] = {}
    for ann in annotations:
        full = Crop.from_segmentation(ann["segmentation"], height, width).to_full()
        added = _added(ann)
        colour = np.array(_colour(ann["category_id"] + (19 if added else 0)), float)
        region = full.astype(bool)
        out[region] = (0.45 * out[region] + 0.55 * colour).astype(np.uint8)
        contours, _ = cv2.findContours(full, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        if ann.get("iscrowd"):  # crowd regions: a dashed outline
            for contour in contours:
                for start in range(0, len(contour), 8):
                    cv2.polylines(out, [contour[start : start + 4]], False, (255, 255, 255), 1)
        else:
            cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 2 if added else 1)
        if region.any():
            ys, xs = np.nonzero(full)
            centres[ann["id"]] = (int(xs.mean()), int(ys.mean()))
            label = names.get(ann["category_id"], str(ann["category_id"]))
            op = ann.get("noise_op")
            if op and op != "none":
                label += f" [{op}]"
            if ann.get("iscrowd"):
                label += " (crowd)"
            if ann.get("class_flipped"):
                label += " *"
            cv2.putText(out, label, (int(xs.min()), max(int(ys.min()) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    for ann in annotations:  # a duplicate's copy: an arrow from its source
        if ann.get("noise_op") == "duplicate" and ann["id"] in centres and ann["noise_source_ids"][0] in centres:
            cv2.arrowedLine(out, centres[ann["noise_source_ids"][0]], centres[ann["id"]], (255, 255, 255), 1,
                            cv2.LINE_AA, tipLength=0.3)
    for ann, label in removed:  # clean instances with no output: where they were
        box = ann.get("bbox")
        if not box:
            continue
        x0, y0 = int(box[0]), int(box[1])
        x1, y1 = int(np.ceil(box[0] + box[2])), int(np.ceil(box[1] + box[3]))
        _dashed_rectangle(out, x0, y0, x1, y1, _RED)
        cv2.putText(out, label, (x0, min(y1 + 10, height - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _RED, 1, cv2.LINE_AA)
    cv2.rectangle(out, (0, 0), (width - 1, 16), (0, 0, 0), -1)
    cv2.putText(out, title, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def render_pair(image: np.ndarray, clean: Sequence[dict], noisy: Sequence[dict], names: dict[int, str], title: str = "noisy",
                left_title: str = "clean", mark_removed: bool = False) -> np.ndarray:
    """Side-by-side BGR picture: ``clean`` annotations on the left (titled ``left_title``), ``noisy`` on the right.

    A flipped class is marked with ``*``; a spatially noised instance with its op in brackets; the
    annotation-error ops as the module docstring says. With ``mark_removed`` (both sides annotations with ids),
    a clean instance that no noisy annotation has the id of or names in ``noise_source_ids`` is marked on the
    right: ``missing`` (left out, or dropped as empty) or ``merged into <id>``.
    """
    gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
    removed = _removed(clean, noisy) if mark_removed else []
    return np.hstack([_draw(image, clean, names, left_title), gap, _draw(image, noisy, names, title, removed)])


def _removed(clean: Sequence[dict], noisy: Sequence[dict]) -> list[tuple[dict, str]]:
    """The clean annotations with no output, each with its label (``missing`` or ``merged into <id>``)."""
    kept = {ann["id"] for ann in noisy}
    merged_into = {source: ann["id"] for ann in noisy if ann.get("noise_op") == "merge"
                   for source in ann.get("noise_source_ids", [])[1:]}
    return [(ann, f"merged into {merged_into[ann['id']]}" if ann["id"] in merged_into else "missing")
            for ann in clean if ann["id"] not in kept]


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
) -> list[Path]:
    """Write ``<out_dir>/<image_id>.png`` overlays for the first ``num_images`` images (or ``image_ids``).

    Every image is read before anything is written: a missing ``image_dir``, or an image that is missing,
    unreadable or not of the annotated size, raises :class:`~hf_noisy.errors.HfNoisyError` naming it. Existing
    PNG files are replaced only with ``overwrite``, and never one inside ``image_dir``.
    """
    from .errors import HfNoisyError

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
        ok, png = cv2.imencode(".png", render_pair(pictures[image_id], *by_image[image_id], names, title, mark_removed=True))
        atomic_write_bytes(path, png.tobytes(), overwrite=overwrite)
        written.append(path)
    return written
