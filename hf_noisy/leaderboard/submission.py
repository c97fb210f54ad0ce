"""Leaderboard submissions: the metadata, the limits, and the checks a file passes before anything is stored.

A submission is a COCO results file (a JSON list of ``{"image_id", "category_id", "segmentation": RLE,
"score"}``, optionally gzip-compressed) plus :class:`SubmissionMeta`. Every check raises
:class:`SubmissionError` whose ``kind`` names the rule (``"oversized"``, ``"gzip-bomb"``, ``"not-json"``, ...)
and whose message says what is wrong and where. The checks never execute anything from the file: the bytes
are only ever parsed as JSON, after size, compression, encoding and nesting-depth caps.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import HfNoisyError

__all__ = [
    "BENCHMARKS",
    "CONFIGS",
    "Limits",
    "SubmissionError",
    "SubmissionMeta",
    "check_results",
    "parse_results",
]

#: Benchmarks a store can hold, and the training configs of each.
BENCHMARKS = ("coco-n", "cityscapes-n", "lvis-n", "coco-wan")
CONFIGS = ("clean", "easy", "medium", "hard")


class SubmissionError(HfNoisyError):
    """A submission that is refused; ``kind`` is the rule it broke (stable, for programs and tests)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """Caps on one submission. Sizes in bytes; ``max_depth`` counts nested JSON arrays/objects (a valid
    results file needs 3: list > detection > segmentation > counts); ``max_polygon_vertices`` is per detection
    (all its polygons together; every vertex must also lie inside the image, within 1 pixel). Per submitter
    over the last 24 hours: ``per_day`` accepted submissions, ``attempts_per_day`` uploads that reached the
    file check, refused ones included."""

    max_compressed_bytes: int = 256 * 2**20
    max_uncompressed_bytes: int = 1024 * 2**20
    max_depth: int = 8
    max_name_length: int = 100
    max_url_length: int = 300
    max_polygon_vertices: int = 4096
    per_day: int = 5
    attempts_per_day: int = 20


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
        benchmark: one of :data:`BENCHMARKS`.
        trained_on: the config the model was trained on, one of :data:`CONFIGS`; predictions are always on the
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
        if self.benchmark not in BENCHMARKS:
            raise SubmissionError("meta", f"meta 'benchmark': {self.benchmark!r} is not one of {', '.join(BENCHMARKS)}")
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


def _gunzip(raw: bytes, cap: int) -> bytes:
    """Decompress gzip in chunks, stopping as soon as the output passes ``cap`` bytes (a gzip bomb never
    reaches memory)."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        chunk = decompressor.decompress(raw, cap + 1 - len(out))
        while True:
            out += chunk
            if len(out) > cap:
                raise SubmissionError("gzip-bomb", f"decompresses to more than {cap:,} bytes (the cap on "
                                      "uncompressed size); refusing to read further")
            if decompressor.eof or not decompressor.unconsumed_tail:
                break
            chunk = decompressor.decompress(decompressor.unconsumed_tail, cap + 1 - len(out))
    except zlib.error as err:
        raise SubmissionError("not-json", f"corrupt gzip data ({err})") from None
    if not decompressor.eof:
        raise SubmissionError("not-json", "truncated gzip data")
    if decompressor.unused_data:
        raise SubmissionError("not-json", "extra bytes after the gzip stream (concatenated gzip is not accepted)")
    return bytes(out)


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


def parse_results(raw: bytes, limits: Limits = Limits()) -> list:
    """The detections of a submitted file's bytes (``.json`` or gzip-compressed), after the safety checks.

    Order: compressed size, gzip (streamed, capped), uncompressed size, what the bytes are (pickle, YAML and
    other non-JSON are refused by their look before any parser sees them), UTF-8 and control characters,
    nesting depth, then a plain JSON parse. The result is a list (anything else is kind ``"schema"``).
    Every step is linear in the size; the leaderboard runs it in the sandbox child
    (:mod:`hf_noisy.leaderboard.sandbox`), never in the server.
    """
    from ..coco import CocoFormatError, parse_coco_bytes

    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"raw must be bytes, got {type(raw).__name__}")
    if len(raw) > limits.max_compressed_bytes:
        raise SubmissionError("oversized", f"{len(raw):,} bytes; the cap is {limits.max_compressed_bytes:,}")
    data = _gunzip(bytes(raw), limits.max_uncompressed_bytes) if raw[:2] == b"\x1f\x8b" else bytes(raw)
    if len(data) > limits.max_uncompressed_bytes:
        raise SubmissionError("oversized",
                              f"{len(data):,} bytes uncompressed; the cap is {limits.max_uncompressed_bytes:,}")
    first = re.match(rb"\s*", data).end()
    head = data[first:first + 64]
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise SubmissionError("not-json", "this is a Python pickle; only JSON is accepted (pickles execute code)")
    if head.startswith((b"%YAML", b"---", b"!!")) or b"!!python" in data[:4096] or re.match(rb"[\w-]+\s*:\s", head):
        raise SubmissionError("not-json", "this looks like YAML; only JSON is accepted (YAML tags can build objects)")
    if not head.startswith((b"[", b"{")):
        raise SubmissionError("not-json", f"not JSON: a results file starts with '[', got {head[:16]!r}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SubmissionError("not-json", f"not UTF-8 text (byte {err.start}: {err.reason})") from None
    control = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if control:
        raise SubmissionError("control-character", f"control character U+{ord(control.group()):04X} at "
                              f"character {control.start()}; JSON allows none outside escapes")
    depth = _max_depth(data, limits.max_depth)
    if depth > limits.max_depth:
        raise SubmissionError("too-deep", f"JSON nested more than {limits.max_depth} levels deep")
    try:
        results = parse_coco_bytes(data, source="submission")
    except CocoFormatError as err:
        raise SubmissionError("not-json", str(err)) from None
    if not isinstance(results, list):
        raise SubmissionError("schema", f"a results file is a JSON list of detections, got {type(results).__name__}")
    return results


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

    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    images = set(sizes)
    categories = {category["id"] for category in gt["categories"]}
    per_image: dict[int, int] = {}
    for index, det in enumerate(results):
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
        if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in images:
            raise SubmissionError("unknown-image", f"{where}: image_id {image_id!r} is not in the benchmark's "
                                  "clean validation split")
        if not isinstance(category_id, int) or isinstance(category_id, bool) or category_id not in categories:
            raise SubmissionError("unknown-category", f"{where}: category_id {category_id!r} is not a category of "
                                  "the benchmark (use the source dataset's ids)")
        if (not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score)
                or not 0.0 <= score <= 1.0):
            raise SubmissionError("score", f"{where}: score {score!r} must be a finite number in [0, 1]")
        if isinstance(det["segmentation"], list):
            _check_polygons(where, det["segmentation"], *sizes[image_id], limits)
        per_image[image_id] = per_image.get(image_id, 0) + 1
        if per_image[image_id] > max_per_image:
            raise SubmissionError("too-many-detections", f"image {image_id} has more than {max_per_image} "
                                  "detections (keep the highest-scoring ones)")
    try:
        return prepare_predictions(results, gt)
    except PredictionError as err:
        message = str(err)
        kind = ("rle-size" if "does not match image" in message
                else "rle-corrupt" if "segmentation" in message else "schema")
        raise SubmissionError(kind, message) from None


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no name, mtime 0), as submissions are stored."""
    return gzip.compress(data, compresslevel=6, mtime=0)
