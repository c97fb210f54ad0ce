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
from typing import Iterable, Iterator

from .predictions import PredictionError, load_predictions, predictions_of, prepare_predictions

__all__ = ["BLOCK_BYTES", "MAX_DETECTION_BYTES", "REPLAY_BYTES", "first_of", "iter_texts", "parse_batch", "prepare_batch",
           "prepare_text"]

#: Bytes read from the file at a time, and about the size of the batches parsed at once.
BLOCK_BYTES = 1 << 20

#: The largest single detection (its JSON text) accepted.
MAX_DETECTION_BYTES = 256 << 20

#: Files up to this size that are not a well-formed list are read whole, for the exact message of
#: :func:`hf_noisy.metrics.load_predictions`.
_SMALL = 64 << 20
#: The first bytes of a stream kept for the same message (a stream cannot be read again).
REPLAY_BYTES = 4 << 20

_INDEX = re.compile(r"^detection #(\d+)")


def iter_texts(path: str | os.PathLike, block_bytes: int | None = None, *,
               blocks: Iterable[bytes] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """``(index of its first detection, detections in it, their JSON text joined by commas)`` per batch of the
    results file, in file order; the structure is checked as it is read (see the module docstring), the elements
    are not parsed. Raises :class:`PredictionError` naming the file.

    ``blocks``: the file's bytes as a stream of pieces (e.g. decompressed as they arrive) instead of reading
    ``path``, which then only names the file in messages; the stream is read to its end (what follows the
    list must be whitespace), and only its first :data:`REPLAY_BYTES` are kept, for the exact message of a
    small file that is not a well-formed list."""
    from .._rle import scan_json_array

    path = Path(path)
    if blocks is None:
        if not path.is_file():
            raise PredictionError(f"{path}: no such file")
        blocks = _read_blocks(path, block_bytes or BLOCK_BYTES)
        size, replay = path.stat().st_size, None
    else:
        size, replay = None, bytearray()
    blocks = iter(blocks)
    seen = 0

    def fail(reason: str) -> None:
        if size is None:  # a stream: its replay, when it holds all of it
            if seen <= REPLAY_BYTES:
                predictions_of(bytes(replay), str(path))
            raise PredictionError(f"{path}: {reason}")
        _structure_error(path, size, reason)

    # A bytearray: an element that spans many blocks is appended to in amortised constant time per block.
    state, buffer, start, count = (0, 0, 0, 0, 0), bytearray(), 0, 0
    for block in blocks:
        seen += len(block)
        if replay is not None and seen <= REPLAY_BYTES:
            replay += block
        try:
            ends, new_state = scan_json_array(block, state)
        except ValueError as err:
            if size is None:  # a stream: read on, so its own checks and the replay see all of it
                seen = _drain(blocks, replay, seen)
            fail(str(err))
        if not new_state[3]:  # only whitespace so far
            continue
        if not state[3]:
            buffer, start = bytearray(), block.index(b"[") + 1
        base, state = len(buffer), new_state
        buffer += block
        if ends:
            cut = base + (ends[-1] if ends[-1] >= 0 else -1 - ends[-1])
            text, n = bytes(buffer[start:cut]), len(ends)
            if ends[-1] < 0 and not text[text.rfind(b",") + 1:].strip():
                n -= 1  # the closing bracket after nothing: "[ ]" (or "[a, ]", which parsing refuses)
            if text.strip():
                yield count, n, text
            count += n
            buffer, start = buffer[cut + 1:], 0
        elif len(buffer) - start > MAX_DETECTION_BYTES:
            raise PredictionError(f"{path}: detection #{count} is larger than {MAX_DETECTION_BYTES >> 20} MiB")
        if state[4]:
            break
    rest = bytes(buffer) if state[4] else b""
    if state[4]:
        for block in blocks:  # the file mode reads 1 MiB past the list; a stream is read to its end
            seen += len(block)
            if replay is not None and seen <= REPLAY_BYTES:
                replay += block
            if len(rest) < 1 << 20:
                rest += block
            elif block.strip():
                rest += block[:1]
            if size is not None and len(rest) >= 1 << 20:
                break
    if not state[3]:
        fail("empty file" if seen == 0 else "COCO results must be a JSON list of detections")
    if not state[4]:
        fail("the JSON list is truncated (no closing ']')")
    if rest.strip():
        fail("text after the end of the JSON list")


def _read_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(block_bytes):
            yield block


def _drain(blocks: Iterator[bytes], replay: bytearray | None, seen: int) -> int:
    """Read a stream to its end (its own checks, e.g. an upload's caps, run), keeping the replay's first bytes;
    the bytes seen in all."""
    for block in blocks:
        seen += len(block)
        if replay is not None and seen <= REPLAY_BYTES:
            replay += block
    return seen


def prepare_text(path: str | os.PathLike, text: bytes, start: int, first: dict | None, images: dict,
                 categories: list, iou_types: Iterable[str] = ("segm", "bbox", "boundary")) -> list[dict]:
    """The evaluable detections of one batch of :func:`iter_texts` (``start``: the index of its first one;
    ``first``: the file's first detection, ``None`` for the first batch), as if the whole file were read at
    once. ``images`` maps image ids to the ground truth's images; ``iou_types`` as for
    :func:`~hf_noisy.metrics.prepare_predictions`."""
    elements = parse_batch(path, text, start)
    return prepare_batch(elements, elements[0] if first is None else first, categories, start, images, iou_types)


def first_of(path: str | os.PathLike, text: bytes) -> dict:
    """The first detection of the first batch's text (as parsed JSON)."""
    return parse_batch(path, text, 0)[0]


def parse_batch(path: str | os.PathLike, text: bytes, count: int) -> list:
    """The elements of one batch's ``text`` (complete elements joined by commas; ``count``: the index of the
    first, for messages), with :func:`hf_noisy.coco.parse_json`. Raises :class:`PredictionError` naming
    ``path``."""
    import json

    from ..coco import parse_json

    if not text.strip():
        return []
    try:
        return parse_json(b"[" + text + b"]")
    except json.JSONDecodeError as err:
        raise PredictionError(f"{path}: not valid JSON ({err.msg}) in or after detection #{count}") from None
    except UnicodeDecodeError as err:
        raise PredictionError(f"{path}: not UTF-8 text ({err.reason}) in or after detection #{count}") from None
    except RecursionError:
        raise PredictionError(f"{path}: JSON nested too deeply in or after detection #{count}") from None


def prepare_batch(elements: list, first: dict, categories: list, count: int, images: dict,
                  iou_types: Iterable[str] = ("segm", "bbox", "boundary")) -> list[dict]:
    """``prepare_predictions`` of a batch, as if it were read with the whole file (ids, rules, messages).
    ``images`` maps image ids to images: the check sees only the images the batch names (the others cannot
    change its outcome), so its cost follows the batch, not the ground truth."""
    offset = 0 if count == 0 else 1
    batch = elements if offset == 0 else [first, *elements]
    named = {}
    for element in batch:
        try:
            image = images.get(element.get("image_id")) if isinstance(element, dict) else None
        except TypeError:  # an unhashable id: prepare_predictions names it
            image = None
        if image is not None:
            named[image["id"]] = image
    view = {"images": list(named.values()), "categories": categories}
    try:
        prepared = prepare_predictions(batch, view, iou_types)
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
