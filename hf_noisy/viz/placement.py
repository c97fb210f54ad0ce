"""Greedy placement of text labels: none overlaps another, none leaves the picture.

A pure function of boxes and sizes (pixels; a box is ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive), so it can
be tested without drawing anything. Labels are placed in the order given (put the important ones first): each
takes the first free spot next to its target (above, below, inside the top-left corner, centred, right, left,
then right-aligned above and below), every spot shifted inside the bounds. When all of those collide, the free
spot nearest the target on a grid of label-sized steps, within ``reach`` of it, is taken (pushed down before
up) and the placement asks for a leader line; a label with no free spot (or larger than the bounds) is left out
(``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import HfNoisyError

__all__ = ["Box", "Placement", "place_labels"]

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Placement:
    """Where one label goes: ``box`` (inside the bounds) and whether it was moved away from its target, in which
    case a line should join it to the target (``leader``)."""

    box: Box
    leader: bool


def _overlaps(candidates: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """For each candidate box (rows of ``candidates``), whether it overlaps any row of ``placed`` (area > 0)."""
    if not len(placed):
        return np.zeros(len(candidates), bool)
    c, p = candidates[:, None, :], placed[None, :, :]
    hit = (c[..., 0] < p[..., 2]) & (p[..., 0] < c[..., 2]) & (c[..., 1] < p[..., 3]) & (p[..., 1] < c[..., 3])
    return hit.any(axis=1)


def _clamped(xy: np.ndarray, w: int, h: int, bounds: tuple[int, int]) -> np.ndarray:
    """Boxes of size ``w`` x ``h`` at top-left corners ``xy``, shifted inside ``bounds`` (width, height)."""
    x = np.clip(xy[:, 0], 0, bounds[0] - w)
    y = np.clip(xy[:, 1], 0, bounds[1] - h)
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.int64)


def _next_to(target: Box, w: int, h: int, gap: int) -> np.ndarray:
    """Top-left corners of the spots next to ``target``, in order of preference."""
    x0, y0, x1, y1 = target
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    return np.array([
        (x0, y0 - h - gap),          # above, left-aligned
        (x0, y1 + gap),              # below
        (x0 + gap, y0 + gap),        # inside, top-left corner
        (cx - w // 2, cy - h // 2),  # centred
        (x1 + gap, y0),              # right
        (x0 - w - gap, y0),          # left
        (x1 - w, y0 - h - gap),      # above, right-aligned
        (x1 - w, y1 + gap),          # below, right-aligned
    ], np.int64)


def _grid(target: Box, w: int, h: int, gap: int, bounds: tuple[int, int], reach: float) -> np.ndarray:
    """Top-left corners on a grid of steps (``max(h, w // 4)`` across, ``h + gap`` down) around the target's
    centre whose label box (shifted inside ``bounds``) is at most ``reach`` pixels from the target; nearest the
    centre first, at equal distance lower before higher, then left before right."""
    x0, y0, x1, y1 = target
    sx, sy = max(h, w // 4, 1), h + gap
    ox, oy = (x0 + x1) // 2 - w // 2, (y0 + y1) // 2 - h // 2
    ni = bounds[0] // sx + 1
    nj = bounds[1] // sy + 1
    i, j = np.meshgrid(np.arange(-ni, ni + 1), np.arange(-nj, nj + 1))
    i, j = i.ravel(), j.ravel()
    corners = np.stack([ox + i * sx, oy + j * sy], axis=1)
    boxes = _clamped(corners, w, h, bounds)
    dx = np.maximum(0, np.maximum(x0 - boxes[:, 2], boxes[:, 0] - x1))
    dy = np.maximum(0, np.maximum(y0 - boxes[:, 3], boxes[:, 1] - y1))
    near = dx ** 2 + dy ** 2 <= reach ** 2
    order = np.lexsort((i, -j, (i * sx) ** 2 + (j * sy) ** 2))
    order = order[near[order]]
    return corners[order]


def place_labels(targets: Sequence[Box], sizes: Sequence[tuple[int, int]], bounds: tuple[int, int], *,
                 gap: int = 2, reach: float = float("inf"), taken: Sequence[Box] = ()) -> list[Placement | None]:
    """Place one label of ``sizes[k]`` (width, height) for each ``targets[k]`` inside ``bounds`` (width, height),
    greedily in order, so that no two placed labels (nor a placed label and a box of ``taken``) overlap; ``gap``
    is the space between a label and its target, ``reach`` the farthest a moved label may be from its target.

    Returns a :class:`Placement` per target, or ``None`` where the label was left out. Deterministic: the same
    arguments give the same placements.
    """
    if len(targets) != len(sizes):
        raise HfNoisyError(f"place_labels: {len(targets)} targets but {len(sizes)} sizes")
    placed = np.array(list(taken), np.int64).reshape(-1, 4)
    out: list[Placement | None] = []
    for target, (w, h) in zip(targets, sizes):
        if w > bounds[0] or h > bounds[1] or w <= 0 or h <= 0:
            out.append(None)
            continue
        found = None
        for corners, leader in ((_next_to(target, w, h, gap), False), (_grid(target, w, h, gap, bounds, reach), True)):
            boxes = _clamped(corners, w, h, bounds)
            free = np.flatnonzero(~_overlaps(boxes, placed))
            if len(free):
                found = Placement(tuple(int(v) for v in boxes[free[0]]), leader)
                break
        out.append(found)
        if found is not None:
            placed = np.vstack([placed, np.array(found.box, np.int64)[None]])
    return out
