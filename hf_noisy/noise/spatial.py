"""Spatial noise ops: pure functions from one instance mask (a :class:`~hf_noisy.masks.Crop`) to another.

Each op grows the window it works in as far as it needs (clipped to the image), so its result equals the
same op applied to the full-image mask:

* ``dilate`` / ``erode`` / ``opening`` use a ``k x k`` kernel of ones with OpenCV's default borders, as the
  paper's generator does (outside the image counts as background for dilation and as foreground for erosion);
  ``opening`` is ``dilate(erode(mask))``. Pixel-identical to the reference.
* ``approximate`` traces outer contours (OpenCV, ``CHAIN_APPROX_SIMPLE``), simplifies each with
  ``shapely`` (Douglas-Peucker, ``preserve_topology=True``, tolerance in pixels, contours of fewer than 4
  points dropped) and fills it. With ``holes="fill"`` this is pixel-identical to the reference. Hole-less
  polygons first go to ``hf_noisy._simplify``, a C fast path that returns shapely's exact vertices or declines
  the ring (then shapely simplifies it), so the output does not change.
* ``localize`` adds Gaussian noise (std ``sigma`` pixels, rounded to whole pixels) to every contour vertex
  and fills the noisy polygons. ``holes="fill"`` (default, as the reference) traces outer contours only, so
  holes are filled; ``holes="keep"`` also perturbs each hole's contour and keeps it open.

Annotation-error ops (beyond the paper):

* ``translate`` moves a mask by whole pixels; what leaves the image is lost.
* ``box_mask`` fills the mask's tight pixel box.
* ``union`` is the pixelwise OR of two masks of the same image.
* ``split`` cuts a mask by the line through its centroid perpendicular to its principal axis (the eigenvector
  of the largest eigenvalue of the pixel coordinates' covariance, pointed to +x, or +y when vertical): pixels
  whose projection on the axis is below the centroid's form the first part, the others the second, so a long
  object is cut across its length. ``None`` when the mask has fewer than 2 distinct pixels (nothing to cut).
* ``dropout_indices`` / ``drop_vertices`` remove ``floor(fraction * n)`` of a ring's ``n`` vertices, chosen by one
  uniform key per vertex (the smallest keys go), always keeping at least 3 (rings of 3 or fewer are kept whole).

Coordinates handed to OpenCV/shapely are absolute image pixels, so results do not depend on the window.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, Sequence

import cv2
import numpy as np
import shapely
from shapely.geometry import Polygon

from .. import _simplify
from ..masks import Crop

__all__ = ["dilate", "erode", "opening", "localize", "approximate", "approximate_many", "translate", "box_mask",
           "union", "split", "dropout_indices", "drop_vertices", "tight_box"]

Holes = Literal["fill", "keep"]


@functools.cache
def _kernel(size: int) -> np.ndarray:
    """The ``size x size`` square of ones (shared: OpenCV only reads it)."""
    return np.ones((size, size), np.uint8)


def dilate(crop: Crop, kernel: int) -> Crop:
    """Binary dilation with a ``kernel x kernel`` square."""
    padded = crop.pad(kernel // 2)
    return padded.with_mask(cv2.dilate(padded.mask, _kernel(kernel)))


def erode(crop: Crop, kernel: int) -> Crop:
    """Binary erosion with a ``kernel x kernel`` square (image borders do not erode)."""
    padded = crop.pad(kernel // 2)
    return padded.with_mask(cv2.erode(padded.mask, _kernel(kernel)))


def opening(crop: Crop, kernel: int) -> Crop:
    """Erosion then dilation with a ``kernel x kernel`` square."""
    padded = crop.pad(kernel // 2)
    square = _kernel(kernel)
    return padded.with_mask(cv2.dilate(cv2.erode(padded.mask, square), square))


def _contours(crop: Crop, holes: Holes) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Contours in absolute pixel coordinates, each ``(n, 2)`` int32 ``(x, y)``, and the CCOMP hierarchy.

    OpenCV traces inside a zero border of its own, so the window gives the same contours as the full image.
    """
    mode = cv2.RETR_EXTERNAL if holes == "fill" else cv2.RETR_CCOMP
    contours, hierarchy = cv2.findContours(crop.mask, mode, cv2.CHAIN_APPROX_SIMPLE, offset=(crop.x0, crop.y0))
    return [c.reshape(-1, 2) for c in contours], None if hierarchy is None else hierarchy[0]


def _components(contours: list[np.ndarray], hierarchy: np.ndarray | None, holes: Holes) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """(outer contour, its hole contours) per connected component, in OpenCV's order."""
    if holes == "fill" or hierarchy is None:
        return [(c, []) for c in contours]
    return [
        (contours[i], [contours[j] for j in range(len(contours)) if hierarchy[j][3] == i])
        for i in range(len(contours))
        if hierarchy[i][3] < 0
    ]


def _fill(image_size: tuple[int, int], components: list[tuple[np.ndarray, list[np.ndarray]]], window: Crop | None = None) -> Crop:
    """Rasterise polygons (absolute int coordinates) into ``window`` (known to hold them) or else into the
    smallest window holding them, clipped to the image.

    Each component is drawn on its own (outer filled, holes cleared), and components are united, as the
    reference fills each contour separately and takes the maximum.
    """
    if window is not None:
        x0, y0, x1, y1 = window.x0, window.y0, window.x1, window.y1
    else:
        height, width = image_size
        points = [p for outer, inner in components for p in (outer, *inner)]
        if not points:
            return Crop(np.zeros((0, 0), np.uint8), 0, 0, image_size)
        left, top, box_width, box_height = cv2.boundingRect(points[0] if len(points) == 1 else np.concatenate(points))
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + box_width, width), min(top + box_height, height)
        if x1 <= x0 or y1 <= y0:
            return Crop(np.zeros((0, 0), np.uint8), 0, 0, image_size)
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = (-x0, -y0)
    for outer, inner in components:
        if inner:
            part = np.zeros_like(out)
            cv2.fillPoly(part, [outer.reshape(-1, 1, 2)], 1, offset=shift)
            holes = [h.reshape(-1, 1, 2) for h in inner]
            cv2.fillPoly(part, holes, 0, offset=shift)
            # OpenCV traces a hole along the object's own pixels around it: draw that line back.
            cv2.polylines(part, [h + np.array(shift, np.int32) for h in holes], True, 1)
            np.maximum(out, part, out=out)
        else:
            cv2.fillPoly(out, [outer.reshape(-1, 1, 2)], 1, offset=shift)  # filling with 1 is the union
    return Crop(out, x0, y0, image_size)


def localize(crop: Crop, sigma: float, rng: np.random.Generator, holes: Holes = "fill") -> Crop:
    """Gaussian noise (std ``sigma`` px) on every contour vertex, rounded to whole pixels; ``rng`` draws one
    normal per coordinate, contours in OpenCV's order, x then y per vertex."""
    if crop.area == 0:
        return crop
    contours, hierarchy = _contours(crop, holes)
    stacked = contours[0] if len(contours) == 1 else np.concatenate(contours)
    noisy = np.rint(stacked + rng.normal(0.0, sigma, stacked.shape)).astype(np.int32)
    parts = [noisy] if len(contours) == 1 else np.split(noisy, np.cumsum([len(c) for c in contours[:-1]]))
    return _fill(crop.image_size, _components(parts, hierarchy, holes))


def approximate(crop: Crop, tolerance: float, holes: Holes = "fill") -> Crop:
    """Douglas-Peucker simplification (topology-preserving) of the contours, ``tolerance`` in pixels."""
    return approximate_many([crop], tolerance, holes)[0]


def approximate_many(crops: Sequence[Crop], tolerance: float, holes: Holes = "fill") -> list[Crop]:
    """:func:`approximate` of each crop, with one batched call for all their polygons: hole-less polygons go to
    :mod:`hf_noisy._simplify` (an exact fast path that returns GEOS's vertices or declines a ring), the rest to one
    vectorised shapely call; GEOS simplifies each polygon exactly as on its own, and the per-polygon Python cost
    is paid once."""
    owners: list[int] = []  # which crop each polygon comes from, in order
    shells: list[np.ndarray] = []
    interiors: list[list[np.ndarray] | None] = []  # the hole contours of a component that has some, else None
    empty = [crop.area == 0 for crop in crops]
    for index, crop in enumerate(crops):
        if empty[index]:
            continue
        for outer, inner in _components(*_contours(crop, holes), holes):
            if len(outer) >= 4:
                owners.append(index)
                shells.append(outer)
                interiors.append([h for h in inner if len(h) >= 4] if inner else None)
    exteriors = _fast_exteriors(shells, interiors, tolerance)
    rest = [i for i, exterior in enumerate(exteriors) if exterior is None]  # rings the fast path did not prove
    holes_of = {}  # polygon index -> shapely's simplified polygon, for those with holes
    if rest:  # shapely only for what the fast path declined (often nothing in a small batch)
        simplified = shapely.simplify(_polygons([shells[i] for i in rest], [interiors[i] for i in rest]), tolerance,
                                      preserve_topology=True)
        for i, exterior in zip(rest, _exterior_coordinates(simplified)):
            exteriors[i] = exterior
        holes_of = {i: shape for i, shape in zip(rest, simplified) if interiors[i] is not None}
    parts: list[list[tuple[np.ndarray, list[np.ndarray]]]] = [[] for _ in crops]
    for i, (owner, exterior) in enumerate(zip(owners, exteriors)):
        if len(exterior):
            kept = [np.asarray(ring.coords).astype(np.int32) for ring in holes_of[i].interiors] if i in holes_of else []
            parts[owner].append((exterior, kept))
    # simplified vertices are contour points, which are foreground pixels of the crop's window
    return [crop if is_empty else _fill(crop.image_size, part, crop) for crop, part, is_empty in zip(crops, parts, empty)]


def _fast_exteriors(shells: list[np.ndarray], interiors: list[list[np.ndarray] | None], tolerance: float) -> list[np.ndarray | None]:
    """The simplified exterior ring (closed, int32) of each hole-less polygon that :mod:`hf_noisy._simplify` proves
    equal to shapely's; None for the others (polygons with holes, rings it does not prove), which shapely does."""
    out: list[np.ndarray | None] = [None] * len(shells)
    plain = [i for i, inner in enumerate(interiors) if inner is None]
    if not plain or not (math.isfinite(tolerance) and tolerance >= 0):
        return out
    points = np.ascontiguousarray(np.concatenate([shells[i] for i in plain]), dtype=np.int32)
    offsets = np.zeros(len(plain) + 1, np.int64)
    np.cumsum([len(shells[i]) for i in plain], out=offsets[1:])
    kept, kept_offsets, proven = _simplify.simplify_rings(points, offsets, float(tolerance))
    kept = np.frombuffer(kept, np.int32).reshape(-1, 2)
    kept_offsets = np.frombuffer(kept_offsets, np.int64)
    for j in np.flatnonzero(np.frombuffer(proven, np.uint8)):
        out[plain[j]] = kept[kept_offsets[j] : kept_offsets[j + 1]]
    return out


def _polygons(shells: list[np.ndarray], interiors: list[list[np.ndarray] | None]) -> np.ndarray:
    """shapely Polygons (an object array): those without holes built in one vectorised call."""
    out = np.empty(len(shells), dtype=object)
    plain = [i for i, inner in enumerate(interiors) if inner is None]
    if plain:
        coordinates = np.concatenate([shells[i] for i in plain]).astype(np.float64)
        ring_of = np.repeat(np.arange(len(plain)), [len(shells[i]) for i in plain])
        out[plain] = shapely.polygons(shapely.linearrings(coordinates, indices=ring_of))
    for i, inner in enumerate(interiors):
        if inner is not None:
            out[i] = Polygon(shells[i], inner)
    return out


def _exterior_coordinates(polygons: np.ndarray) -> list[np.ndarray]:
    """Each polygon's exterior ring as ``(n, 2)`` int32 (closed: the first point repeated); empty if none."""
    coordinates, owner = shapely.get_coordinates(shapely.get_exterior_ring(polygons), return_index=True)
    bounds = np.searchsorted(owner, np.arange(len(polygons) + 1))
    coordinates = coordinates.astype(np.int32)
    return [coordinates[bounds[i] : bounds[i + 1]] for i in range(len(polygons))]


def tight_box(crop: Crop) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (exclusive ends, image pixels) of the mask's foreground; None when empty."""
    rows, cols = np.nonzero(crop.mask.any(axis=1))[0], np.nonzero(crop.mask.any(axis=0))[0]
    if rows.size == 0:
        return None
    return crop.x0 + int(cols[0]), crop.y0 + int(rows[0]), crop.x0 + int(cols[-1]) + 1, crop.y0 + int(rows[-1]) + 1


def translate(crop: Crop, dx: int, dy: int) -> Crop:
    """The mask moved ``dx`` pixels right and ``dy`` down, clipped to the image (pixels leaving it are lost)."""
    height, width = crop.image_size
    x0, y0, x1, y1 = crop.x0 + dx, crop.y0 + dy, crop.x1 + dx, crop.y1 + dy
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return Crop(np.zeros((0, 0), np.uint8), 0, 0, crop.image_size)
    return Crop(crop.mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0], cx0, cy0, crop.image_size)


def box_mask(crop: Crop) -> Crop:
    """The mask's tight pixel box, filled (an empty mask stays empty)."""
    box = tight_box(crop)
    if box is None:
        return crop
    x0, y0, x1, y1 = box
    return Crop(np.ones((y1 - y0, x1 - x0), np.uint8), x0, y0, crop.image_size)


def union(a: Crop, b: Crop) -> Crop:
    """Pixelwise OR of two masks of the same image, in the window holding both."""
    if a.mask.size == 0:
        return b
    if b.mask.size == 0:
        return a
    x0, y0, x1, y1 = min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1)
    out = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for part in (a, b):
        window = out[part.y0 - y0 : part.y1 - y0, part.x0 - x0 : part.x1 - x0]
        np.maximum(window, part.mask, out=window)
    return Crop(out, x0, y0, a.image_size)


def split(crop: Crop) -> tuple[Crop, Crop] | None:
    """The two halves of the mask cut across its principal axis at the centroid (see the module docstring);
    None for a mask with fewer than 2 pixels.

    The coordinate sums are exact integers (absolute pixel coordinates, so the window does not matter); the
    axis comes from the closed form of a 2x2 symmetric eigenproblem (IEEE arithmetic, no BLAS): the same cut
    on every machine.
    """
    rows, cols = np.nonzero(crop.mask)
    n = int(rows.size)
    if n < 2:
        return None
    xs, ys = cols.astype(np.int64) + crop.x0, rows.astype(np.int64) + crop.y0
    sx, sy = int(xs.sum()), int(ys.sum())
    # n^2 times the covariance [[a, b], [b, c]] of the pixel coordinates
    a = n * int((xs * xs).sum()) - sx * sx
    c = n * int((ys * ys).sum()) - sy * sy
    b = n * int((xs * ys).sum()) - sx * sy
    if b == 0:
        ax, ay = (1.0, 0.0) if a >= c else (0.0, 1.0)
    else:
        largest = (a + c) / 2 + math.sqrt(((a - c) / 2) ** 2 + float(b) ** 2)
        ax, ay = float(b), largest - a
        if ax < 0 or (ax == 0 and ay < 0):
            ax, ay = -ax, -ay
    # n times each pixel's projection on the axis, relative to the centroid, over the window's grid
    height, width = crop.mask.shape
    column = (n * (np.arange(width, dtype=np.int64) + crop.x0) - sx) * ax
    row = (n * (np.arange(height, dtype=np.int64) + crop.y0) - sy) * ay
    second = (row[:, None] + column[None, :] >= 0) & crop.mask.astype(bool)
    first = crop.mask.astype(bool) & ~second
    if not first.any() or not second.any():  # every pixel on the cut line: cannot happen for 2+ pixels
        return None
    return crop.with_mask(first.astype(np.uint8)), crop.with_mask(second.astype(np.uint8))


def dropout_indices(count: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the vertices a ring of ``count`` keeps: ``min(floor(fraction * count), count - 3)``
    dropped (none when ``count <= 3``), those of the smallest of ``count`` uniform keys drawn from ``rng``
    (drawn whatever the count, so the draws of later rings do not depend on it)."""
    keys = rng.random(count)
    drop = min(int(fraction * count), count - 3) if count > 3 else 0
    if drop <= 0:
        return np.arange(count)
    return np.sort(np.argsort(keys, kind="stable")[drop:])


def drop_vertices(crop: Crop, fraction: float, rng: np.random.Generator) -> Crop:
    """An RLE mask's vertex dropout: its outer contours (OpenCV, ``CHAIN_APPROX_SIMPLE``, holes filled, as
    ``localize``) thinned by :func:`dropout_indices`, in OpenCV's order, and filled."""
    if crop.area == 0:
        return crop
    contours, _ = _contours(crop, "fill")
    kept = [contour[dropout_indices(len(contour), fraction, rng)] for contour in contours]
    return _fill(crop.image_size, [(ring, []) for ring in kept])
