"""Noise a COCO file as a stream: its annotations are read, noised and written a chunk at a time.

The file's layout comes from :func:`hf_noisy.coco_stream.scan_coco` (one pass: the top-level values but
``annotations``, each annotation's byte span, the SHA-256). Chunks of annotations (index ranges, as
:func:`~hf_noisy.noise.engine.chunk_ranges` cuts them) are read, checked, noised and serialised where they
are noised: in this process, or in worker processes that read their own chunk from the file (a task is an
index range; no worker holds more than its chunk). The serialised chunks are written to ``body`` in input
order, with at most :data:`WINDOW_PER_PROCESS` chunks per process in flight. Memory: the layout (16 bytes per
annotation plus the images and categories), 8 bytes per annotation id (the uniqueness check) and a few chunks.

A spec with ``duplicate``, ``split`` or ``merge`` is planned first (:mod:`hf_noisy.noise.structure`): one
more pass reads every annotation a chunk at a time, checks it, and keeps its id (and, for ``merge``, its image,
class and box centre; about 100 bytes per annotation measured) until the plan is made; a merger's chunk reads its neighbour from the file by index.

The bytes and errors are those of :func:`~hf_noisy.noise.engine.noise_to_json` on the whole parsed file: the
same checks in the same order (the header first; a problem of an annotation before an empty mask; duplicate
ids before anything found while noising).
"""

from __future__ import annotations

import os
from array import array
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

import orjson

from ..coco import CocoFormatError, CocoHeader, check_annotation, check_annotations, check_header
from ..coco_stream import CocoLayout, parse_value
from ..errors import HfNoisyError
from ..runtime import paused_gc, single_threaded_opencv
from ..workers import worker_pool
from .annotation_ops import output_annotations
from .engine import (InstanceNoiser, NoiseSummary, chunk_ranges, json_around_annotations, plan, structure_records,
                     with_provenance)
from .spec import NoiseSpec
from .structure import Structure

__all__ = ["SMALL_INPUT", "WINDOW_PER_PROCESS", "noise_layout"]

#: inputs with at most this many annotations are noised in this process, whatever ``num_proc`` says (starting
#: workers costs more than they save)
SMALL_INPUT = 2000
#: chunks in flight per worker process (bounds the results waiting to be written in order)
WINDOW_PER_PROCESS = 4

_Result = tuple[bytes, NoiseSummary, bytes]


@dataclass(frozen=True)
class _StreamJob:
    """What every chunk needs: the noiser, where the annotations lie and what they are checked against."""

    noiser: InstanceNoiser
    layout: CocoLayout
    header: CocoHeader
    source: str

    def run(self, bounds: tuple[int, int], handle: BinaryIO) -> _Result:
        """Chunk ``bounds`` read from ``handle``, checked, noised: its output JSON (annotations joined by
        commas), its summary and its annotation ids (int64 bytes)."""
        start, stop = bounds
        annotations = self.layout.read_annotations(start, stop, handle)
        for index, ann in enumerate(annotations, start):
            check_annotation(ann, index, self.header, source=self.source)
        merges = self.noiser.structure.merges if self.noiser.structure is not None else {}
        partners = {ann["id"]: self.layout.read_annotations(merges[ann["id"]], merges[ann["id"]] + 1, handle)[0]
                    for ann in annotations if ann["id"] in merges}
        outputs = self.noiser.noise_many([(ann, *self.header.sizes[ann["image_id"]]) for ann in annotations], partners)
        ids = array("q", [ann["id"] for ann in annotations]).tobytes()
        text = orjson.dumps(list(output_annotations(outputs)))[1:-1]  # the annotations joined by ","
        return text, NoiseSummary.of(annotations, outputs, self.noiser.spec), ids


# A worker's job and its own handle on the file, set once by the pool's initializer.
_WORKER: dict = {}


def _init_worker(job: _StreamJob) -> None:
    import cv2

    cv2.setNumThreads(1)  # as in the parent while it noises (inherited under fork, set here under spawn)
    _WORKER["job"], _WORKER["handle"] = job, open(job.layout.path, "rb")


def _run_in_worker(bounds: tuple[int, int]) -> _Result:
    return _WORKER["job"].run(bounds, _WORKER["handle"])


def noise_layout(
    layout: CocoLayout, spec: NoiseSpec, body: BinaryIO, *, num_proc: int = 1, progress: bool = False,
    allow_empty_masks: bool = False, source: str = "<data>",
) -> tuple[bytes, bytes, NoiseSummary]:
    """Noise the file of ``layout``, writing its output annotations (JSON, joined by commas, in input order)
    to ``body``; returns the bytes that go before and after them and the summary.

    Raises :class:`~hf_noisy.coco.CocoFormatError` (naming ``source``) as the whole-file path would, and
    :class:`~hf_noisy.coco_stream.NotStreamable` where a chunk is one orjson refuses.
    """
    if num_proc < 1:
        raise HfNoisyError(f"num_proc must be >= 1, got {num_proc}")
    head = {key: parse_value(raw) for key, raw in layout.head.items()}
    header = check_header({**head, "annotations": []}, source=source)
    structure = _plan(layout, header, spec, source) if spec.structural else None
    try:
        noiser = InstanceNoiser(spec, head["categories"], allow_empty_masks=allow_empty_masks, structure=structure)
    except Exception:
        if not _ids_unique(layout):  # the whole-file path checks the annotations before the matrix
            _validate(layout, header, source)
        raise
    del head  # the images are parsed again at the end: the workers need none of them
    job = _StreamJob(noiser, layout, header, source)
    processes = 1 if len(layout) <= SMALL_INPUT else min(num_proc, os.cpu_count() or num_proc)
    ranges = chunk_ranges(len(layout), processes)
    summary, ids, written = NoiseSummary(), bytearray(), False
    with ExitStack() as stack:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = stack.enter_context(tqdm(total=len(layout), desc="noising", unit="ann", dynamic_ncols=True))
        stack.enter_context(single_threaded_opencv())  # workers fork inside and inherit it
        # noising makes no reference cycles: collections triggered by the chunks' objects would find nothing
        # (~0.04 CPU-s at coco-tiny x10); workers fork inside and inherit the pause
        stack.enter_context(paused_gc())
        if processes == 1:
            handle = stack.enter_context(open(layout.path, "rb"))
            results: Iterable[_Result] = (job.run(bounds, handle) for bounds in ranges)
        else:
            pool = worker_pool(processes, _init_worker, (job,))
            stack.callback(pool.terminate)
            results = pool.imap(_run_in_worker, ranges, window=WINDOW_PER_PROCESS * processes)
        try:
            for (start, stop), (text, chunk_summary, chunk_ids) in zip(ranges, results):
                if text:
                    body.write(b"," + text if written else text)
                    written = True
                summary += chunk_summary
                ids += chunk_ids
                if bar is not None:
                    bar.update(stop - start)
        except CocoFormatError as err:
            _validate(layout, header, source)  # an annotation problem in a later chunk comes before this one
            raise err.with_source(source) from None
    _check_distinct(ids, layout, header, source)
    head = with_provenance({key: parse_value(raw) for key, raw in layout.head.items()}, spec, layout.sha256, summary)
    before, after = json_around_annotations(head)
    return before, after, summary


def _plan(layout: CocoLayout, header: CocoHeader, spec: NoiseSpec, source: str) -> Structure:
    """The whole file's :class:`~hf_noisy.noise.structure.Structure`, its annotations read a chunk at a time
    and checked; a problem raises as the whole-file path would word it (the first one in file order)."""
    ids = array("q")

    def records() -> Iterator:
        for record in structure_records(_annotations(layout), header, header.sizes, source):
            ids.append(record.id)
            yield record

    try:
        structure = plan(spec, records())
    except CocoFormatError as err:
        _validate(layout, header, source)  # a duplicate id before this problem is the one to report
        raise err.with_source(source) from None
    _check_distinct(ids, layout, header, source)
    return structure


def _check_distinct(ids: array, layout: CocoLayout, header: CocoHeader, source: str) -> None:
    """Raise, as the whole-file validation words it, when ``ids`` (every annotation's, read chunk by chunk)
    repeat one."""
    if not _distinct(ids):
        _validate(layout, header, source)
        raise AssertionError("duplicate annotation ids that validation did not find")


def _distinct(ids: bytearray | array) -> bool:
    import numpy as np

    values = np.sort(np.frombuffer(ids, dtype=np.int64))  # not np.unique: it imports numpy.ma (start-up)
    return not (values[1:] == values[:-1]).any()


def _annotations(layout: CocoLayout) -> Iterator:
    """The annotations one after the other, read a chunk at a time in this process."""
    with open(layout.path, "rb") as handle:
        for start, stop in chunk_ranges(len(layout), 1):
            yield from layout.read_annotations(start, stop, handle)


def _ids_unique(layout: CocoLayout) -> bool:
    """Whether every annotation is an object with a distinct, hashable id (as the whole-file path asks)."""
    seen: set = set()
    try:
        for ann in _annotations(layout):
            if ann["id"] in seen:
                return False
            seen.add(ann["id"])
    except (TypeError, KeyError):
        return False
    return True


def _validate(layout: CocoLayout, header: CocoHeader, source: str) -> None:
    """Raise the first problem :func:`~hf_noisy.coco.validate_coco` (``check_masks=False``) finds in the
    annotations, read a chunk at a time; return if there is none."""
    check_annotations(_annotations(layout), header, source=source, check_masks=False)
