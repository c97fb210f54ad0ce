"""Read a COCO file without holding its annotations: one pass finds where each annotation lies.

:func:`scan_coco` reads the file once, in blocks of :data:`BLOCK_BYTES`, and returns a :class:`CocoLayout`:
the raw JSON bytes of every top-level value but ``annotations`` (in file order), the byte span of each element
of the ``annotations`` array, and the file's SHA-256. Memory: the top-level values but ``annotations`` (images,
categories, info: a few percent of a COCO file), 16 bytes per annotation and one block. The annotations are
then read a range at a time (:meth:`CocoLayout.read_annotations`), in any process that can open the file.

The scanner only follows the structure (strings, brackets, commas); every value is parsed by orjson, the
parser :func:`hf_noisy.coco.parse_json` tries first, so a file read this way gives the same Python objects as
one read whole. A file this reader does not follow to the letter (not JSON, JSON that orjson refuses such as
``NaN``, a top level that is not an object, ``annotations`` that is not an array or is given twice) raises
:class:`NotStreamable`: read it whole instead, which words its problem (or accepts it) as before.
"""

from __future__ import annotations

import hashlib
import os
import re
from array import array
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any, BinaryIO, Iterator

import orjson

from . import _rle

__all__ = ["BLOCK_BYTES", "AnnotationFile", "CocoLayout", "NotStreamable", "parse_value", "read_coco_header", "scan_coco"]

#: bytes read at a time (the scanner's own memory is about one block)
BLOCK_BYTES = 8 << 20

_STRING_RE = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# A JSON string (complete), a bracket, or the start of a string the buffer ends in the middle of.
_TOKEN = re.compile(_STRING_RE + rb'|[\[\]{}]|"')
_STRING = re.compile(_STRING_RE)
# An object with objects at most two deep inside (an annotation, an RLE segmentation) matched in one call, by
# its braces and strings only: brackets inside are left to orjson, which parses every value (possessive
# quantifiers: no backtracking where the buffer cuts the object, which then goes to the token loop)
_FLAT = rb'\{(?:[^{}"]++|' + _STRING_RE + rb')*+\}'
_OBJECT = re.compile(rb'\{(?:[^{}"]++|' + _STRING_RE + rb'|' + _FLAT + rb')*+\}')
_SCALAR = re.compile(rb"[^,}\]\s]+")
_SPACE = re.compile(rb"[ \t\n\r]*")


class NotStreamable(Exception):
    """The file is not one this reader follows (see the module docstring); read it whole instead."""


def parse_value(raw: bytes) -> Any:
    """One JSON value, parsed by orjson; :class:`NotStreamable` where orjson refuses it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise NotStreamable from None


@dataclass(frozen=True)
class CocoLayout:
    """Where a COCO file's parts lie.

    Attributes:
        path: the file.
        head: top-level key -> the raw JSON bytes of its value, in file order, ``annotations`` left out.
        starts, ends: byte offsets of each annotation's first byte and one past its last, in file order.
        sha256: hex SHA-256 of the file's bytes.
        size: the file's size in bytes, and ``mtime_ns`` its modification time, when scanned.
    """

    path: Path
    head: dict[str, bytes]
    starts: array
    ends: array
    sha256: str
    size: int
    mtime_ns: int

    def __len__(self) -> int:
        return len(self.starts)

    def read_annotations(self, start: int, stop: int, handle: BinaryIO | None = None) -> list:
        """Annotations ``[start, stop)`` parsed (orjson; :class:`NotStreamable` where it refuses them), read
        from ``handle`` (an open binary handle on the file) or from a fresh one. The file must be unchanged
        since the scan (:class:`NotStreamable` otherwise)."""
        if start >= stop:
            return []
        if handle is None:
            with open(self.path, "rb") as fresh:
                return self.read_annotations(start, stop, fresh)
        stat = os.fstat(handle.fileno())
        if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
            raise NotStreamable(f"{self.path} changed while it was read")
        handle.seek(self.starts[start])
        raw = handle.read(self.ends[stop - 1] - self.starts[start])
        # the elements with what lay between them (white space and commas), two levels deep as in the file
        return parse_value(b"[[" + raw + b"]]")[0]


class _Blocks:
    """The file as a growing window: ``buf`` holds bytes ``[base, base + len(buf))``; ``more`` reads a block,
    dropping what lies before ``keep`` (an absolute offset)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.buf, self.base, self.eof = handle, b"", 0, False
        self.digest = hashlib.sha256()

    def more(self, keep: int) -> None:
        if self.eof:
            raise NotStreamable("the file ends inside a value")
        block = self.handle.read(BLOCK_BYTES)
        self.digest.update(block)
        self.eof = not block
        drop = keep - self.base
        self.buf = self.buf[drop:] + block
        self.base = keep

    def skip_space(self, at: int) -> tuple[int, int]:
        """The offset of the first non-space byte from ``at`` and that byte (-1 at the end of the file)."""
        while True:
            i = _SPACE.match(self.buf, at - self.base).end()
            if i < len(self.buf):
                return self.base + i, self.buf[i]
            if self.eof:
                return self.base + i, -1
            self.more(self.base + i)

    def value_end(self, at: int) -> int:
        """One past the end of the JSON value that starts at ``at`` (the structure only; orjson parses it)."""
        while True:
            i = at - self.base
            first = self.buf[i]
            if first == 0x7B:  # '{'
                match = _OBJECT.match(self.buf, i)
                end = match.end() if match else self._container_end(i)
            elif first == 0x5B:  # '['
                end = self._array_end(i)
            elif first == 0x22:  # '"'
                match = _STRING.match(self.buf, i)
                end = match.end() if match else None
            else:
                match = _SCALAR.match(self.buf, i)
                if match is None:
                    raise NotStreamable("expected a value")
                end = match.end() if match.end() < len(self.buf) or self.eof else None
            if end is not None:
                return self.base + end
            self.more(at)

    def _array_end(self, i: int) -> int | None:
        """One past the array at ``i``, its objects matched in one call each; the token loop for anything else
        (other elements, deeper objects, an array cut by the end of the buffer)."""
        buf = self.buf
        j = _SPACE.match(buf, i + 1).end()
        if buf[j:j + 1] == b"]":
            return j + 1
        while True:
            match = _OBJECT.match(buf, j)
            if match is None:
                return self._container_end(i)
            j = _SPACE.match(buf, match.end()).end()
            after = buf[j:j + 1]
            if after == b"]":
                return j + 1
            if after != b",":
                return self._container_end(i)
            j = _SPACE.match(buf, j + 1).end()

    def _container_end(self, i: int) -> int | None:
        depth = 0
        for match in _TOKEN.finditer(self.buf, i):
            token = match.group()
            if token in (b"{", b"["):
                depth += 1
            elif token in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    return match.end()
            elif token == b'"':
                return None  # a string cut by the end of the buffer
        return None


def scan_coco(path: str | os.PathLike) -> CocoLayout:
    """Scan a COCO file (see the module docstring); :class:`NotStreamable` if this reader cannot follow it.

    Raises ``OSError`` if the file cannot be read."""
    path = Path(path)
    head: dict[str, bytes] = {}
    starts, ends = array("q"), array("q")
    seen_annotations = False
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        blocks = _Blocks(handle)
        at, byte = blocks.skip_space(0)
        if byte != ord("{"):
            raise NotStreamable("the top level is not an object")
        at, byte = blocks.skip_space(at + 1)
        while byte != ord("}"):
            if head or seen_annotations:
                if byte != ord(","):
                    raise NotStreamable("expected ',' between top-level values")
                at, byte = blocks.skip_space(at + 1)
            if byte != 0x22:
                raise NotStreamable("expected a key")
            end = blocks.value_end(at)
            key = parse_value(blocks.buf[at - blocks.base:end - blocks.base])
            at, byte = blocks.skip_space(end)
            if byte != ord(":"):
                raise NotStreamable("expected ':' after a key")
            at, byte = blocks.skip_space(at + 1)
            if key in head or (key == "annotations" and seen_annotations):
                raise NotStreamable(f"the key {key!r} is given twice")
            if key == "annotations":
                if byte != ord("["):
                    raise NotStreamable("annotations is not an array")
                seen_annotations = True
                at = _scan_array(blocks, at, starts, ends)
            else:
                end = blocks.value_end(at)
                raw = blocks.buf[at - blocks.base:end - blocks.base]
                parse_value(raw)  # refused values make the file one to read whole
                head[key] = raw
                at = end
            at, byte = blocks.skip_space(at)
            if byte == -1:
                raise NotStreamable("the file ends inside the top-level object")
        at, byte = blocks.skip_space(at + 1)
        if byte != -1:
            raise NotStreamable("more after the top-level object")
    if not seen_annotations:
        raise NotStreamable("no annotations array")
    return CocoLayout(path, head, starts, ends, blocks.digest.hexdigest(), stat.st_size, stat.st_mtime_ns)


def _scan_array(blocks: _Blocks, at: int, starts: array, ends: array) -> int:
    """Record the span of each element of the array at ``at`` (its structure followed in C, a block at a time);
    returns one past its ``]``."""
    state = (0, 0, 0, 0, 0, 0, -1, -1)
    while True:
        try:
            first, last, state, done = _rle.json_array_spans(blocks.buf, at - blocks.base, blocks.base, state)
        except ValueError as err:
            raise NotStreamable(str(err)) from None
        starts.frombytes(first)
        ends.frombytes(last)
        if done >= 0:
            return done
        if blocks.eof:
            raise NotStreamable("the file ends inside the annotations")
        at = blocks.base + len(blocks.buf)
        blocks.more(at)  # what was scanned is dropped: only the spans are kept


#: annotations parsed at a time when a file's annotations are read one after the other
CHUNK_ANNOTATIONS = 1000


class AnnotationFile(Sequence):
    """The annotations of a COCO file (all, or those of its first images), read from the file when asked for:
    a read-only sequence in file order, and :meth:`by_image`, the annotations of a range of image rows grouped
    by image. Memory: the layout's 16 bytes per annotation plus 12 (each one's image row and place in row
    order); nothing parsed is kept.

    Made by :func:`read_coco_header` after a validating pass; pickles small (no parsed annotation), so worker
    processes receive it whole and read their own rows.

    Attributes:
        layout: where the file's annotations lie.
        indices: which of them (positions in the file, increasing).
        rows: the image row (position in ``images``) of each, aligned with ``indices``.
        defaults: ``(key, value)`` pairs set on each annotation read that lacks the key (LVIS's ``iscrowd``).
    """

    def __init__(self, layout: CocoLayout, indices, rows, defaults: tuple[tuple[str, Any], ...] = ()) -> None:
        import numpy as np

        self.layout, self.defaults = layout, tuple(defaults)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int32)
        self._order = np.argsort(self.rows, kind="stable")  # row order, file order within a row
        self._sorted_rows = self.rows[self._order]

    def __len__(self) -> int:
        return len(self.indices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnnotationFile):
            return NotImplemented
        return (self.layout.path, self.layout.sha256, self.defaults) == (other.layout.path, other.layout.sha256,
                                                                         other.defaults) \
            and bool((self.indices.size == other.indices.size) and (self.indices == other.indices).all())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AnnotationFile({str(self.layout.path)!r}, {len(self)} annotations)"

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._read(self.indices[key])
        return self._read(self.indices[[key]])[0]

    def __iter__(self) -> Iterator[dict]:
        with open(self.layout.path, "rb") as handle:
            for start in range(0, len(self), CHUNK_ANNOTATIONS):
                yield from self._read(self.indices[start:start + CHUNK_ANNOTATIONS], handle)

    def head(self, images: int) -> "AnnotationFile":
        """The annotations of the first ``images`` image rows, in file order."""
        kept = self.rows < images
        return AnnotationFile(self.layout, self.indices[kept], self.rows[kept], self.defaults)

    def by_image(self, start: int, stop: int, handle: BinaryIO | None = None) -> list[list[dict]]:
        """For each image row in ``[start, stop)``, its annotations in file order, read from ``handle`` (an
        open binary handle on the file) or a fresh one."""
        lo, hi = self._sorted_rows.searchsorted([start, stop])
        picked = self._order[lo:hi]
        annotations = self._read(self.indices[picked], handle)
        groups: list[list[dict]] = [[] for _ in range(stop - start)]
        for row, ann in zip(self._sorted_rows[lo:hi].tolist(), annotations):
            groups[row - start].append(ann)
        return groups

    def _read(self, positions, handle: BinaryIO | None = None) -> list:
        if handle is None:
            with open(self.layout.path, "rb") as fresh:
                return self._read(positions, fresh)
        stat = os.fstat(handle.fileno())
        if (stat.st_size, stat.st_mtime_ns) != (self.layout.size, self.layout.mtime_ns):
            raise NotStreamable(f"{self.layout.path} changed while it was read")
        fd, starts, ends = handle.fileno(), self.layout.starts, self.layout.ends
        pieces = [os.pread(fd, ends[i] - starts[i], starts[i]) for i in positions.tolist()]
        annotations = parse_value(b"[" + b",".join(pieces) + b"]")
        for key, value in self.defaults:
            for ann in annotations:
                ann.setdefault(key, value)
        return annotations


def read_coco_header(path: str | os.PathLike, *, defaults: tuple[tuple[str, Any], ...] = ()) -> tuple[dict, AnnotationFile]:
    """A COCO file validated as :func:`hf_noisy.coco.load_coco` validates it, read as a stream: its top-level
    values but ``annotations`` (a dict in file order) and an :class:`AnnotationFile` of its annotations.

    Raises :class:`~hf_noisy.coco.CocoFormatError` (naming the file) on the first problem, as ``load_coco``
    would, and :class:`NotStreamable` where this reader does not follow the file (then read it whole)."""
    from array import array as _array

    from .coco import check_annotations, check_header

    layout = scan_coco(path)
    source = str(path)
    head = {key: parse_value(raw) for key, raw in layout.head.items()}
    header = check_header({**head, "annotations": []}, source=source)
    row_of = {image["id"]: row for row, image in enumerate(head["images"])}
    rows = _array("i")

    def annotations() -> Iterator[dict]:
        with open(layout.path, "rb") as handle:
            for start in range(0, len(layout), CHUNK_ANNOTATIONS):
                for ann in layout.read_annotations(start, min(start + CHUNK_ANNOTATIONS, len(layout)), handle):
                    yield ann
                    rows.append(row_of[ann["image_id"]])  # runs once the checks below accepted ``ann``

    check_annotations(annotations(), header, source=source)
    # the raw top-level values are parsed in ``head``: the file's index keeps only where annotations lie
    return head, AnnotationFile(replace(layout, head={}), range(len(layout)), rows, defaults)
