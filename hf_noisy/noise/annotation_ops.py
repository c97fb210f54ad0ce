"""Annotation-error ops: ``spatial`` entries like the paper's (one op per instance, drawn as
:mod:`hf_noisy.noise.engine` draws them; the op's own draws come from the annotation's ``PCG64`` generator).
Their provenance adds ``noise_source_ids`` (the input ids an instance comes from) and, for
``shift``/``duplicate``, ``noise_offset`` (``[dx, dy]``, whole pixels):

* ``missing``: the annotation is left out (summary: ``ops.missing`` and ``removed``).
* ``duplicate``: the annotation is kept unchanged and followed by a copy moved by a drawn offset (as
  ``shift``), with a new id (:mod:`hf_noisy.noise.structure`), ``noise_op="duplicate"``, ``noise_param`` the
  ``max_offset``, ``noise_source_ids=[id]`` (summary: ``ops.duplicate`` and ``added``).
* ``merge``: the mask becomes the union with the nearest same-class neighbour's clean mask, which is removed
  (:mod:`hf_noisy.noise.structure` says which; ``noise_source_ids=[id, neighbour id]``; summary: ``ops.merge``
  and ``removed``); without a neighbour the annotation is unchanged (summary ``not_applied.merge``).
* ``split``: the mask is cut in two (:func:`~hf_noisy.noise.spatial.split`): the first part keeps the id and is
  followed by the second with a new id, both ``noise_source_ids=[id]`` (summary: ``ops.split`` and ``added``);
  a mask of fewer than 2 pixels is unchanged (``not_applied.split``).
* ``box``: the mask becomes its tight pixel box, filled.
* ``shift``: the mask moves by ``dx = rint((2u - 1) * max_offset * w)`` and ``dy`` likewise with ``h`` (``u``
  two uniforms from the op's generator, x first; ``w``, ``h`` the mask's tight box), clipped to the image.
* ``vertex_dropout``: each polygon loses ``floor(fraction * n)`` of its ``n`` vertices (at least 3 kept; see
  :func:`~hf_noisy.noise.spatial.dropout_indices`, one key per vertex, polygons in order) and the annotation
  stays polygons; an RLE mask is traced to its outer contours first (holes filled) and written as RLE.
* ``crowd_flip``: ``iscrowd`` becomes ``1 - iscrowd``; the mask, bbox and area are unchanged.

An empty result (a shift or copy moved off the image) follows ``empty_masks`` like any other. Output order is
input order, each added instance right after its source; every output annotation depends only on the set of
input annotations and the spec, never on their order or ``num_proc``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ..masks import Crop
from . import spatial
from .spec import SpatialOp

__all__ = ["Outcome", "apply_annotation_op", "output_annotations"]

#: ``finish(out, op, name, crop)``: ``out`` with the noisy mask ``crop`` written (RLE) and, by the spec, its
#: geometry recomputed; None where the spec drops an emptied mask (the engine's ``InstanceNoiser._finish``)
Finish = Callable[[dict, SpatialOp, str, Crop], "dict | None"]


class Outcome(NamedTuple):
    """What an annotation-error op made of one input annotation when that is not one annotation in its place:
    ``op`` (``missing``, ``duplicate``, ``split``, ``merge``, or ``merged`` for a merge's removed neighbour),
    the output ``annotations`` (0, 1 or 2, in output order), and whether the op was ``applied`` (False: the
    annotation is passed on unchanged, e.g. a merge without a neighbour)."""

    op: str
    annotations: tuple[dict, ...]
    applied: bool = True


def output_annotations(outputs: Iterable[dict | Outcome | None]) -> Iterator[dict]:
    """The output annotations of :meth:`InstanceNoiser.noise_many`'s results, in order."""
    for out in outputs:
        if isinstance(out, Outcome):
            yield from out.annotations
        elif out is not None:
            yield out


def apply_annotation_op(ann: dict, out: dict, op: SpatialOp, crop: Crop, size: tuple[int, int],
                        rng: np.random.Generator, finish: Finish, *, partner: dict | None = None,
                        new_id: int | None = None) -> dict | Outcome | None:
    """Annotation-error op ``op`` on input ``ann``: ``out`` is its output so far (a copy with provenance and
    class noise), ``crop`` its clean mask in an image of ``size`` (height, width), ``rng`` the op's generator
    (seeded for this annotation). ``partner`` is a merger's neighbour annotation (None: no neighbour left) and
    ``new_id`` the id planned for the instance a ``duplicate`` or ``split`` adds."""
    name = op.op
    if name == "missing":
        return Outcome("missing", ())
    if name == "crowd_flip":
        out.update(iscrowd=1 - ann.get("iscrowd", 0), noise_op="crowd_flip", noise_param=None)
        return out
    if name == "box":
        return finish(out, op, name, spatial.box_mask(crop))
    if name == "merge":
        if partner is None:
            return Outcome("merge", (out,), applied=False)
        merged = finish(out, op, name, spatial.union(crop, Crop.from_segmentation(partner["segmentation"], *size)))
        if merged is not None:
            merged["noise_source_ids"] = [ann["id"], partner["id"]]
        return merged
    if name == "vertex_dropout":
        if not isinstance(ann["segmentation"], list):
            return finish(out, op, name, spatial.drop_vertices(crop, op.param, rng))
        polygons = []
        for polygon in ann["segmentation"]:
            kept = spatial.dropout_indices(len(polygon) // 2, op.param, rng)
            polygons.append([polygon[2 * i + j] for i in kept.tolist() for j in (0, 1)])
        thinned = finish(out, op, name, Crop.from_segmentation(polygons, *size))
        if thinned is not None:
            thinned["segmentation"] = polygons
        return thinned
    if name == "split":
        parts = spatial.split(crop)
        if parts is None:
            return Outcome("split", (out,), applied=False)
        halves = [finish(dict(out, id=ident), op, name, part) for ident, part in zip((ann["id"], new_id), parts)]
        for half in halves:  # never empty: each part holds at least one pixel
            half["noise_source_ids"] = [ann["id"]]
        return Outcome("split", tuple(halves))
    # shift or duplicate
    box = spatial.tight_box(crop)
    width, height = (box[2] - box[0], box[3] - box[1]) if box is not None else (0, 0)
    u_x, u_y = rng.random(2).tolist()
    offset = [int(np.rint((2 * u_x - 1) * op.param * width)), int(np.rint((2 * u_y - 1) * op.param * height))]
    moved = spatial.translate(crop, *offset)
    if name == "shift":
        shifted = finish(out, op, name, moved)
        if shifted is not None:
            shifted["noise_offset"] = offset
        return shifted
    copy = finish(dict(out, id=new_id), op, name, moved)
    if copy is None:
        return Outcome("duplicate", (out,))
    copy.update(noise_source_ids=[ann["id"]], noise_offset=offset)
    return Outcome("duplicate", (out, copy))

