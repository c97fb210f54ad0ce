"""Instance masks: the one place for mask conventions.

Conventions used everywhere in hf-noisy:

* A **mask** is a ``numpy.uint8`` array with values in ``{0, 1}``, indexed ``[row, column]``.
* An **RLE** is COCO's compressed run-length encoding, a dict ``{"size": [height, width], "counts": str}``:
  counts are always a ``str`` (never ``bytes``), runs are column-major and start with a run of zeros.
* A **bbox** is ``[x, y, width, height]`` in pixels (COCO ``xywh``), floats.
* A :class:`Crop` is a mask stored as its window in the image: ``mask[r, c]`` is image pixel
  ``(y0 + r, x0 + c)``; every pixel outside the window is 0. Spatial noise works on crops so that its cost
  follows the size of the instance, not of the image.

Polygons are rasterised exactly as ``COCO.annToMask`` does, straight into the window around the instance
(``hf_noisy._rle``, a small C codec that follows pycocotools' rasterisation rule and COCO's string format);
an RLE is expanded only in its window, and a window is encoded straight to the full-image RLE string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _rle
from .errors import HfNoisyError

RLE = dict  # {"size": [h, w], "counts": str}


class MaskError(HfNoisyError):
    """A malformed mask, RLE or polygon (the message says what is wrong with it)."""

__all__ = [
    "Crop",
    "MaskError",
    "Encoded",
    "RLE",
    "segmentation_to_rle",
    "compress_counts",
    "box_polygon",
    "check_rle",
    "mask_iou",
    "decode",
    "encode",
]


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> RLE:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as compressed RLE.

    Same semantics as ``pycocotools.coco.COCO.annToRLE``: several polygons are merged (union).
    The returned ``counts`` is a ``str``.
    """
    if isinstance(segmentation, list):
        return Crop.from_segmentation(segmentation, height, width).to_rle()
    counts = segmentation["counts"]
    if isinstance(counts, list):
        counts = compress_counts(counts)
    return {"size": [int(height), int(width)], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def compress_counts(counts: list[int]) -> str:
    """Uncompressed RLE runs (non-negative ints) as COCO's compressed string, as pycocotools' ``rleToString``
    writes it: each run (from the fourth on, minus the run two before it) in 5-bit groups, low first, each
    group with a continuation bit and a sign-extended last group, plus 48 (in C: ``_rle.compress_counts``)."""
    return _rle.compress_counts(counts)


def box_polygon(bbox: list[float]) -> list[list[float]]:
    """A box ``[x, y, w, h]`` as a one-polygon segmentation, the four corners in the order pycocotools'
    ``COCO.loadRes`` gives a box-only result: ``[[x1, y1, x1, y2, x2, y2, x2, y1]]``."""
    x1, y1 = bbox[0], bbox[1]
    x2, y2 = x1 + bbox[2], y1 + bbox[3]
    return [[x1, y1, x1, y2, x2, y2, x2, y1]]


def mask_iou(a: RLE, b: RLE) -> float:
    """Intersection over union of two masks of the same image (non-crowd rule; 0 when both are empty)."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.iou([a], [b], [0])[0][0])


def decode(rle: RLE) -> np.ndarray:
    """Full-image mask of an RLE, ``uint8`` of shape ``(height, width)``."""
    return Crop.from_rle(rle).to_full()


def encode(mask: np.ndarray) -> RLE:
    """RLE of a full-image binary mask (any dtype; nonzero = foreground)."""
    return Crop.from_full(mask).to_rle()


def _counts_str(rle: RLE) -> str | bytes:
    """Compressed counts of an RLE (uncompressed list counts are compressed by pycocotools)."""
    counts = rle["counts"]
    if isinstance(counts, list):
        height, width = (int(v) for v in rle["size"])
        if any(c < 0 for c in counts) or sum(counts) != height * width:
            raise MaskError(f"RLE runs cover {sum(counts)} pixels (or hold a negative run), but size {height}x{width} has {height * width}")
        return segmentation_to_rle(rle, height, width)["counts"]
    return counts


def check_rle(rle: RLE) -> None:
    """Raise :class:`MaskError` unless the RLE's runs are well-formed and cover exactly ``height * width`` pixels."""
    height, width = (int(v) for v in rle["size"])
    try:
        _rle.decode_window(_counts_str(rle), height, width, 0)
    except ValueError as err:  # the C codec's refusals (a bad RLE string)
        raise MaskError(str(err)) from None


@dataclass(frozen=True, init=False)
class Crop:
    """A binary instance mask stored as its window in the image.

    Attributes:
        mask: ``uint8`` ``{0, 1}`` array, shape ``(h, w)`` of the window.
        x0, y0: the window's top-left corner in image pixels (column, row).
        image_size: ``(height, width)`` of the full image.
    """

    mask: np.ndarray
    x0: int
    y0: int
    image_size: tuple[int, int]

    def __init__(self, mask: np.ndarray, x0: int, y0: int, image_size: tuple[int, int]) -> None:
        # Each field is set once, here, straight into the instance's dict: the generated __init__ of a frozen
        # dataclass calls object.__setattr__ per field (3x slower), and noise makes a few crops per annotation.
        # Assigning a field later still raises FrozenInstanceError.
        self.__dict__.update(mask=mask, x0=x0, y0=y0, image_size=image_size)

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_full(cls, mask: np.ndarray) -> "Crop":
        """The whole image as one window (no copy for a ``uint8`` {0,1} mask)."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise MaskError(f"a mask must be 2-D, got shape {mask.shape}")
        if mask.dtype != np.uint8 or mask.max(initial=0) > 1:
            mask = (mask != 0).astype(np.uint8)
        return cls(mask, 0, 0, (int(mask.shape[0]), int(mask.shape[1])))

    @classmethod
    def from_rle(cls, rle: RLE, margin: int = 0) -> "Crop":
        """Decode only the window around the RLE's foreground, grown by ``margin`` pixels (clipped to the image).

        An empty RLE gives an empty ``(0, 0)`` window at the origin.
        """
        height, width = (int(v) for v in rle["size"])
        try:
            decoded = _rle.decode_window(_counts_str(rle), height, width, margin)
        except ValueError as err:  # the C codec's refusals (a bad RLE string)
            raise MaskError(str(err)) from None
        return cls._from_window(decoded, height, width)

    @classmethod
    def _from_window(cls, decoded: tuple | None, height: int, width: int) -> "Crop":
        """A crop from the C codec's ``(x0, y0, x1, y1, row-major bytes)``, or an empty one for ``None``."""
        if decoded is None:
            return cls(np.zeros((0, 0), np.uint8), 0, 0, (height, width))
        x0, y0, x1, y1, buffer = decoded
        return cls(np.frombuffer(buffer, np.uint8).reshape(y1 - y0, x1 - x0), x0, y0, (height, width))

    @classmethod
    def from_segmentation(cls, segmentation: Any, height: int, width: int, margin: int = 0) -> "Crop":
        """Window of a COCO segmentation (polygons or RLE), rasterised exactly as ``COCO.annToMask``
        (polygons straight into the window, with pycocotools' rule; several polygons are united)."""
        if isinstance(segmentation, list):
            try:
                decoded = _rle.polygons_window(segmentation, height, width, margin)
            except ValueError as err:  # the C codec's refusals (an odd or non-finite polygon)
                raise MaskError(str(err)) from None
            return cls._from_window(decoded, height, width)
        return cls.from_rle(segmentation_to_rle(segmentation, height, width), margin)

    # -- geometry -----------------------------------------------------------------------------------
    @property
    def x1(self) -> int:
        return self.x0 + int(self.mask.shape[1])

    @property
    def y1(self) -> int:
        return self.y0 + int(self.mask.shape[0])

    def pad(self, margin: int) -> "Crop":
        """The same mask in a window grown by ``margin`` pixels on each side, clipped to the image."""
        height, width = self.image_size
        x0, y0 = max(self.x0 - margin, 0), max(self.y0 - margin, 0)
        x1, y1 = min(self.x1 + margin, width), min(self.y1 + margin, height)
        if (x0, y0, x1, y1) == (self.x0, self.y0, self.x1, self.y1):
            return self
        out = np.zeros((y1 - y0, x1 - x0), np.uint8)
        out[self.y0 - y0 : self.y1 - y0, self.x0 - x0 : self.x1 - x0] = self.mask
        return Crop(out, x0, y0, self.image_size)

    def with_mask(self, mask: np.ndarray) -> "Crop":
        """A crop of the same window holding ``mask`` (same shape)."""
        if mask.shape != self.mask.shape:
            raise MaskError(f"mask shape {mask.shape} does not match the window {self.mask.shape}")
        return Crop(mask, self.x0, self.y0, self.image_size)

    def to_full(self) -> np.ndarray:
        """Full-image ``uint8`` mask."""
        full = np.zeros(self.image_size, np.uint8)
        full[self.y0 : self.y1, self.x0 : self.x1] = self.mask
        return full

    # -- measurements -------------------------------------------------------------------------------
    @property
    def area(self) -> int:
        """Foreground pixel count."""
        return int(np.count_nonzero(self.mask))

    def to_rle(self) -> RLE:
        """Full-image compressed RLE (``counts`` as ``str``)."""
        return self.encode().rle

    def encode(self) -> "Encoded":
        """Full-image RLE, tight bbox and area in one pass over the window."""
        height, width = self.image_size
        h, w = self.mask.shape
        window = np.ascontiguousarray(self.mask, dtype=np.uint8)
        counts, area, bbox = _rle.encode_window(window, h, w, self.x0, self.y0, height, width)
        return Encoded({"size": [height, width], "counts": counts}, list(bbox), area)


class Encoded(NamedTuple):
    """A mask as an annotation stores it: full-image ``rle`` (``counts`` a str), tight ``bbox`` (``[x, y, w, h]``
    floats, ``[0, 0, 0, 0]`` when empty, as ``pycocotools.mask.toBbox``) and ``area`` (pixel count)."""

    rle: RLE
    bbox: list[float]
    area: int
