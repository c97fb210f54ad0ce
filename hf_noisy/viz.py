"""Clean-vs-noisy overlays (like the paper's Fig. 3): one PNG per image, clean left, noisy right."""

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


def _draw(image: np.ndarray, annotations: Sequence[dict], names: dict[int, str], title: str) -> np.ndarray:
    height, width = image.shape[:2]
    out = image.copy()
    for ann in annotations:
        full = Crop.from_segmentation(ann["segmentation"], height, width).to_full()
        colour = np.array(_colour(ann["category_id"]), float)
        region = full.astype(bool)
        out[region] = (0.45 * out[region] + 0.55 * colour).astype(np.uint8)
        contours, _ = cv2.findContours(full, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
        if region.any():
            ys, xs = np.nonzero(full)
            label = names.get(ann["category_id"], str(ann["category_id"]))
            op = ann.get("noise_op")
            if op and op != "none":
                label += f" [{op}]"
            if ann.get("class_flipped"):
                label += " *"
            cv2.putText(out, label, (int(xs.min()), max(int(ys.min()) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.rectangle(out, (0, 0), (width - 1, 16), (0, 0, 0), -1)
    cv2.putText(out, title, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def render_pair(image: np.ndarray, clean: Sequence[dict], noisy: Sequence[dict], names: dict[int, str], title: str = "noisy",
                left_title: str = "clean") -> np.ndarray:
    """Side-by-side BGR picture: ``clean`` annotations on the left (titled ``left_title``), ``noisy`` on the right.

    A flipped class is marked with ``*``; a spatially noised instance with its op in brackets.
    """
    gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
    return np.hstack([_draw(image, clean, names, left_title), gap, _draw(image, noisy, names, title)])


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
        ok, png = cv2.imencode(".png", render_pair(pictures[image_id], *by_image[image_id], names, title))
        atomic_write_bytes(path, png.tobytes(), overwrite=overwrite)
        written.append(path)
    return written
