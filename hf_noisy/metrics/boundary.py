"""Mask boundaries for Boundary IoU (Cheng et al., CVPR 2021), computed on a window around each instance.

Convention (the one of boundary-iou-api): the boundary of a mask ``M`` of an ``H x W`` image is
``M - erode(pad(M, 1, value 0), 3x3 ones, iterations=d)`` cropped back to the image, with
``d = max(1, round(ratio * sqrt(H^2 + W^2)))`` over the *full image* size. A foreground pixel is thus on the
boundary when a background pixel, or the image border, lies within chessboard distance ``d`` of it.

Only a window around the foreground is needed: within the mask's bounding box grown by one pixel, every pixel
outside the box is background, and the nearest background pixel outside the box is always on that one-pixel
ring (or the window edge is the image edge, where the zero padding stands for the image border). The result
is the same bit for bit as on the full image, at a cost that follows the instance's size.
"""

from __future__ import annotations

import math

import numpy as np

from ..masks import RLE, Crop

__all__ = ["DEFAULT_DILATION_RATIO", "dilation_pixels", "boundary_crop", "boundary_rle"]

#: The dilation ratio of the Boundary IoU paper and of "Benchmarking Label Noise in Instance Segmentation".
DEFAULT_DILATION_RATIO = 0.02

_KERNEL = np.ones((3, 3), np.uint8)


def dilation_pixels(height: int, width: int, ratio: float = DEFAULT_DILATION_RATIO) -> int:
    """Boundary width ``d`` in pixels for an image: ``max(1, round(ratio * diagonal))`` (Python rounding,
    half to even, as ``round`` in boundary-iou-api)."""
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def boundary_crop(crop: Crop, dilation: int) -> Crop:
    """Boundary of a cropped mask, ``dilation`` pixels wide (see the module docstring), as a crop."""
    return _window_boundary(crop.pad(1), dilation)


def _window_boundary(window: Crop, dilation: int) -> Crop:
    """Boundary of a crop whose window already holds a one-pixel background margin (or meets the image edge)."""
    import cv2

    if window.mask.size == 0:
        return window
    padded = cv2.copyMakeBorder(window.mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, _KERNEL, iterations=dilation)[1:-1, 1:-1]
    return window.with_mask(window.mask - eroded)


def boundary_rle(rle: RLE, ratio: float = DEFAULT_DILATION_RATIO) -> RLE:
    """Boundary of a full-image RLE mask as a full-image RLE (``counts`` a str)."""
    height, width = (int(v) for v in rle["size"])
    return _window_boundary(Crop.from_rle(rle, margin=1), dilation_pixels(height, width, ratio)).to_rle()
