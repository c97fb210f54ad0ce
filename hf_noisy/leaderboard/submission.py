"""Leaderboard submissions: the metadata, the limits, and the checks a file passes before anything is stored.

A submission is a COCO results file (a JSON list of ``{"image_id", "category_id", "segmentation": RLE,
"score"}``, optionally gzip-compressed) plus :class:`SubmissionMeta`. Every check raises
:class:`SubmissionError` whose ``kind`` names the rule (``"oversized"``, ``"gzip-bomb"``, ``"not-json"``, ...)
and whose message says what is wrong and where. The checks never execute anything from the file: the bytes
are only ever parsed as JSON, after size, compression, encoding and nesting-depth caps.
"""

from __future__ import annotations

import gzip
import io
import itertools
import math
import os
import re
import zlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from .. import benchmarks
from ..benchmarks import CONFIGS
from ..errors import HfNoisyError
from .policy import Limits

__all__ = [
    "CheckBudgetSpent",
    "SubmissionError",
    "SubmissionMeta",
    "check_results",
    "check_results_file",
    "gzip_chunks",
    "iter_upload",
    "parse_results",
]

class SubmissionError(HfNoisyError):
    """A submission that is refused; ``kind`` is the rule it broke (stable, for programs and tests)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_SUBMITTER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9])?")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f<>\"']+")


def _check_name(field: str, value: Any, limits: Limits, *, required: bool = True) -> str:
    """Free-text names (model, method), NFKC-normalised (:func:`~.identity.clean_name`: no surrogates,
    unassigned, private-use, control, format or invisible characters), no path separators or ``..``, sane
    length."""
    from .identity import InvalidName, clean_name

    if not isinstance(value, str):
        raise SubmissionError("name", f"meta '{field}': must be a string, got {type(value).__name__}")
    if not value:
        if required:
            raise SubmissionError("name", f"meta '{field}': required")
        return value
    if len(value) > limits.max_name_length:
        raise SubmissionError("name", f"meta '{field}': {len(value)} characters, at most {limits.max_name_length}")
    try:
        value = clean_name(field, value)
    except InvalidName as err:
        raise SubmissionError("name", str(err)) from None
    if len(value) > limits.max_name_length:
        raise SubmissionError("name", f"meta '{field}': {len(value)} characters once normalised, at most "
                              f"{limits.max_name_length}")
    if "/" in value or "\\" in value or ".." in value:
        raise SubmissionError("name", f"meta '{field}': {value!r} contains a path separator or '..'")
    return value


@dataclass(frozen=True)
class SubmissionMeta:
    """Who submitted what.

    Attributes:
        model_name: the model's name on the board (one submission per name, benchmark and config per submitter).
        benchmark: a benchmark a board holds (:func:`hf_noisy.benchmarks.board_ids`).
        trained_on: the config the model was trained on, one of :data:`hf_noisy.benchmarks.CONFIGS`; predictions are always on the
            benchmark's *clean* validation split.
        submitter: the Hub user name (on the Space: the logged-in user).
        method: the training method (e.g. ``"CE"``, ``"SCE"``); free text.
        config_revision: the dataset revision the training config came from (tag, branch or commit).
        paper_url / code_url: ``http(s)://`` links, or empty.
    """

    model_name: str
    benchmark: str
    trained_on: str
    submitter: str
    method: str = ""
    config_revision: str = ""
    paper_url: str = ""
    code_url: str = ""

    def check(self, limits: Limits = Limits()) -> None:
        """Raise :class:`SubmissionError` (kind ``"name"`` or ``"meta"``) on the first bad field."""
        self.normalised(limits)

    def normalised(self, limits: Limits = Limits()) -> SubmissionMeta:
        """A copy with the free-text names NFKC-normalised, as they are stored and compared; raises
        :class:`SubmissionError` (kind ``"name"`` or ``"meta"``) on the first bad field."""
        for item in fields(self):
            if not isinstance(getattr(self, item.name), str):
                raise SubmissionError("meta", f"meta '{item.name}': must be a string")
        if self.benchmark not in benchmarks.board_ids():
            raise SubmissionError("meta", f"meta 'benchmark': {self.benchmark!r} is not one of "
                                  f"{', '.join(benchmarks.board_ids())}")
        if self.trained_on not in CONFIGS:
            raise SubmissionError("meta", f"meta 'trained_on': {self.trained_on!r} is not one of {', '.join(CONFIGS)}")
        if not _SUBMITTER.fullmatch(self.submitter):
            raise SubmissionError("name", f"meta 'submitter': {self.submitter!r} is not a Hub user name (letters, "
                                  "digits, '-', '_', '.', at most 96 characters)")
        model_name = _check_name("model_name", self.model_name, limits)
        method = _check_name("method", self.method, limits, required=False)
        if self.config_revision and not _REVISION.fullmatch(self.config_revision):
            raise SubmissionError("name", f"meta 'config_revision': {self.config_revision!r} is not a tag, branch "
                                  "or commit name (letters, digits, '-', '_', '.')")
        for name in ("paper_url", "code_url"):
            url = getattr(self, name)
            if url and (len(url) > limits.max_url_length or not _URL.fullmatch(url)):
                raise SubmissionError("meta", f"meta '{name}': must be an http(s) URL of at most "
                                      f"{limits.max_url_length} characters, got {url[:80]!r}")
        return replace(self, model_name=model_name, method=method)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SubmissionMeta:
        """Build from a dict (unknown keys are an error), without checking the values (see :meth:`check`)."""
        if not isinstance(data, dict):
            raise SubmissionError("meta", f"meta must be an object, got {type(data).__name__}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SubmissionError("meta", f"meta: unknown field(s) {', '.join(map(repr, unknown))}")
        try:
            return cls(**data)
        except TypeError as err:
            raise SubmissionError("meta", f"meta: {err}") from None


#: Bytes read, decompressed or compressed at a time.
_CHUNK = 1 << 20
#: Decompressed bytes a gzip may give before :attr:`Limits.max_ratio` applies (a small file's header and tables).
RATIO_SLACK = 16 * 2**20
_GZIP = b"\x1f\x8b"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _gunzip_chunks(chunks: Iterable[bytes], cap: int) -> Iterator[bytes]:
    """Decompress a gzip stream given in pieces, a bounded piece at a time, stopping as soon as the output passes
    ``cap`` bytes (a gzip bomb never reaches memory)."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total, extra = 0, False
    try:
        for chunk in chunks:
            if decompressor.eof:
                extra = extra or bool(chunk)
                continue
            while chunk:
                out = decompressor.decompress(chunk, min(_CHUNK, cap + 1 - total))
                total += len(out)
                if total > cap:
                    raise SubmissionError("gzip-bomb", f"decompresses to more than {cap:,} bytes (the cap on "
                                          "uncompressed size); refusing to read further")
                if out:
                    yield out
                chunk = decompressor.unconsumed_tail
    except zlib.error as err:
        raise SubmissionError("not-json", f"corrupt gzip data ({err})") from None
    if not decompressor.eof:
        raise SubmissionError("not-json", "truncated gzip data")
    if extra or decompressor.unused_data:
        raise SubmissionError("not-json", "extra bytes after the gzip stream (concatenated gzip is not accepted)")


def _check_head(data: bytes, head: bytes) -> None:
    """What the file is, from its first bytes ``data`` and ``head``, its first 4 KiB after leading whitespace:
    pickle, YAML and other non-JSON are refused by their look, before any parser sees them."""
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise SubmissionError("not-json", "this is a Python pickle; only JSON is accepted (pickles execute code)")
    start = head[:64]
    if start.startswith((b"%YAML", b"---", b"!!")) or b"!!python" in head or re.match(rb"[\w-]+\s*:\s", start):
        raise SubmissionError("not-json", "this looks like YAML; only JSON is accepted (YAML tags can build objects)")
    if not start.startswith((b"[", b"{")):
        raise SubmissionError("not-json", f"not JSON: a results file starts with '[', got {start[:16]!r}")


def _check_text(text: bytes, where: Callable[[int], str], limits: Limits, depth: int = 0) -> None:
    """UTF-8, no control characters, nesting at most ``limits.max_depth`` (``depth``: the levels ``text`` is
    already inside). ``where(byte offset)`` says where a problem is, for the message."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SubmissionError("not-json", f"not UTF-8 text ({where(err.start)}: {err.reason})") from None
    control = _CONTROL.search(text)
    if control:
        raise SubmissionError("control-character", f"control character U+{control.group()[0]:04X} "
                              f"{where(control.start())}; JSON allows none outside escapes")
    if depth + _max_depth(text, limits.max_depth - depth) > limits.max_depth:
        raise SubmissionError("too-deep", f"JSON nested more than {limits.max_depth} levels deep")


def iter_upload(source: BinaryIO, limits: Limits) -> Iterator[bytes]:
    """The JSON text of an upload (``.json``, or gzip decompressed as it is read), a chunk of at most 1 MiB at a
    time, checked as it streams: the compressed size, gzip integrity, the uncompressed size and what the bytes
    are (see :func:`parse_results`). ``limits`` must have its size caps set (:meth:`Limits.for_benchmark`).
    Memory: one chunk."""
    read = 0

    def raw() -> Iterator[bytes]:
        nonlocal read
        while chunk := source.read(_CHUNK):
            read += len(chunk)
            if read > limits.max_compressed_bytes:
                raise SubmissionError("oversized", f"more than {limits.max_compressed_bytes:,} bytes; the cap is "
                                      f"{limits.max_compressed_bytes:,}")
            yield chunk

    chunks = raw()
    first = next(chunks, b"")
    rest = itertools.chain([first], chunks)
    gzipped = first[:2] == _GZIP
    texts = _gunzip_chunks(rest, limits.max_uncompressed_bytes) if gzipped else rest
    total, opening, head, checked, blank, held = 0, None, b"", False, 0, []
    for text in texts:
        total += len(text)
        if total > limits.max_uncompressed_bytes:
            raise SubmissionError("oversized", f"more than {limits.max_uncompressed_bytes:,} bytes uncompressed; "
                                  f"the cap is {limits.max_uncompressed_bytes:,}")
        if gzipped and total > limits.max_ratio * read + RATIO_SLACK:
            raise SubmissionError("gzip-bomb", f"{read:,} compressed bytes gave more than {total:,}: over "
                                  f"{limits.max_ratio:g} times, padding rather than detections")
        blank = _blank_run(text, blank, limits.max_blank_run)
        if not checked:  # nothing is passed on before the first bytes say what the file is
            opening = text[:8] if opening is None else opening
            head = (head + text[:4096]).lstrip()
            held.append(text)
            if len(head) < 4096:
                continue
            _check_head(opening, head[:4096])
            checked = True
            yield from held
            held = []
            continue
        yield text
    if not checked:
        _check_head(opening or b"", head)
        yield from held


def _blank_run(text: bytes, run: int, cap: int) -> int:
    """The run of JSON whitespace at the end of ``text``, given ``run`` blanks right before it; raises
    :class:`SubmissionError` (``"padding"``) for a run of more than ``cap`` bytes anywhere. Linear (numpy),
    about 1 ms per MiB."""
    import numpy as np

    solid = np.flatnonzero(np.frombuffer(text, np.uint8) > 0x20)  # control characters are refused elsewhere
    if solid.size == 0:
        longest = end = run + len(text)
    else:
        inner = int(np.diff(solid).max()) - 1 if solid.size > 1 else 0
        longest, end = max(run + int(solid[0]), inner), len(text) - 1 - int(solid[-1])
    if max(longest, end) > cap:
        raise SubmissionError("padding", f"more than {cap:,} bytes of whitespace in a row; a results file has "
                              "a few")
    return end


def parse_results(raw: bytes, limits: Limits = Limits()) -> list:
    """The detections of a submitted file's bytes (``.json`` or gzip-compressed), after the safety checks.

    Order: compressed size, gzip (streamed, capped), uncompressed size, what the bytes are (pickle, YAML and
    other non-JSON are refused by their look before any parser sees them), UTF-8 and control characters,
    nesting depth, then a plain JSON parse. The result is a list (anything else is kind ``"schema"``).
    Size caps left ``None`` are COCO-N's. Every step is linear in the size. The whole file is in memory: the
    leaderboard's sandbox checks a stored file in bounded memory instead (:func:`check_results_file`).
    """
    from ..coco import CocoFormatError, parse_coco_bytes

    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"raw must be bytes, got {type(raw).__name__}")
    limits = limits.for_benchmark("coco-n")
    if len(raw) > limits.max_compressed_bytes:
        raise SubmissionError("oversized", f"{len(raw):,} bytes; the cap is {limits.max_compressed_bytes:,}")
    data = b"".join(iter_upload(io.BytesIO(raw), limits))
    _check_text(data, lambda at: f"at byte {at:,}", limits)
    try:
        results = parse_coco_bytes(data, source="submission")
    except CocoFormatError as err:
        raise SubmissionError("not-json", str(err)) from None
    if not isinstance(results, list):
        raise SubmissionError("schema", f"a results file is a JSON list of detections, got {type(results).__name__}")
    return results


#: A JSON string from its opening quote; possessive, so a match (or a failure) costs one pass over it.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_STRUCTURAL = re.compile(rb'[\[\]{}"]')


def _max_depth(data: bytes, limit: int) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, counting only up to ``limit + 1`` (then it stops).

    One left-to-right pass: each regex search or string match resumes where the last one ended, so the time
    is linear in ``len(data)`` and the extra memory constant (no copy of the data). Raises
    :class:`SubmissionError` (``"not-json"``) for a string that never ends."""
    depth = deepest = pos = 0
    search, string = _STRUCTURAL.search, _STRING.match
    while (found := search(data, pos)) is not None:
        start = found.start()
        char = data[start]
        if char == 0x22:  # '"'
            end = string(data, start)
            if end is None:
                raise SubmissionError("not-json", f"not valid JSON: the string starting at byte {start:,} never ends")
            pos = end.end()
            continue
        depth += 1 if char in (0x5B, 0x7B) else -1  # '[', '{'
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        pos = start + 1
    return deepest


_FIELDS = {"image_id", "category_id", "segmentation", "score", "bbox"}


def _check_polygons(where: str, segmentation: list, height: int, width: int, limits: Limits) -> None:
    """Polygons ``[[x0, y0, x1, y1, ...], ...]``: at most ``limits.max_polygon_vertices`` vertices in all, each
    inside the image within 1 pixel (``-1 <= x <= width + 1``, same for ``y``), as the COCO validator
    demands; checked before anything is rasterised, whose cost grows with the coordinates."""
    vertices = 0
    for polygon in segmentation:
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            raise SubmissionError("polygon", f"{where}: a polygon is a list of >= 3 (x, y) points")
        vertices += len(polygon) // 2
        if vertices > limits.max_polygon_vertices:
            raise SubmissionError("polygon", f"{where}: more than {limits.max_polygon_vertices} polygon vertices")
        for axis, bound in (("x", width), ("y", height)):
            for value in polygon[0 if axis == "x" else 1::2]:
                if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                        or not -1 <= value <= bound + 1):
                    raise SubmissionError("polygon", f"{where}: polygon {axis} = {value!r} is outside the image "
                                          f"(0 to {bound}, within 1 pixel)")


class _Checker:
    """The per-detection rules of :func:`check_results`, with the per-image counts carried across batches."""

    def __init__(self, gt: dict, max_per_image: int, limits: Limits) -> None:
        self.sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
        self.categories = {category["id"] for category in gt["categories"]}
        self.max_per_image, self.limits = max_per_image, limits
        self.per_image: dict[int, int] = {}

    def __call__(self, det: Any, index: int) -> None:
        where = f"detection #{index}"
        if not isinstance(det, dict):
            raise SubmissionError("schema", f"{where}: must be an object, got {type(det).__name__}")
        missing = sorted({"image_id", "category_id", "segmentation", "score"} - set(det))
        if missing:
            raise SubmissionError("schema", f"{where}: missing field(s) {', '.join(missing)}")
        unknown = sorted(set(det) - _FIELDS)
        if unknown:
            raise SubmissionError("schema", f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
        image_id, category_id, score = det["image_id"], det["category_id"], det["score"]
        if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in self.sizes:
            raise SubmissionError("unknown-image", f"{where}: image_id {image_id!r} is not in the benchmark's "
                                  "clean validation split")
        if (not isinstance(category_id, int) or isinstance(category_id, bool)
                or category_id not in self.categories):
            raise SubmissionError("unknown-category", f"{where}: category_id {category_id!r} is not a category of "
                                  "the benchmark (use the source dataset's ids)")
        if (not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score)
                or not 0.0 <= score <= 1.0):
            raise SubmissionError("score", f"{where}: score {score!r} must be a finite number in [0, 1]")
        if isinstance(det["segmentation"], list):
            _check_polygons(where, det["segmentation"], *self.sizes[image_id], self.limits)
        count = self.per_image[image_id] = self.per_image.get(image_id, 0) + 1
        if count > self.max_per_image:
            raise SubmissionError("too-many-detections", f"image {image_id} has more than {self.max_per_image} "
                                  "detections (keep the highest-scoring ones)")


def refusal_of(message: str, path: str | os.PathLike | None = None) -> SubmissionError:
    """A :class:`~hf_noisy.metrics.PredictionError`'s message as the submission rule it breaks, without the name
    of the (sandbox's own) file ``path`` it starts with."""
    prefix = f"{os.fspath(path)}: " if path is not None else None
    if prefix and message.startswith(prefix):
        message = message[len(prefix):]
    kind = ("rle-size" if "does not match image" in message
            else "rle-corrupt" if "segmentation" in message
            else "too-deep" if "nested" in message
            else "schema" if "list of detections" in message
            else "not-json" if "JSON" in message or "UTF-8" in message
            else "schema")
    return SubmissionError(kind, message)


def check_results(results: list, gt: dict, *, max_per_image: int, limits: Limits = Limits()) -> list[dict]:
    """Check detections against the benchmark's clean validation ground truth; return them prepared for
    evaluation (see :func:`hf_noisy.metrics.prepare_predictions`, which checks every RLE).

    Kinds: ``"schema"`` (not a list of objects, missing or unknown fields), ``"unknown-image"``,
    ``"unknown-category"``, ``"score"`` (not finite or outside ``[0, 1]``), ``"too-many-detections"`` (more
    than ``max_per_image`` on one image), ``"polygon"`` (a vertex outside the image, or too many),
    ``"rle-size"``, ``"rle-corrupt"``. Every field of every detection is checked before any mask is decoded
    or rasterised.
    """
    from ..metrics import PredictionError, prepare_predictions

    check = _Checker(gt, max_per_image, limits)
    for index, det in enumerate(results):
        check(det, index)
    try:
        return prepare_predictions(results, gt)
    except PredictionError as err:
        raise refusal_of(str(err)) from None


class CheckBudgetSpent(Exception):
    """A check that stopped at its CPU budget with no rule broken so far; ``checked``: the detections it
    checked (the rest is checked when the submission is scored)."""

    def __init__(self, checked: int) -> None:
        super().__init__(f"checked the first {checked} detections within the check's CPU budget")
        self.checked = checked


def check_results_file(path: str | os.PathLike, gt: dict, *, max_per_image: int, limits: Limits = Limits(),
                       masks: bool = True, stop_at_cpu: float | None = None,
                       blocks: Iterable[bytes] | None = None) -> int:
    """Check a results file of plain JSON (an upload as :func:`iter_upload` reads it) in bounded memory, a batch
    of detections at a time (:func:`hf_noisy.metrics.stream.iter_texts`), with the rules of
    :func:`parse_results` and :func:`check_results` (``masks=False`` leaves the RLE checks to the evaluation,
    which makes them too). Messages name detections, never ``path``. Returns the number of detections.

    ``stop_at_cpu``: this process's CPU time (``time.process_time``, seconds) after which the check stops
    between two batches and raises :class:`CheckBudgetSpent` (``None``: check every batch). ``blocks``: the
    JSON text as a stream (e.g. :func:`iter_upload`'s chunks) instead of the file at ``path``, which then only
    names it: nothing is written anywhere, and memory stays one block and one batch."""
    import time

    from ..metrics import PredictionError
    from ..metrics.stream import iter_texts, parse_batch, prepare_batch

    check = _Checker(gt, max_per_image, limits)
    images = {image["id"]: image for image in gt["images"]}
    first, count = None, 0
    try:
        for start, _, text in iter_texts(path, blocks=blocks):
            _check_text(text, lambda at, start=start: f"in or after detection #{start}", limits, depth=1)
            elements = parse_batch(path, text, start)
            for k, det in enumerate(elements):
                check(det, start + k)
            if masks:
                prepare_batch(elements, elements[0] if first is None else first, gt["categories"], start, images)
            first = elements[0] if first is None else first
            count += len(elements)
            if stop_at_cpu is not None and time.process_time() >= stop_at_cpu:
                raise CheckBudgetSpent(count)
    except PredictionError as err:
        refusal = refusal_of(str(err), path)
        if refusal.kind == "too-deep":  # past the file scanner's depth (64), so past ours too
            refusal = SubmissionError("too-deep", f"JSON nested more than {limits.max_depth} levels deep")
        raise refusal from None
    return count


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no name, mtime 0), as submissions are stored."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def gzip_chunks(chunks: Iterable[bytes], out: BinaryIO) -> None:
    """:func:`gzip_bytes` of the joined ``chunks``, written to ``out`` a chunk at a time (the same bytes)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out.write(compressor.compress(chunk))
    out.write(compressor.flush())
