"""A COCO results file read in bounded memory: batches of validated detections, never the whole list.

The file is read in blocks; the C extension (``_rle.scan_json_array``) finds where each top-level element of the
JSON list ends (a linear scan that tracks strings and nesting, at most 64 deep), and complete elements are parsed
by orjson a batch at a time. Each batch is validated by :func:`hf_noisy.metrics.prepare_predictions` with the
file's first detection in front of it, so the rules that depend on the first result (a ``bbox`` sets every
area) and the error messages (``detection #index`` counts from the start of the file) are those of reading the
whole file at once. Memory: one block, one batch and one element at most (an element is capped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from .predictions import PredictionError, load_predictions, prepare_predictions

__all__ = ["iter_prepared", "BLOCK_BYTES", "MAX_DETECTION_BYTES"]

#: Bytes read from the file at a time, and about the size of the batches parsed at once.
BLOCK_BYTES = 8 << 20

#: The largest single detection (its JSON text) accepted.
MAX_DETECTION_BYTES = 256 << 20

#: Files up to this size that are not a well-formed list are read whole, for the exact message of
#: :func:`hf_noisy.metrics.load_predictions`.
_SMALL = 64 << 20

_INDEX = re.compile(r"^detection #(\d+)")


def iter_prepared(path: str | os.PathLike, gt: dict, block_bytes: int = BLOCK_BYTES) -> Iterator[list[dict]]:
    """Batches of evaluable detections (as :func:`~hf_noisy.metrics.prepare_predictions` returns them, ``id``
    = position in the file + 1), in file order. Raises :class:`PredictionError` naming the file and the
    detection."""
    import orjson

    from .._rle import scan_json_array

    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: no such file")
    size = path.stat().st_size
    state, buffer, start, count, first = (0, 0, 0, 0, 0), b"", 0, 0, None
    with open(path, "rb") as f:
        while not state[4]:
            block = f.read(block_bytes)
            if not block:
                break
            try:
                ends, new_state = scan_json_array(block, state)
            except ValueError as err:
                _structure_error(path, size, str(err))
            if not new_state[3]:  # only whitespace so far
                continue
            if not state[3]:
                buffer, start = b"", block.index(b"[") + 1
            base, state = len(buffer), new_state
            buffer += block
            if ends:
                cut = base + (ends[-1] if ends[-1] >= 0 else -1 - ends[-1])
                elements = _parse(orjson, path, buffer[start:cut], count)
                if elements:
                    if first is None:
                        first = elements[0]
                    yield _prepare(elements, first, gt, count)
                    count += len(elements)
                buffer, start = buffer[cut + 1:], 0
            elif len(buffer) - start > MAX_DETECTION_BYTES:
                raise PredictionError(f"{path}: detection #{count} is larger than {MAX_DETECTION_BYTES >> 20} MiB")
        rest = buffer + f.read(1 << 20) if state[4] else b""
    if not state[3]:
        _structure_error(path, size, "empty file" if size == 0 else "COCO results must be a JSON list of detections")
    if not state[4]:
        _structure_error(path, size, "the JSON list is truncated (no closing ']')")
    if rest.strip():
        _structure_error(path, size, "text after the end of the JSON list")


def _parse(orjson, path: Path, text: bytes, count: int) -> list:
    """The elements of ``text`` (complete elements joined by commas)."""
    if not text.strip():
        return []
    try:
        return orjson.loads(b"[" + text + b"]")
    except orjson.JSONDecodeError as err:
        raise PredictionError(f"{path}: invalid JSON in or after detection #{count}: {err}") from None


def _prepare(elements: list, first: dict, gt: dict, count: int) -> list[dict]:
    """``prepare_predictions`` of a batch, as if it were read with the whole file (ids, rules, messages)."""
    offset = 0 if count == 0 else 1
    try:
        prepared = prepare_predictions(elements if offset == 0 else [first, *elements], gt)
    except PredictionError as err:
        message = _INDEX.sub(lambda m: f"detection #{int(m.group(1)) - offset + count}", str(err), count=1)
        raise PredictionError(message) from None
    prepared = prepared[offset:]
    for k, det in enumerate(prepared):
        det["id"] = count + k + 1
    return prepared


def _structure_error(path: Path, size: int, reason: str) -> None:
    """Raise today's message of reading the whole file where the file is small, else ``reason``."""
    if size <= _SMALL:
        load_predictions(path)
    raise PredictionError(f"{path}: {reason}")
