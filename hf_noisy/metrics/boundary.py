"""Mask boundaries for Boundary IoU (Cheng et al., CVPR 2021), computed on a window around each instance.

Convention (the one of boundary-iou-api): the boundary of a mask ``M`` of an ``H x W`` image is
``M - erode(pad(M, 1, value 0), 3x3 ones, iterations=d)`` cropped back to the image, with
``d = max(1, round(ratio * sqrt(H^2 + W^2)))`` over the *full image* size. A foreground pixel is thus on the
boundary when a background pixel, or the image border, lies within chessboard distance ``d`` of it.

The band is computed in the C extension (``_rle.boundary_counts``) from the RLE: only the mask's bounding box
grown by one pixel is decoded (within it every pixel outside the box is background, and where the window meets
the image edge the zero padding stands for the image border, which counts as background), and erosion by
``d`` iterations of the 3x3 kernel, a ``(2d+1)``-square, is two linear run tests (along rows, then columns)
instead of ``d`` passes. The result is the same bit for bit as boundary-iou-api's on the full image, at a cost
that follows the instance's size.
"""

from __future__ import annotations

import math

from ..masks import RLE

__all__ = ["DEFAULT_DILATION_RATIO", "dilation_pixels", "boundary_rle"]

#: The dilation ratio of the Boundary IoU paper and of "Benchmarking Label Noise in Instance Segmentation".
DEFAULT_DILATION_RATIO = 0.02

def dilation_pixels(height: int, width: int, ratio: float = DEFAULT_DILATION_RATIO) -> int:
    """Boundary width ``d`` in pixels for an image: ``max(1, round(ratio * diagonal))`` (Python rounding,
    half to even, as ``round`` in boundary-iou-api)."""
    return max(1, int(round(ratio * math.sqrt(height**2 + width**2))))


def boundary_rle(rle: RLE, ratio: float = DEFAULT_DILATION_RATIO) -> RLE:
    """Boundary of a full-image RLE mask as a full-image RLE (``counts`` a str)."""
    from .._rle import boundary_counts
    from ..masks import _counts_str

    height, width = (int(v) for v in rle["size"])
    counts = boundary_counts(_counts_str(rle), height, width, dilation_pixels(height, width, ratio))
    return {"size": [height, width], "counts": counts}
