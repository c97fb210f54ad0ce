"""Weak prompts made from a clean annotation, exactly as the paper's released COCO-WAN scripts make them.

``create_gt_plus_sam_noise.py`` rasterises the clean mask (``COCO.annToMask``) and takes its *inclusive*
pixel box: ``x0 = min column, y0 = min row, x1 = max column, y1 = max row`` of the foreground (so a one-pixel
object has ``x0 == x1``). That box, in original image pixels, is the ``box`` prompt.
``create_gt_plus_sam_point_noise.py`` sends the box centre ``((x0 + x1) / 2, (y0 + y1) / 2)`` as one positive
point, even where that point lies off the object (a ring, a bent arm). Both are returned as Python floats.

Pure functions (numpy only): the SAM side lives in :mod:`hf_noisy.wan.sam`.
"""

from __future__ import annotations

from typing import Literal

from ..masks import Crop
from .errors import WanError

__all__ = ["PROMPT_KINDS", "PromptKind", "make_prompt", "mask_box"]

PromptKind = Literal["box", "point"]
#: prompt kind -> the ``noise_op`` recorded on the annotations it makes
PROMPT_KINDS: dict[str, str] = {"box": "sam_box", "point": "sam_point"}


def mask_box(segmentation, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Inclusive pixel box ``(x0, y0, x1, y1)`` of a COCO segmentation's foreground (polygons rasterised as
    ``COCO.annToMask``), or ``None`` when the mask is empty."""
    crop = Crop.from_segmentation(segmentation, height, width)
    if crop.mask.size == 0:
        return None
    return crop.x0, crop.y0, crop.x1 - 1, crop.y1 - 1


def make_prompt(kind: PromptKind, segmentation, height: int, width: int) -> list[float] | None:
    """The prompt for one annotation in original image pixels: ``[x0, y0, x1, y1]`` for ``box``, ``[x, y]``
    for ``point``; ``None`` when the clean mask is empty (no prompt can be made)."""
    if kind not in PROMPT_KINDS:
        raise WanError(f"prompt must be one of {sorted(PROMPT_KINDS)}, got {kind!r}")
    box = mask_box(segmentation, height, width)
    if box is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in box)
    if kind == "box":
        return [x0, y0, x1, y1]
    return [(x0 + x1) / 2, (y0 + y1) / 2]
