"""Shape measurements that tell spatial noise ops apart, on a mask's window (cost follows the instance size).

* **signed displacement** ``(area_a - area_b) / perimeter_b`` in pixels: how far, on average, the boundary of
  ``a`` lies outside (positive, dilation) or inside (negative, erosion) that of ``b``.
* **vertex density**: vertices of the outer contours simplified with a 1-pixel tolerance
  (``cv2.approxPolyDP``), per pixel of contour length. A polygon approximation has long straight runs and so
  a low density; a jittered or localization-noised boundary has a high one.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2

from ..masks import Crop

__all__ = ["Shape", "displacement", "measure"]


class Shape(NamedTuple):
    """``area`` (pixels), ``perimeter`` (pixels of outer contour length) and ``vertices`` (after a 1-pixel
    simplification)."""

    area: int
    perimeter: float
    vertices: int

    @property
    def vertex_density(self) -> float:
        """Vertices per pixel of contour (0 for an empty mask)."""
        return self.vertices / self.perimeter if self.perimeter > 0 else 0.0


def measure(crop: Crop) -> Shape:
    """The :class:`Shape` of a cropped mask."""
    if crop.mask.size == 0 or crop.area == 0:
        return Shape(0, 0.0, 0)
    padded = cv2.copyMakeBorder(crop.mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, _ = cv2.findContours(padded, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    perimeter = float(sum(cv2.arcLength(c, True) for c in contours))
    vertices = int(sum(len(cv2.approxPolyDP(c, 1.0, True)) for c in contours))
    return Shape(crop.area, perimeter, vertices)


def displacement(a: Shape, b: Shape) -> float:
    """Signed mean boundary displacement of ``a`` relative to ``b``, pixels (0 when ``b`` has no perimeter)."""
    return (a.area - b.area) / b.perimeter if b.perimeter > 0 else 0.0

