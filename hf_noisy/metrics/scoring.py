"""Scoring in bounded memory on every core: detections held in compact columns, images evaluated in chunks.

:class:`DetectionStore` keeps each validated detection as a row of numbers (image position, id, category, score,
area, box) and its RLE ``counts`` in one of a few buckets (temporary files for a results file, memory for a list),
each bucket holding the detections of a contiguous range of images. :func:`score` cuts the images into chunks,
hands each chunk (its images, their ground-truth annotations, their detections) to
:func:`hf_noisy.metrics.engine.evaluate_image`, inline or in ``num_proc`` worker processes, and gathers the
compact :class:`~hf_noisy.metrics.engine.Matches` in image order: the result is the same bit for bit for any
``num_proc`` and any chunking. At most ``2 * num_proc`` chunks are in flight; the parent holds the ground-truth
dict, the detection columns (about 80 bytes per detection), one bucket and the matches (about ``40 * iou
types`` bytes per detection).
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .engine import Matches, Setup, concat, evaluable_annotation, evaluate_image

__all__ = ["DetectionStore", "available_cpus", "score"]

#: About this many detections (or 32 images, whichever comes first) make one chunk.
CHUNK_DETECTIONS = 4000
CHUNK_IMAGES = 32
#: About this many bytes of RLE counts per bucket file.
BUCKET_BYTES = 32 << 20


def available_cpus() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where it does not exist)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class DetectionStore:
    """Validated detections of one evaluation, in columns, grouped by image.

    Args:
        gt: the validated ground truth (its images define the positions: sorted by id).
        spill_dir: where bucket files go (a results file), or ``None`` to keep the counts in memory (a list).
        expected_bytes: about how many bytes of input are coming (sets the number of buckets).
    """

    def __init__(self, gt: dict, spill_dir: str | None = None, expected_bytes: int = 0) -> None:
        ids = sorted(image["id"] for image in gt["images"])
        self.image_ids = ids
        self.position = {image_id: k for k, image_id in enumerate(ids)}
        self.buckets = max(1, min(512, expected_bytes // BUCKET_BYTES + 1)) if spill_dir else 1
        self._spill = spill_dir
        self._files = [open(os.path.join(spill_dir, f"bucket{b}.bin"), "w+b") if spill_dir else None
                       for b in range(self.buckets)]
        self._memory = [bytearray() for _ in range(self.buckets)] if not spill_dir else None
        self._sizes = [0] * self.buckets
        self._columns: list[tuple[np.ndarray, ...]] = []
        self.columns: dict[str, np.ndarray] = {}

    def bucket_of(self, positions: np.ndarray) -> np.ndarray:
        """The bucket of each image position (contiguous ranges of images)."""
        return (positions.astype(np.int64) * self.buckets // max(1, len(self.image_ids))).astype(np.int16)

    def add(self, detections: list[dict]) -> None:
        """Append evaluable detections (see :func:`hf_noisy.metrics.prepare_predictions`)."""
        self.add_compact(compact(detections, self.position))

    def add_compact(self, rows: tuple) -> None:
        """Append the rows :func:`compact` made."""
        position, ids, category, score, area, bbox, counts, length = rows
        if not len(position):
            return
        bucket = self.bucket_of(position)
        starts = np.concatenate(([0], np.cumsum(length, dtype=np.int64)))
        offset = np.zeros(len(position), np.int64)
        for b in np.unique(bucket):
            chosen = np.flatnonzero(bucket == b)
            data = b"".join(counts[starts[i]:starts[i + 1]] for i in chosen)
            offset[chosen] = self._sizes[b] + np.concatenate(([0], np.cumsum(length[chosen], dtype=np.int64)[:-1]))
            if self._files[b] is not None:
                self._files[b].write(data)
            else:
                self._memory[b] += data
            self._sizes[b] += len(data)
        self._columns.append((position, ids, category, score, area, bbox, bucket, offset, length))

    def finish(self) -> None:
        """Freeze the columns (in arrival order; :meth:`sort` groups them by image)."""
        names = ("position", "id", "category", "score", "area", "bbox", "bucket", "offset", "length")
        if self._columns:
            columns = {n: np.concatenate([c[i] for c in self._columns]) for i, n in enumerate(names)}
        else:
            columns = {n: np.zeros((0, 4) if n == "bbox" else 0) for n in names}
        self._columns = []
        self.columns = columns
        for f in self._files:
            if f is not None:
                f.flush()

    def select(self, keep: np.ndarray) -> None:
        """Keep only the rows where ``keep`` is true."""
        self.columns = {n: v[keep] for n, v in self.columns.items()}

    def sort(self) -> None:
        """Order the rows by (image position, id)."""
        order = np.lexsort((self.columns["id"], self.columns["position"]))
        self.columns = {n: v[order] for n, v in self.columns.items()}

    def read(self, bucket: int) -> bytes:
        """The RLE counts of one bucket."""
        f = self._files[bucket]
        if f is None:
            return bytes(self._memory[bucket])
        f.seek(0)
        return f.read()

    def close(self) -> None:
        for f in self._files:
            if f is not None:
                f.close()


def compact(detections: list[dict], position: dict[int, int]) -> tuple:
    """Evaluable detections as columns: ``(image position int32, id int64, category int64, score float64,
    area float64, bbox float64 [n, 4], RLE counts of all joined (bytes), each one's length int32)``."""
    counts = [d["segmentation"]["counts"] for d in detections]
    counts = [c.encode() if isinstance(c, str) else bytes(c) for c in counts]
    return (np.array([position[d["image_id"]] for d in detections], np.int32),
            np.array([d["id"] for d in detections], np.int64),
            np.array([d["category_id"] for d in detections], np.int64),
            np.array([d["score"] for d in detections], np.float64),
            np.array([d["area"] for d in detections], np.float64),
            np.array([d["bbox"] for d in detections], np.float64).reshape(-1, 4),
            b"".join(counts), np.array([len(c) for c in counts], np.int32))


def fill(store: DetectionStore, predictions, gt: dict, iou_types: Iterable[str], pool=None, num_proc: int = 1,
         on_bytes: Callable[[int], None] | None = None) -> None:
    """Read, validate and store ``predictions`` (a results list, or a results file read in batches, validated
    in ``pool``'s workers when given, in file order) for scoring ``iou_types`` (``bbox`` alone accepts
    box-only results). ``on_bytes(n)``: ``n`` more bytes of a results file are stored (progress); over the
    whole file it is called with the file's size in all."""
    import os

    from .predictions import prepare_predictions
    from .stream import first_of, iter_texts, prepare_text

    if not isinstance(predictions, (str, os.PathLike)):
        store.add(prepare_predictions(predictions, gt, iou_types))
        return
    on_bytes = on_bytes or (lambda n: None)
    iou_types = tuple(iou_types)
    images = {image["id"]: image for image in gt["images"]}
    texts = iter_texts(predictions)
    first, stored = None, 0
    for start, _, text in texts:  # the first batch here: it holds the detection every batch is checked with
        store.add(prepare_text(predictions, text, start, None, images, gt["categories"], iou_types))
        first = first_of(predictions, text)
        stored += len(text)
        on_bytes(len(text))
        break
    if pool is None:
        for start, _, text in texts:
            store.add(prepare_text(predictions, text, start, first, images, gt["categories"], iou_types))
            stored += len(text)
            on_bytes(len(text))
    else:
        sizes: deque = deque()  # the text length of each task in flight, in task order (the results' order)

        def tasks() -> Iterator[tuple]:
            for start, _, text in texts:
                sizes.append(len(text))
                yield str(predictions), text, start, first, iou_types

        for rows in pool.istarmap(_validate, tasks(), window=2 * num_proc):
            store.add_compact(rows)
            done = sizes.popleft()
            stored += done
            on_bytes(done)
    on_bytes(max(0, os.path.getsize(predictions) - stored))  # the brackets, commas and white space around them


#: The ground truth a worker reads (its images by id, categories, image positions, and the images and annotations
#: by position that chunks are scored against), set once per worker process by :func:`_init_worker` (inherited,
#: not sent, where workers are forked).
_WORKER: dict = {}


def _init_worker(images: dict, categories: list, position: dict, truth: _Truth) -> None:
    _WORKER.update(images=images, categories=categories, position=position, truth=truth)


def _validate(path: str, text: bytes, start: int, first: dict, iou_types: tuple) -> tuple:
    from .stream import prepare_text

    prepared = prepare_text(path, text, start, first, _WORKER["images"], _WORKER["categories"], iou_types)
    return compact(prepared, _WORKER["position"])


def open_pool(num_proc: int, gt: dict, store: DetectionStore):
    """``num_proc`` worker processes (``fork`` where the platform has it), or ``None`` for 1."""
    if num_proc <= 1:
        return None
    from ..workers import worker_pool

    images = {image["id"]: image for image in gt["images"]}
    return worker_pool(num_proc, _init_worker, (images, gt["categories"], store.position, _Truth.of(gt, store)))


@dataclass
class _Truth:
    """The ground truth chunks are scored against: images in position order and their annotations by image id."""

    images: list[dict]
    annotations: dict[int, list[dict]]

    @classmethod
    def of(cls, gt: dict, store: DetectionStore) -> _Truth:
        by_id = {image["id"]: image for image in gt["images"]}
        annotations: dict[int, list[dict]] = {}
        for ann in gt["annotations"]:
            annotations.setdefault(ann["image_id"], []).append(ann)
        return cls([by_id[image_id] for image_id in store.image_ids], annotations)


@dataclass
class _Chunk:
    """The detections of images ``first`` to ``stop - 1`` (positions), as compact columns: image ``first + j``
    has rows ``starts[j]`` to ``starts[j + 1] - 1``; row ``i``'s RLE counts are ``counts`` from ``ends[i] -
    lengths[i]`` to ``ends[i]``. Small to send to a worker, which expands it (:func:`_expand`)."""

    first: int
    stop: int
    starts: np.ndarray
    ids: np.ndarray
    category: np.ndarray
    score: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    lengths: np.ndarray
    counts: bytes


def _chunks(store: DetectionStore) -> Iterator[_Chunk]:
    """The images in position order, cut into chunks, with their detections."""
    c = store.columns
    starts = np.searchsorted(c["position"], np.arange(len(store.image_ids) + 1), side="left")
    buckets = store.bucket_of(np.arange(len(store.image_ids)))
    current_bucket, data = -1, b""
    k, n = 0, len(store.image_ids)
    while k < n:
        stop, total, bucket = k, 0, int(buckets[k])
        while stop < n and stop - k < CHUNK_IMAGES and (stop == k or total < CHUNK_DETECTIONS) and \
                int(buckets[stop]) == bucket:
            total += int(starts[stop + 1] - starts[stop])
            stop += 1
        if bucket != current_bucket:
            current_bucket, data = bucket, store.read(bucket)
        rows = slice(int(starts[k]), int(starts[stop]))
        offsets, lengths = c["offset"][rows].tolist(), c["length"][rows]
        counts = b"".join([data[o:o + m] for o, m in zip(offsets, lengths.tolist())])
        yield _Chunk(k, stop, starts[k:stop + 1] - starts[k], c["id"][rows], c["category"][rows], c["score"][rows],
                     c["area"][rows], c["bbox"][rows], lengths, counts)
        k = stop


def _expand(chunk: _Chunk, truth: _Truth) -> Iterator[tuple[int, dict, list[dict], list[dict]]]:
    """``(position, image, annotations, detections)`` of each image of ``chunk``, the detections as dicts."""
    # tolist: Python ints and floats, the values int() and float() of each element give
    ids, category, score = chunk.ids.tolist(), chunk.category.tolist(), chunk.score.tolist()
    area, bbox, starts = chunk.area.tolist(), chunk.bbox.tolist(), chunk.starts.tolist()
    lengths = chunk.lengths.tolist()
    ends = np.cumsum(chunk.lengths, dtype=np.int64).tolist()
    counts = chunk.counts
    for j, position in enumerate(range(chunk.first, chunk.stop)):
        image = truth.images[position]
        size = [image["height"], image["width"]]
        detections = [{
            "id": ids[i], "image_id": image["id"], "category_id": category[i], "score": score[i], "area": area[i],
            "bbox": bbox[i], "segmentation": {"size": size, "counts": counts[ends[i] - lengths[i]:ends[i]]},
        } for i in range(starts[j], starts[j + 1])]
        yield position, image, truth.annotations.get(image["id"], []), detections


def _evaluate_chunk(chunk: _Chunk, setup: Setup, truth: _Truth | None = None) -> Matches:
    """The matches of one chunk's images (``truth``: the ground truth, by default the worker's)."""
    index = {category_id: k for k, category_id in enumerate(setup.category_ids)}
    parts = []
    for position, image, anns, detections in _expand(chunk, truth or _WORKER["truth"]):
        ground_truth = [evaluable_annotation(ann, image["height"], image["width"]) for ann in anns]
        parts.append(evaluate_image(position, image, ground_truth, detections, setup, index))
    return concat(parts, setup)


def score(gt: dict, store: DetectionStore, setup: Setup, pool=None, num_proc: int = 1,
          on_images: Callable[[int], None] | None = None) -> Matches:
    """The matches of every image of ``gt`` (see the module docstring), in ``pool``'s workers when given.
    Each chunk's rows are copied into arrays sized for every stored detection as they arrive (a chunk keeps
    at most as many rows as it has detections), so the matches are never held twice. ``on_images(n)``: ``n``
    more images are scored (progress), in all the number of images of ``gt``."""
    sizes: deque = deque()  # the images of each chunk handed out, in chunk order (the results' order)

    def chunks() -> Iterator[_Chunk]:
        for chunk in _chunks(store):
            sizes.append(chunk.stop - chunk.first)
            yield chunk

    if pool is None:
        truth = _Truth.of(gt, store)
        parts = (_evaluate_chunk(chunk, setup, truth) for chunk in chunks())
    else:
        parts = pool.istarmap(_evaluate_chunk, ((chunk, setup) for chunk in chunks()), window=2 * num_proc)
    n, A, T = len(store.columns["id"]), len(setup.area_ranges), len(setup.iou_thresholds)
    out = Matches(np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float64),
                  {t: np.empty((n, A, T), np.uint8) for t in setup.iou_types},
                  np.zeros((len(setup.category_ids), A), np.int64))
    k = 0
    for part in parts:
        rows = slice(k, k + len(part.category))
        out.category[rows], out.image[rows], out.rank[rows], out.score[rows] = (
            part.category, part.image, part.rank, part.score)
        for t in setup.iou_types:
            out.codes[t][rows] = part.codes[t]
        out.ground_truth += part.ground_truth
        k = rows.stop
        images = sizes.popleft()
        if on_images is not None:
            on_images(images)
    return Matches(out.category[:k], out.image[:k], out.rank[:k], out.score[:k],
                   {t: v[:k] for t, v in out.codes.items()}, out.ground_truth)


def spill_directory() -> tempfile.TemporaryDirectory:
    """A temporary directory for bucket files (removed when closed)."""
    return tempfile.TemporaryDirectory(prefix="hf-noisy-eval-")
