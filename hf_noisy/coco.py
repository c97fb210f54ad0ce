"""COCO instance-annotation files: read, validate, write.

``load_coco`` returns the file's own dict (``images``, ``annotations``, ``categories``, plus whatever else it
holds) after checking everything the rest of hf-noisy relies on. A problem raises :class:`CocoFormatError`,
whose message names the file, the annotation (or image/category) id and the field. ``write_coco`` writes
atomically: a failed write leaves no file behind.

LVIS files (v0.5 and v1) are COCO files with extra fields (no ``iscrowd``; ``frequency`` on categories,
federated category lists on images); they load as they are.

Accepted segmentations: polygons (a list of ``[x1, y1, x2, y2, ...]`` lists, pixel coordinates, each with at
least 3 points), uncompressed RLE (``counts`` a list of ints) and compressed RLE (``counts`` a str). RLE
``size`` must equal the image's ``[height, width]``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import reprlib
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any, Iterable

import orjson

from . import _rle
from .errors import HfNoisyError
from .fsutil import atomic_write_bytes
from .masks import Crop, MaskError, check_rle
from .runtime import paused_gc

__all__ = [
    "CocoFormatError",
    "CocoHeader",
    "check_annotation",
    "check_annotations",
    "check_header",
    "dumps_coco",
    "file_sha256",
    "load_coco",
    "parse_coco_bytes",
    "validate_coco",
    "write_coco",
]

#: LVIS's optional fields: a category's ``frequency`` and an image's federated category lists.
LVIS_FREQUENCIES = ("r", "c", "f")
LVIS_IMAGE_LISTS = ("neg_category_ids", "not_exhaustive_category_ids")

#: How far (pixels) a polygon vertex may lie outside ``[0, width] x [0, height]`` before it is an error.
POLYGON_TOLERANCE = 1.0

#: Most pixels (``height * width``) an image may have: the mask codec's limit (a 46340 x 46340 image).
MAX_IMAGE_PIXELS = 2**31 - 1


class CocoFormatError(HfNoisyError):
    """A COCO file that hf-noisy cannot use; the message says where and why."""

    def __init__(self, message: str, *, source: str = "<data>", where: str = "", field: str = "") -> None:
        self.message, self.source, self.where, self.field = message, source, where, field
        parts = [source]
        if where:
            parts.append(where)
        if field:
            parts.append(f"field '{field}'")
        super().__init__(": ".join(parts) + ": " + message)

    def __reduce__(self):  # keep the parts when the error crosses a process boundary
        return _coco_format_error, (self.message, self.source, self.where, self.field)

    def with_source(self, source: str) -> "CocoFormatError":
        """The same error, naming ``source`` (e.g. the file the data came from)."""
        return CocoFormatError(self.message, source=source, where=self.where, field=self.field)


def _coco_format_error(message: str, source: str, where: str, field: str) -> CocoFormatError:
    return CocoFormatError(message, source=source, where=where, field=field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int64(value: Any) -> bool:
    """An int (not a bool) that fits a signed 64-bit column, as ids are stored."""
    return _is_int(value) and -(2**63) <= value < 2**63


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 4, 40, 40


def _short(value: Any) -> str:
    """A short ``repr`` of a bad value (lists cut, strings cut), so that one bad value gives one short line."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    return _REPR.repr(value)


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return True
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


_PLAIN_NUMBERS = {float, int}


def _is_numbers(values: list) -> bool:
    """All finite plain numbers (fast path for the common float/int lists)."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:
        return math.isfinite(sum(values))
    return all(map(_is_number, values))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LongNumber:
    """An integer literal too long to be any id or size (more than :data:`MAX_INT_DIGITS` digits), kept as a
    placeholder so that validation names the field that holds it instead of the parser failing."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a {self.digits}-digit number>"


#: Integer literals longer than this are read as :class:`LongNumber` (int64 ids have at most 19 digits).
MAX_INT_DIGITS = 100


def parse_json_int(text: str) -> int | LongNumber:
    return int(text) if len(text) <= MAX_INT_DIGITS else LongNumber(len(text.lstrip("-")))


def parse_json(raw: bytes) -> Any:
    """Parse JSON bytes: orjson, falling back to the standard library for its line/column messages and for the
    non-standard ``NaN``/``Infinity`` literals (which validation then reports precisely); over-long integer
    literals become :class:`LongNumber`. Raises the standard library's errors (``json.JSONDecodeError``,
    ``UnicodeDecodeError``, ``RecursionError``); callers word them for their input."""
    try:
        with paused_gc():  # a large acyclic tree: collections during the parse would find nothing
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    return json.loads(raw, parse_int=parse_json_int)


def parse_coco_bytes(raw: bytes, *, source: str = "<data>") -> Any:
    """Parse JSON bytes (:func:`parse_json`), errors as :class:`CocoFormatError` naming ``source``."""
    try:
        return parse_json(raw)
    except json.JSONDecodeError as err:
        raise CocoFormatError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})", source=source) from None
    except UnicodeDecodeError as err:
        raise CocoFormatError(f"not UTF-8 text ({err.reason})", source=source) from None
    except RecursionError:
        raise CocoFormatError("not a COCO file (JSON nested too deeply)", source=source) from None



def load_coco(path: str | os.PathLike, *, allow_empty_masks: bool = False, require_segmentation: bool = True) -> dict:
    """Read and validate a COCO instance file (see :func:`validate_coco`)."""
    path = Path(path)
    if not path.is_file():
        raise CocoFormatError("no such file", source=str(path))
    data = parse_coco_bytes(path.read_bytes(), source=str(path))
    validate_coco(data, source=str(path), allow_empty_masks=allow_empty_masks,
                  require_segmentation=require_segmentation)
    return data


def validate_coco(
    data: Any, *, source: str = "<data>", allow_empty_masks: bool = False, check_masks: bool = True,
    require_segmentation: bool = True,
) -> None:
    """Check a COCO instance dict; raise :class:`CocoFormatError` on the first problem.

    Checks: the three top-level lists; unique integer ids; positive integer image sizes; LVIS's optional fields
    when present (a category's ``frequency`` is ``"r"``, ``"c"`` or ``"f"``; an image's ``neg_category_ids`` and
    ``not_exhaustive_category_ids`` list known category ids); every annotation's image and category exist;
    ``iscrowd`` is 0 or 1; ``bbox`` is 4 finite numbers with non-negative size;
    ``area`` is finite and non-negative; polygons have >= 3 finite points within the image (with
    :data:`POLYGON_TOLERANCE`); RLE size matches the image and its runs cover it exactly; and, unless
    ``allow_empty_masks``, no mask is empty (``check_masks=False`` skips rasterising the masks, for callers
    that rasterise them anyway and check emptiness there). ``require_segmentation=False`` accepts annotations
    with a ``bbox`` and no ``segmentation`` (a box-only ground truth, scored for box AP only).
    """
    header = check_header(data, source=source)
    check_annotations(data["annotations"], header, source=source, allow_empty_masks=allow_empty_masks,
                      check_masks=check_masks, require_segmentation=require_segmentation)


def check_annotations(
    annotations: Iterable[Any], header: CocoHeader, *, source: str = "<data>", allow_empty_masks: bool = False,
    check_masks: bool = True, require_segmentation: bool = True,
) -> None:
    """The annotation checks of :func:`validate_coco`, on annotations given one after the other (a list, or a
    stream read a chunk at a time); raise :class:`CocoFormatError` on the first problem."""
    seen: set[int] = set()
    for index, ann in enumerate(annotations):
        check_annotation(ann, index, header, source=source, require_segmentation=require_segmentation)
        if ann["id"] in seen:
            raise CocoFormatError("duplicate annotation id", source=source, where=f"annotation {ann['id']}", field="id")
        seen.add(ann["id"])
        if check_masks and not allow_empty_masks and "segmentation" in ann:
            height, width = header.sizes[ann["image_id"]]
            if Crop.from_segmentation(ann["segmentation"], height, width).area == 0:
                raise empty_mask_error(source, f"annotation {ann['id']}")


@dataclass(frozen=True)
class CocoHeader:
    """What annotations are checked against: ``sizes`` maps image id to ``(height, width)``."""

    sizes: dict[int, tuple[int, int]]
    category_ids: frozenset[int]


def check_header(data: Any, *, source: str = "<data>") -> CocoHeader:
    """Check everything but the annotations themselves (see :func:`validate_coco`): the top level, images and
    categories."""

    def fail(message: str, where: str = "", field: str = "") -> CocoFormatError:
        return CocoFormatError(message, source=source, where=where, field=field)

    if not isinstance(data, dict):
        raise fail(f"the top level must be a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise fail("missing", field=key)
        if not isinstance(data[key], list):
            raise fail(f"must be a list, got {type(data[key]).__name__}", field=key)

    sizes: dict[int, tuple[int, int]] = {}
    for index, image in enumerate(data["images"]):
        where = f"image #{index}"
        if not isinstance(image, dict):
            raise fail("must be an object", where)
        image_id = image.get("id")
        if not _is_int64(image_id):
            raise fail(f"must be a 64-bit integer, got {_short(image_id)}", where, "id")
        where = f"image {image_id}"
        if image_id in sizes:
            raise fail("duplicate image id", where, "id")
        for key in ("height", "width"):
            if not _is_int(image.get(key)) or image[key] <= 0:
                raise fail(f"must be a positive integer, got {_short(image.get(key))}", where, key)
        if image["height"] * image["width"] > MAX_IMAGE_PIXELS:
            raise fail(f"{image['width']}x{image['height']} is more than {MAX_IMAGE_PIXELS:,} pixels (the most "
                       "hf-noisy's masks support)", where, "height")
        sizes[image_id] = (image["height"], image["width"])

    category_ids: set[int] = set()
    for index, category in enumerate(data["categories"]):
        where = f"category #{index}"
        if not isinstance(category, dict):
            raise fail("must be an object", where)
        if not _is_int64(category.get("id")):
            raise fail(f"must be a 64-bit integer, got {_short(category.get('id'))}", where, "id")
        where = f"category {category['id']}"
        if category["id"] in category_ids:
            raise fail("duplicate category id", where, "id")
        if not isinstance(category.get("name"), str):
            raise fail("must be a string", where, "name")
        if not isinstance(category.get("supercategory", ""), str):
            raise fail(f"must be a string, got {type(category['supercategory']).__name__}", where, "supercategory")
        if "frequency" in category and category["frequency"] not in LVIS_FREQUENCIES:
            raise fail(f"must be one of {', '.join(LVIS_FREQUENCIES)} (LVIS), got {_short(category['frequency'])}",
                       where, "frequency")
        category_ids.add(category["id"])
    if not category_ids:
        raise fail("no categories", field="categories")
    for image in data["images"]:  # LVIS's federated lists, when present
        for key in LVIS_IMAGE_LISTS:
            if key in image and (not isinstance(image[key], list)
                                 or not all(_is_int(c) and c in category_ids for c in image[key])):
                raise fail(f"must be a list of known category ids (LVIS), got {_short(image[key])}",
                           f"image {image['id']}", key)
    return CocoHeader(sizes, frozenset(category_ids))


def check_annotation(ann: Any, index: int, header: CocoHeader, *, source: str = "<data>",
                     require_segmentation: bool = True) -> None:
    """Check one annotation (the ``index``-th) against ``header``: every check of :func:`validate_coco` but
    unique ids and empty masks."""

    def fail(message: str, where: str = "", field: str = "") -> CocoFormatError:
        return CocoFormatError(message, source=source, where=where, field=field)

    where = f"annotation #{index}"
    if not isinstance(ann, dict):
        raise fail("must be an object", where)
    ann_id = ann.get("id")
    if not _is_int(ann_id) or not 0 <= ann_id < 2**63:
        raise fail(f"must be an integer in [0, 2**63), got {_short(ann_id)}", where, "id")
    where = f"annotation {ann_id}"
    image_id = ann.get("image_id")
    if not _is_int(image_id) or image_id not in header.sizes:
        raise fail(f"unknown image id {_short(image_id)}", where, "image_id")
    category_id = ann.get("category_id")
    if not _is_int(category_id) or category_id not in header.category_ids:
        raise fail(f"unknown category id {_short(category_id)}", where, "category_id")
    if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd"), bool):
        raise fail(f"must be 0 or 1, got {_short(ann.get('iscrowd'))}", where, "iscrowd")
    if "bbox" in ann:
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not _is_numbers(bbox):
            raise fail(f"must be 4 finite numbers [x, y, w, h], got {_short(bbox)}", where, "bbox")
        if bbox[2] < 0 or bbox[3] < 0:
            raise fail(f"width and height must be >= 0, got {_short(bbox)}", where, "bbox")
    if "area" in ann and (not _is_number(ann["area"]) or ann["area"] < 0):
        raise fail(f"must be a finite number >= 0, got {_short(ann['area'])}", where, "area")
    if "segmentation" not in ann:
        if require_segmentation:
            raise fail("missing", where, "segmentation")
        if "bbox" not in ann:
            raise fail("missing, and no 'bbox' either", where, "segmentation")
        return
    height, width = header.sizes[image_id]
    _check_segmentation(ann["segmentation"], height, width, fail, where)


def empty_mask_error(source: str, where: str) -> CocoFormatError:
    """The error for an annotation whose mask has no pixel inside its image."""
    return CocoFormatError("the mask is empty (no pixel inside the image); allow empty masks to keep it as it is",
                           source=source, where=where, field="segmentation")


def _check_segmentation(segmentation: Any, height: int, width: int, fail, where: str) -> None:
    field = "segmentation"
    if isinstance(segmentation, list):
        if not segmentation:
            raise fail("no polygon", where, field)
        tol = POLYGON_TOLERANCE
        for k, polygon in enumerate(segmentation):
            bounds = _rle.polygon_bounds(polygon)  # None unless a list of finite plain numbers: then look closer
            if bounds is None and (not isinstance(polygon, list) or not _is_numbers(polygon)):
                raise fail(f"polygon {k} must be a list of finite numbers", where, field)
            if len(polygon) % 2:
                raise fail(f"polygon {k} has an odd number of coordinates ({len(polygon)})", where, field)
            if len(polygon) < 6:
                raise fail(f"polygon {k} has {len(polygon) // 2} points; a polygon needs at least 3", where, field)
            if bounds is not None and bounds[0] >= -tol and bounds[1] >= -tol and bounds[2] <= width + tol and bounds[3] <= height + tol:
                continue
            xs, ys = polygon[0::2], polygon[1::2]
            if min(xs) < -tol or min(ys) < -tol or max(xs) > width + tol or max(ys) > height + tol:
                raise fail(
                    f"polygon {k} lies outside the {width}x{height} image "
                    f"(x in [{min(xs)}, {max(xs)}], y in [{min(ys)}, {max(ys)}])",
                    where,
                    field,
                )
        return
    if not isinstance(segmentation, dict):
        raise fail(f"must be polygons (list) or RLE (object), got {type(segmentation).__name__}", where, field)
    size, counts = segmentation.get("size"), segmentation.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not all(map(_is_int, size)):
        raise fail(f"RLE size must be [height, width], got {_short(size)}", where, field)
    if list(size) != [height, width]:
        raise fail(f"RLE size {size} does not match the image's [height, width] = [{height}, {width}]", where, field)
    if isinstance(counts, list):
        if set(map(type, counts)) - {int}:
            raise fail("uncompressed RLE counts must be integers", where, field)
    elif isinstance(counts, str):
        if not counts or not all(48 <= ord(ch) < 48 + 64 for ch in counts):
            raise fail("compressed RLE counts must be a non-empty COCO run-length string", where, field)
    else:
        raise fail(f"RLE counts must be a string or a list of ints, got {type(counts).__name__}", where, field)
    try:
        check_rle(segmentation)
    except (MaskError, ValueError, IndexError) as err:
        raise fail(f"invalid RLE: {err}", where, field) from None


def dumps_coco(data: dict) -> bytes:
    """The canonical bytes hf-noisy writes for a COCO dict (compact UTF-8 JSON, keys in insertion order)."""
    return orjson.dumps(data)


def write_coco(data: dict, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Write a COCO dict atomically (temporary file + rename); ``overwrite=False`` never replaces a file."""
    atomic_write_bytes(path, dumps_coco(data), overwrite=overwrite)
