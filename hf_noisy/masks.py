"""Instance masks: the one place for mask conventions.

Conventions used everywhere in hf-noisy:

* A **mask** is a ``numpy.uint8`` array with values in ``{0, 1}``, indexed ``[row, column]``.
* An **RLE** is COCO's compressed run-length encoding, a dict ``{"size": [height, width], "counts": str}``:
  counts are always a ``str`` (never ``bytes``), runs are column-major and start with a run of zeros.
* A **bbox** is ``[x, y, width, height]`` in pixels (COCO ``xywh``), floats.
* A :class:`Crop` is a mask stored as its window in the image: ``mask[r, c]`` is image pixel
  ``(y0 + r, x0 + c)``; every pixel outside the window is 0. Spatial noise works on crops so that its cost
  follows the size of the instance, not of the image.

Decoding and encoding go through the same pycocotools rasteriser as ``COCO.annToMask``: a polygon is
rasterised on the full image grid (pycocotools works on the run-length form, so this is cheap) and only
the window is expanded, which keeps every mask pixel-identical to what pycocotools would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict  # {"size": [h, w], "counts": str}

__all__ = [
    "Crop",
    "RLE",
    "segmentation_to_rle",
    "rle_counts",
    "rle_from_counts",
    "check_rle",
    "decode",
    "encode",
]


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> RLE:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) as compressed RLE.

    Same semantics as ``pycocotools.coco.COCO.annToRLE``: several polygons are merged (union).
    The returned ``counts`` is a ``str``.
    """
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    counts = rle["counts"]
    return {"size": [int(height), int(width)], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def rle_counts(rle: RLE) -> np.ndarray:
    """The run lengths of an RLE (compressed or uncompressed) as ``int64`` (zeros first, column-major)."""
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not raw:
        return np.zeros(0, dtype=np.int64)
    # COCO's string form: each run is a little-endian sequence of 5-bit chunks, 0x20 = "more chunks follow",
    # 0x10 in the last chunk = negative; from the third run on, each value is a delta to the run two before.
    chars = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if chars[-1] & 0x20:
        raise ValueError("RLE counts string is truncated (its last run is unfinished)")
    last = np.flatnonzero((chars & 0x20) == 0)
    starts = np.concatenate(([0], last[:-1] + 1))
    position = np.arange(chars.size) - np.repeat(starts, last - starts + 1)
    values = np.add.reduceat((chars & 0x1F) << (5 * position), starts)
    negative = (chars[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (position[last][negative] + 1))
    values[2::2] = np.cumsum(values[2::2])
    values[1::2] = np.cumsum(values[1::2])
    return values


def rle_from_counts(counts: Sequence[int] | np.ndarray, height: int, width: int) -> RLE:
    """Compress run lengths (zeros first, column-major) into an RLE with ``str`` counts.

    Produces the same string as pycocotools (``rleToString``) for the same runs.
    """
    values = np.asarray(counts, dtype=np.int64).copy()
    values[3:] -= np.asarray(counts, dtype=np.int64)[1:-2]
    shifts = 5 * np.arange(8, dtype=np.int64)
    rest = values[:, None] >> shifts  # what is left before chunk j (arithmetic shift keeps the sign)
    chunks = rest & 0x1F
    after = rest >> 5
    more = np.where((chunks & 0x10) != 0, after != -1, after != 0)
    used = np.cumprod(np.concatenate((np.ones((values.size, 1), bool), more[:, :-1]), axis=1), axis=1).astype(bool)
    chars = (chunks | np.where(more, 0x20, 0)) + 48
    text = chars[used].astype(np.uint8).tobytes().decode("ascii")
    return {"size": [int(height), int(width)], "counts": text}


def decode(rle: RLE) -> np.ndarray:
    """Full-image mask of an RLE, ``uint8`` of shape ``(height, width)``."""
    return Crop.from_rle(rle).to_full()


def encode(mask: np.ndarray) -> RLE:
    """RLE of a full-image binary mask (any dtype; nonzero = foreground)."""
    return Crop.from_full(mask).to_rle()


def check_rle(rle: RLE) -> None:
    """Raise ``ValueError`` unless the RLE's runs are non-negative and cover exactly ``height * width`` pixels."""
    height, width = (int(v) for v in rle["size"])
    counts = rle_counts(rle)
    if counts.size and counts.min() < 0:
        raise ValueError("RLE has a negative run length")
    covered = int(counts.sum())
    if covered != height * width:
        raise ValueError(f"RLE runs cover {covered} pixels, but size {height}x{width} has {height * width}")


def _read_run(counts: str, start: int) -> tuple[int, int]:
    """Decode the run value whose first character is at ``start``; returns (value, index after it)."""
    value, shift, i = 0, 0, start
    while True:
        c = ord(counts[i]) - 48
        value |= (c & 0x1F) << shift
        shift += 5
        i += 1
        if not c & 0x20:
            if c & 0x10:
                value -= 1 << shift
            return value, i


def _write_run(value: int) -> str:
    """COCO's string form of one (delta-coded) run value."""
    out = []
    while True:
        c = value & 0x1F
        value >>= 5
        more = value != -1 if c & 0x10 else value != 0
        out.append(chr((c | 0x20 if more else c) + 48))
        if not more:
            return "".join(out)


def _strip_counts(counts: str, add_first: int, add_last: int) -> str:
    """Add ``add_first`` to the first run and ``add_last`` to the last run of a compressed RLE string.

    Both must be zero runs. The first run is never a delta reference (COCO codes run m as a delta to run m-2
    only for m > 2), so only its own characters change; the last run is nobody's reference either.
    """
    first, after_first = _read_run(counts, 0)
    begin = len(counts) - 1
    while begin > 0 and (ord(counts[begin - 1]) - 48) & 0x20:
        begin -= 1
    if begin == 0:  # a single run: the mask is empty
        return _write_run(first + add_first + add_last)
    if begin < after_first:
        raise ValueError("malformed RLE counts")
    last, _ = _read_run(counts, begin)
    middle = counts[after_first:begin]
    # With exactly two runs, the last is the first ones run: never the case for zero runs (callers ensure
    # the strip ends on zeros, and runs 0 and 2 are not delta-coded).
    return _write_run(first + add_first) + middle + _write_run(last + add_last)


@dataclass(frozen=True)
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

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_full(cls, mask: np.ndarray) -> "Crop":
        """The whole image as one window (no copy for a ``uint8`` {0,1} mask)."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
        if mask.dtype != np.uint8 or mask.max(initial=0) > 1:
            mask = (mask != 0).astype(np.uint8)
        return cls(mask, 0, 0, (int(mask.shape[0]), int(mask.shape[1])))

    @classmethod
    def from_rle(cls, rle: RLE, margin: int = 0) -> "Crop":
        """Decode only the window around the RLE's foreground, grown by ``margin`` pixels (clipped to the image).

        An empty RLE gives an empty ``(0, 0)`` window at the origin.
        """
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if isinstance(counts, list):
            rle = rle_from_counts(counts, height, width)
        elif isinstance(counts, bytes):
            rle = {"size": [height, width], "counts": counts.decode("ascii")}
        bx, by, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        if bw == 0:
            return cls(np.zeros((0, 0), np.uint8), 0, 0, (height, width))
        x0, x1 = max(bx - margin, 0), min(bx + bw + margin, width)
        y0, y1 = max(by - margin, 0), min(by + bh + margin, height)
        # The window's columns [x0, x1) as a strip RLE of size (height, x1 - x0): every foreground run lies in
        # those columns, so only the leading and trailing zero runs change (see _strip_counts).
        strip = {"size": [height, x1 - x0], "counts": _strip_counts(rle["counts"], -x0 * height, -(width - x1) * height)}
        window = np.ascontiguousarray(mask_utils.decode(strip)[y0:y1])
        return cls(window, x0, y0, (height, width))

    @classmethod
    def from_segmentation(cls, segmentation: Any, height: int, width: int, margin: int = 0) -> "Crop":
        """Window of a COCO segmentation (polygons or RLE), rasterised exactly as ``COCO.annToMask``."""
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
            raise ValueError(f"mask shape {mask.shape} does not match the window {self.mask.shape}")
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

    def bbox(self) -> list[float]:
        """Tight ``[x, y, w, h]`` of the foreground in image pixels; ``[0, 0, 0, 0]`` when empty
        (the same numbers as ``pycocotools.mask.toBbox``)."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        if rows.size == 0:
            return [0.0, 0.0, 0.0, 0.0]
        cols = np.flatnonzero(self.mask.any(axis=0))
        return [
            float(self.x0 + cols[0]),
            float(self.y0 + rows[0]),
            float(cols[-1] - cols[0] + 1),
            float(rows[-1] - rows[0] + 1),
        ]

    def to_rle(self) -> RLE:
        """Full-image compressed RLE (``counts`` as ``str``)."""
        height, width = self.image_size
        h, w = self.mask.shape
        if self.area == 0:
            return {"size": [height, width], "counts": rle_from_counts([height * width], height, width)["counts"]}
        # Encode a full-height strip of the window's columns with pycocotools, then widen its first and last
        # zero runs to the whole image. One extra empty column keeps the strip ending on a zero run.
        extra = 1 if self.x1 < width else 0
        strip = np.zeros((height, w + extra), np.uint8, order="F")
        strip[self.y0 : self.y1, :w] = self.mask
        counts = mask_utils.encode(strip)["counts"].decode("ascii")
        return {"size": [height, width], "counts": _strip_counts(counts, self.x0 * height, (width - self.x1 - extra) * height)}
