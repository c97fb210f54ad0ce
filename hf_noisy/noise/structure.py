"""The whole-file plan of the ops that add instances or need an image's other annotations.

``duplicate`` and ``split`` add an instance, which needs an id no other annotation has; ``merge`` needs the
image's other annotations. Both depend on the whole file, so they are decided once, from a few fields of
every annotation (read a chunk at a time on the streamed path), before any chunk is noised. The plan is a
function of the *set* of annotations and the spec: neither the order of the annotations nor the chunks matter.

New ids
    The instance that ``duplicate`` or ``split`` adds to annotation ``a`` gets the first candidate
    ``c_k = BLAKE2b-64(seed as 8 bytes LE, a as 8 bytes LE, k as 8 bytes LE, person="hf-noisy-newid") >> 11``
    (``k = 0, 1, ...``; an integer in ``[1, 2**53)``, exact in any JSON reader) that is not 0, not the id of any
    annotation of the input, and not already given to a source of smaller id (sources are served in ascending
    id order). Every annotation that draws ``duplicate`` or ``split`` reserves its id this way, whether or not
    its op can be made (an id reserved for a split of a one-pixel mask stays unused).

Merge
    An annotation ``a`` that draws ``merge`` (not a crowd region) is united with its nearest neighbour: the
    annotation of the same image and the same (clean) ``category_id``, not a crowd region, whose box centre
    is nearest to ``a``'s (squared Euclidean distance; ties to the smaller id). Boxes are the ``bbox`` field
    (xywh), or the mask's tight box where an annotation has none. Mergers are served per image and class in
    ascending id order, and an annotation takes part in at most one merge: a merger's candidates leave out
    annotations already merged (either side). The neighbour is **removed** from the output (its own draws are
    not used); the merger keeps its id. A merger with no candidate left is kept unchanged (``not_applied``).
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, NamedTuple

import numpy as np

from ..masks import Crop

__all__ = ["Record", "Structure", "new_id_candidates", "plan_structure", "record_of"]

#: the largest new id (exclusive): ids stay exact in JSON readers that hold numbers as doubles
NEW_ID_LIMIT = 2**53


class Record(NamedTuple):
    """What the plan reads of one annotation: its index in the input, ids, crowd flag and box centre (pixels)."""

    index: int
    id: int
    image_id: int
    category_id: int
    iscrowd: bool
    cx: float
    cy: float


def record_of(index: int, ann: Mapping, sizes: Mapping[int, tuple[int, int]]) -> Record:
    """The record of annotation ``ann`` (checked already); the mask is rasterised only when it has no ``bbox``."""
    bbox = ann.get("bbox")
    if bbox is None:
        height, width = sizes[ann["image_id"]]
        crop = Crop.from_segmentation(ann["segmentation"], height, width)
        rows, cols = np.nonzero(crop.mask)
        bbox = ([crop.x0 + cols.min(), crop.y0 + rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
                if rows.size else [0, 0, 0, 0])
    return Record(index, ann["id"], ann["image_id"], ann["category_id"], bool(ann.get("iscrowd", 0)),
                  float(bbox[0]) + float(bbox[2]) / 2, float(bbox[1]) + float(bbox[3]) / 2)


@dataclass(frozen=True)
class Structure:
    """The plan: ``new_ids`` maps a ``duplicate``/``split`` source id to the id of the instance it adds;
    ``merges`` maps a merger's id to its neighbour's index in the input; ``absorbed`` maps each neighbour's id
    to its merger's id."""

    new_ids: dict[int, int] = field(default_factory=dict)
    merges: dict[int, int] = field(default_factory=dict)
    absorbed: dict[int, int] = field(default_factory=dict)


def new_id_candidates(seed: int, source_id: int) -> Iterable[int]:
    """The candidate ids ``c_0, c_1, ...`` of the instance added to ``source_id`` (see the module docstring)."""
    k = 0
    while True:
        digest = hashlib.blake2b(struct.pack("<QQQ", seed, source_id, k), digest_size=8, person=b"hf-noisy-newid").digest()
        yield struct.unpack("<Q", digest)[0] >> 11
        k += 1


def plan_structure(seed: int, records: Iterable[Record], drawn: Callable[[int, bool], str | None], *,
                   merges: bool = True) -> Structure:
    """The plan for ``records`` (every annotation of the input, any order); ``drawn(id, iscrowd)`` is the op an
    annotation draws (None: none, or a crowd region left as it is); ``merges``: whether ``merge`` may be drawn.

    Memory: 16 bytes per annotation for the ids (and their sorted copy), 48 more per non-crowd annotation for
    the neighbour search when ``merges``, and the plan (one entry per op drawn).
    """
    ids = array("q")
    sources: list[int] = []
    mergers: list[tuple[int, int, int]] = []  # (id, image id, category id)
    index, image, category, cx, cy, ident = array("q"), array("q"), array("q"), array("d"), array("d"), array("q")
    for record in records:
        ids.append(record.id)
        op = drawn(record.id, record.iscrowd)
        if op in ("duplicate", "split"):
            sources.append(record.id)
        elif op == "merge" and not record.iscrowd:
            mergers.append((record.id, record.image_id, record.category_id))
        if merges and not record.iscrowd:
            index.append(record.index), image.append(record.image_id), category.append(record.category_id)
            cx.append(record.cx), cy.append(record.cy), ident.append(record.id)
    taken = np.sort(np.frombuffer(ids, dtype=np.int64)) if len(ids) else np.zeros(0, np.int64)
    new_ids: dict[int, int] = {}
    given: set[int] = set()
    for source in sorted(sources):
        for candidate in new_id_candidates(seed, source):
            position = np.searchsorted(taken, candidate)
            in_input = position < taken.size and taken[position] == candidate
            if candidate and not in_input and candidate not in given:
                new_ids[source] = candidate
                given.add(candidate)
                break
    merges, absorbed = _plan_merges(mergers, index, image, category, cx, cy, ident)
    return Structure(new_ids, merges, absorbed)


def _plan_merges(mergers: list[tuple[int, int, int]], index: array, image: array, category: array, cx: array,
                 cy: array, ident: array) -> tuple[dict[int, int], dict[int, int]]:
    """Greedy nearest-neighbour merges (see the module docstring) over the non-crowd annotations' columns."""
    if not mergers:
        return {}, {}
    groups = {(img, cat) for _, img, cat in mergers}
    image_column, category_column = np.frombuffer(image, np.int64), np.frombuffer(category, np.int64)
    rows: dict[tuple[int, int], list[int]] = {}
    for row in np.nonzero(np.isin(image_column, [img for img, _ in groups]))[0]:
        key = (int(image_column[row]), int(category_column[row]))
        if key in groups:
            rows.setdefault(key, []).append(int(row))
    merges: dict[int, int] = {}
    absorbed: dict[int, int] = {}
    done: set[int] = set()  # ids already merged, either side
    for merger, img, cat in sorted(mergers):
        if merger in done:
            continue
        group = rows[(img, cat)]
        own = next(row for row in group if ident[row] == merger)
        best: tuple[float, int, int] | None = None
        for row in group:
            other = ident[row]
            if other == merger or other in done:
                continue
            key = ((cx[row] - cx[own]) ** 2 + (cy[row] - cy[own]) ** 2, other, row)
            if best is None or key < best:
                best = key
        if best is not None:
            _, other, row = best
            merges[merger] = index[row]
            absorbed[other] = merger
            done.update((merger, other))
    return merges, absorbed
