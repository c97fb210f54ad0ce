"""Apply a :class:`~hf_noisy.noise.spec.NoiseSpec` to one annotation or to a whole COCO dataset.

Randomness: every annotation's draws come from ``BLAKE2b(spec.seed, annotation id)`` (see :func:`draws`):
three uniforms (class, op choice, dilate-or-erode) and the 128-bit state and increment of a ``numpy``
``PCG64`` generator for the op's own draws (Gaussian vertex noise for localization). The output therefore
depends only on (input, spec), never on the order of annotations or the number of processes.

Each output annotation keeps its ``id`` and gains provenance:

* ``noise_op``: ``"none"``, ``"dilate"``, ``"erode"`` (``scale`` records which), ``"opening"``,
  ``"localization"`` or ``"approximation"``;
* ``noise_param``: the kernel (int), sigma or tolerance (pixels), ``None`` for ``"none"``;
  an input annotation that already records ``noise_op``/``noise_param`` (how an earlier step made its mask,
  e.g. ``sam_point`` from :mod:`hf_noisy.wan`) keeps them unless a spatial op redoes the mask;
* ``class_flipped``: whether ``category_id`` changed; ``original_category_id``: the clean label.

A changed mask is written as RLE (``counts`` a str); with ``recompute_geometry`` its ``bbox`` (xywh, tight
pixel box) and ``area`` (pixel count) are recomputed, otherwise the clean values stay. An unchanged mask keeps
its original segmentation, bbox and area. A mask that noise empties (e.g. erosion of a thin object) is kept
as an empty RLE with bbox ``[0, 0, 0, 0]`` and area 0 (``empty_masks: keep``, the reference's behaviour) or
the annotation is removed (``empty_masks: drop``). Crowd annotations are left untouched unless
``include_crowd``.

Annotation-error ops (``missing``, ``duplicate``, ``merge``, ``split``, ``box``, ``shift``, ``vertex_dropout``,
``crowd_flip``) are applied by :mod:`hf_noisy.noise.annotation_ops`, which says what each does and records;
those that add instances or need an image's other annotations are planned by :mod:`hf_noisy.noise.structure`.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
import orjson

from .. import __version__
from ..coco import CocoFormatError, CocoHeader, check_annotation, check_header, dumps_coco, empty_mask_error, validate_coco
from ..errors import HfNoisyError
from ..masks import Crop
from ..runtime import paused_gc, single_threaded_opencv
from ..workers import worker_pool
from . import spatial
from .annotation_ops import Outcome, apply_annotation_op, output_annotations
from .labels import draw_label, transition_matrix
from .spec import ANNOTATION_OPS, STRUCTURAL_OPS, NoiseSpec, SpatialOp, SpecError
from .structure import Structure, plan_structure, record_of

__all__ = ["Draws", "InstanceNoiser", "NoiseSummary", "NoiseResult", "apply_noise", "draws", "noise_to_json", "op_drawer",
           "plan"]

_UNIT = 2.0**-53


class Draws(NamedTuple):
    """One annotation's randomness: uniforms in [0, 1) for the class, the op and dilate-or-erode, and the
    ``PCG64`` state (128 bits) and increment (128 bits, odd) of the op's generator."""

    u_class: float
    u_op: float
    u_scale: float
    pcg_state: int
    pcg_increment: int


def draws(seed: int, annotation_id: int) -> Draws:
    """An annotation's random draws, from ``BLAKE2b-512(seed as 8 bytes LE, id as 8 bytes LE,
    person="hf-noisy")`` read as eight 64-bit LE words: uniforms from the top 53 bits of words 0-2, the PCG64
    state from words 3-4 and its increment from words 5-6 (low bit set). Independent per (seed, id)."""
    digest = hashlib.blake2b(struct.pack("<QQ", seed, annotation_id), digest_size=64, person=b"hf-noisy").digest()
    a, b, c, s_high, s_low, i_high, i_low, _ = struct.unpack("<8Q", digest)
    return Draws((a >> 11) * _UNIT, (b >> 11) * _UNIT, (c >> 11) * _UNIT, s_high << 64 | s_low, i_high << 64 | i_low | 1)


def op_drawer(spec: NoiseSpec) -> Callable[[int, bool], str | None]:
    """``drawn(annotation id, iscrowd)``: the name of the spatial op the annotation draws under ``spec`` (as
    written in the spec: ``scale`` not resolved), None for none or for a crowd region left as it is."""
    bounds = list(np.cumsum([op.prob for op in spec.spatial]))

    def drawn(annotation_id: int, iscrowd: bool) -> str | None:
        if iscrowd and not spec.include_crowd:
            return None
        k = bisect.bisect_right(bounds, draws(spec.seed, annotation_id).u_op)
        return spec.spatial[k].op if k < len(spec.spatial) else None

    return drawn


class InstanceNoiser:
    """Noise one annotation at a time: ``noiser(ann, height, width) -> new annotation dict or None`` (dropped or
    ``missing``); :meth:`noise_many` gives an :class:`Outcome` where an op removes or adds instances.

    ``categories`` is the dataset's ``categories`` list; class-noise matrices follow its order. A spec that
    may draw ``duplicate``, ``split`` or ``merge`` needs the whole file's ``structure``
    (:func:`~hf_noisy.noise.structure.plan_structure`; :func:`apply_noise` and ``noise_file`` make it), else
    :class:`SpecError`. The input annotation is not modified. A noiser reuses one generator, re-seeded for each
    annotation: give each thread its own noiser.
    """

    def __init__(self, spec: NoiseSpec, categories: Sequence[dict], *, allow_empty_masks: bool = True,
                 structure: Structure | None = None) -> None:
        if spec.structural and structure is None:
            ops = ", ".join(op.op for op in spec.spatial if op.op in STRUCTURAL_OPS)
            raise SpecError(f"spatial op(s) {ops} need the whole file (new ids, neighbours): noise it with "
                            "apply_noise or noise_file, not one annotation at a time")
        self.spec = spec
        self.structure = structure
        self.allow_empty_masks = allow_empty_masks
        self._category_ids = [c["id"] for c in categories]
        self._index = {cid: i for i, cid in enumerate(self._category_ids)}
        # one array (rows read as views), not lists of floats: LVIS's 1,203 x 1,203 matrix stays 12 MB per spec,
        # shared with forked workers
        self._cumulative = (
            None if spec.class_noise is None else transition_matrix(spec.class_noise, categories).cumsum(axis=1)
        )
        self._op_bounds = list(np.cumsum([op.prob for op in spec.spatial]))
        self._bits = np.random.PCG64(0)  # re-seeded from each annotation's draws (cheaper than a new generator)
        self._rng = np.random.Generator(self._bits)

    def __call__(self, ann: dict, height: int, width: int) -> dict | None:
        """The noisy annotation, or None where it has none (dropped as empty, or ``missing``). An annotation that
        may become two (``duplicate``, ``split``) or take a neighbour (``merge``) goes through :meth:`noise_many`."""
        out = self.noise_many([(ann, height, width)])[0]
        if not isinstance(out, Outcome):
            return out
        if len(out.annotations) > 1:
            raise HfNoisyError(f"annotation {ann['id']} became {len(out.annotations)} ({out.op}): use noise_many")
        return out.annotations[0] if out.annotations else None

    def noise_many(self, items: Sequence[tuple[dict, int, int]],
                   partners: Mapping[int, dict] | None = None) -> list[dict | Outcome | None]:
        """Noise ``(annotation, height, width)`` items; the same as calling the noiser on each, but the
        approximations share one vectorised simplification per op. ``partners`` maps a merger's id to its
        neighbour annotation (as :attr:`structure` names it)."""
        outputs: list[dict | Outcome | None] = []
        approximations: dict[SpatialOp, list[tuple[int, Crop]]] = {}
        for ann, height, width in items:
            if self.structure is not None and ann["id"] in self.structure.absorbed:
                self._check_not_empty(ann, height, width)
                outputs.append(Outcome("merged", ()))
                continue
            out, op, name, crop = self._start(ann, height, width)
            if op is None:
                outputs.append(out)
            elif name in ANNOTATION_OPS:
                partner = (partners or {}).get(ann["id"])
                new_id = self.structure.new_ids.get(ann["id"]) if self.structure is not None else None
                outputs.append(apply_annotation_op(ann, out, op, crop, (height, width), self._rng, self._finish,
                                                   partner=partner, new_id=new_id))
            elif name == "approximation":
                approximations.setdefault(op, []).append((len(outputs), crop))
                outputs.append(out)
            else:
                outputs.append(self._finish(out, op, name, crop))
        for op, pending in approximations.items():
            noisy = spatial.approximate_many([crop for _, crop in pending], op.param, op.holes)
            for (position, _), crop in zip(pending, noisy):
                outputs[position] = self._finish(outputs[position], op, "approximation", crop)
        return outputs

    def _check_not_empty(self, ann: dict, height: int, width: int) -> None:
        if not self.allow_empty_masks and Crop.from_segmentation(ann["segmentation"], height, width).area == 0:
            raise empty_mask_error("<data>", f"annotation {ann['id']}")

    def _start(self, ann: dict, height: int, width: int) -> tuple[dict, SpatialOp | None, str, Crop | None]:
        """The output with provenance and class noise, the spatial op drawn (None: mask unchanged), its name
        (``scale`` resolved to dilate or erode) and the crop: already noised, or clean for an approximation."""
        out = dict(ann)
        category = ann["category_id"]
        # a mask made by an earlier step (e.g. ``sam_point`` from hf-noisy wan) keeps its record unless an op redoes it
        out.update(noise_op=ann.get("noise_op", "none"), noise_param=ann.get("noise_param"), class_flipped=False,
                   original_category_id=category)
        if ann.get("iscrowd", 0) and not self.spec.include_crowd:
            self._check_not_empty(ann, height, width)  # left as it is, but checked as validate_coco checks it
            return out, None, "none", None
        u_class, u_op, u_scale, pcg_state, pcg_increment = draws(self.spec.seed, ann["id"])
        if self._cumulative is not None:
            row = self._cumulative[self._index[category]]
            out["category_id"] = self._category_ids[draw_label(row, u_class)]
            out["class_flipped"] = out["category_id"] != category
        k = bisect.bisect_right(self._op_bounds, u_op)
        if k == len(self.spec.spatial):
            self._check_not_empty(ann, height, width)
            return out, None, "none", None
        op = self.spec.spatial[k]
        crop = Crop.from_segmentation(ann["segmentation"], height, width)
        if crop.mask.size == 0 and not self.allow_empty_masks:
            raise empty_mask_error("<data>", f"annotation {ann['id']}")
        name = op.op if op.op != "scale" else ("dilate" if u_scale < 0.5 else "erode")
        if name == "dilate":
            crop = spatial.dilate(crop, op.param)
        elif name == "erode":
            crop = spatial.erode(crop, op.param)
        elif name == "opening":
            crop = spatial.opening(crop, op.param)
        elif name in ("localization", "shift", "duplicate", "vertex_dropout"):
            self._bits.state = {"bit_generator": "PCG64", "state": {"state": pcg_state, "inc": pcg_increment},
                                "has_uint32": 0, "uinteger": 0}
            if name == "localization":
                crop = spatial.localize(crop, op.param, self._rng, op.holes)
        return out, op, name, crop

    def _finish(self, out: dict, op: SpatialOp, name: str, crop: Crop) -> dict | None:
        """The output with its noisy mask (RLE) and, by the spec, recomputed geometry; None if dropped."""
        noisy = crop.encode()
        if noisy.area == 0 and self.spec.empty_masks == "drop":
            return None
        out.update(noise_op=name, noise_param=op.param, segmentation=noisy.rle)
        if self.spec.recompute_geometry:
            out["bbox"], out["area"] = noisy.bbox, noisy.area
        return out


@dataclass
class NoiseSummary:
    """What a run applied: counts of input annotations per op, class flips, emptied masks; for the
    annotation-error ops also instances ``added`` (duplicate, split), input annotations ``removed`` (missing, a
    merge's neighbour) and ops drawn but ``not_applied`` (per op). ``emptied``/``dropped`` count output
    instances (a duplicate's copy included). The last three are written only when not zero/empty."""

    annotations: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    class_flipped: int = 0
    crowd_skipped: int = 0
    emptied: int = 0
    dropped: int = 0
    added: int = 0
    removed: int = 0
    not_applied: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, inputs: Sequence[dict], outputs: Sequence[dict | Outcome | None], spec: NoiseSpec) -> "NoiseSummary":
        summary = cls(annotations=len(inputs))
        for ann, out in zip(inputs, outputs):
            if isinstance(out, Outcome):
                if not out.applied:
                    summary.not_applied[out.op] = summary.not_applied.get(out.op, 0) + 1
                    out = out.annotations[0]  # passed on unchanged: counted as below
                else:
                    summary._count_outcome(out, spec)
                    continue
            if out is None:
                summary.dropped += 1
                continue
            summary.ops[out["noise_op"]] = summary.ops.get(out["noise_op"], 0) + 1
            summary.class_flipped += out["class_flipped"]
            if ann.get("iscrowd", 0) and not spec.include_crowd:
                summary.crowd_skipped += 1
            elif out["segmentation"] is not ann["segmentation"] and _emptied(out, spec):  # a mask this run made
                summary.emptied += 1
        summary.emptied += summary.dropped
        summary.ops = dict(sorted(summary.ops.items()))
        summary.not_applied = dict(sorted(summary.not_applied.items()))
        return summary

    def _count_outcome(self, outcome: Outcome, spec: NoiseSpec) -> None:
        """Count an applied :class:`Outcome` (its input is not a crowd region left as it is)."""
        if outcome.op == "merged":
            self.removed += 1
            return
        self.ops[outcome.op] = self.ops.get(outcome.op, 0) + 1
        if outcome.op == "missing":
            self.removed += 1
            return
        self.class_flipped += outcome.annotations[0]["class_flipped"]
        if outcome.op == "duplicate" and len(outcome.annotations) == 1:
            self.dropped += 1  # the copy, emptied and dropped (counted in emptied with the others)
            return
        self.added += 1
        copy = outcome.annotations[-1]
        if outcome.op == "duplicate" and _emptied(copy, spec):
            self.emptied += 1

    def __add__(self, other: "NoiseSummary") -> "NoiseSummary":
        ops = dict(self.ops)
        for op, count in other.ops.items():
            ops[op] = ops.get(op, 0) + count
        not_applied = dict(self.not_applied)
        for op, count in other.not_applied.items():
            not_applied[op] = not_applied.get(op, 0) + count
        return NoiseSummary(
            annotations=self.annotations + other.annotations,
            ops=dict(sorted(ops.items())),
            class_flipped=self.class_flipped + other.class_flipped,
            crowd_skipped=self.crowd_skipped + other.crowd_skipped,
            emptied=self.emptied + other.emptied,
            dropped=self.dropped + other.dropped,
            added=self.added + other.added,
            removed=self.removed + other.removed,
            not_applied=dict(sorted(not_applied.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "annotations": self.annotations,
            "ops": dict(self.ops),
            "class_flipped": self.class_flipped,
            "crowd_skipped": self.crowd_skipped,
            "emptied": self.emptied,
            "dropped": self.dropped,
        }
        # written only when used, so that the outputs of the paper's ops keep their bytes
        out.update({key: value for key, value in (("added", self.added), ("removed", self.removed),
                                                  ("not_applied", dict(self.not_applied))) if value})
        return out

    def table(self) -> str:
        """A small human-readable table."""
        n = max(self.annotations, 1)
        lines = [f"{'noise':<16}{'instances':>10}{'share':>9}"]
        for op, count in self.ops.items():
            lines.append(f"{op:<16}{count:>10}{count / n:>9.1%}")
        lines.append(f"{'class flipped':<16}{self.class_flipped:>10}{self.class_flipped / n:>9.1%}")
        if self.crowd_skipped:
            lines.append(f"{'crowd (as is)':<16}{self.crowd_skipped:>10}{self.crowd_skipped / n:>9.1%}")
        lines.append(f"{'emptied':<16}{self.emptied:>10}{self.emptied / n:>9.1%}")
        if self.dropped:
            lines.append(f"{'dropped':<16}{self.dropped:>10}{self.dropped / n:>9.1%}")
        for label, count in (("added", self.added), ("removed", self.removed),
                             *((f"{op} (not made)", c) for op, c in self.not_applied.items())):
            if count:
                lines.append(f"{label:<16}{count:>10}{count / n:>9.1%}")
        lines.append(f"{'total':<16}{self.annotations:>10}")
        return "\n".join(lines)


def _emptied(out: dict, spec: NoiseSpec) -> bool:
    """Whether a mask this run made is empty (a thinned polygon keeps 3 vertices or more: not counted)."""
    if spec.recompute_geometry:
        return out["area"] == 0
    return not isinstance(out["segmentation"], list) and Crop.from_rle(out["segmentation"]).area == 0


@dataclass
class NoiseResult:
    """A noisy COCO dict (a new object; the input is untouched) and what was applied."""

    data: dict
    summary: NoiseSummary


def apply_noise(
    data: dict,
    spec: NoiseSpec,
    *,
    num_proc: int = 1,
    progress: bool = False,
    input_sha256: str | None = None,
    validate: bool = True,
    allow_empty_masks: bool = False,
    source: str = "<data>",
) -> NoiseResult:
    """Noise every annotation of a COCO instance dict.

    Args:
        data: COCO dict (``images``, ``annotations``, ``categories``); validated unless ``validate=False``.
        spec: what to apply.
        num_proc: worker processes; the output is byte-identical for any value.
        progress: show a progress bar (tqdm, on stderr).
        input_sha256: hash of the input file, recorded in ``info.hf_noisy``.
        validate: check ``data`` as :func:`~hf_noisy.coco.validate_coco` does (in the workers, while noising);
            the first problem raises :class:`~hf_noisy.coco.CocoFormatError` naming ``source``.
        allow_empty_masks: pass annotations with an empty input mask through instead of raising
            :class:`~hf_noisy.coco.CocoFormatError` (checked while noising, where masks are rasterised anyway).
        source: what to call ``data`` in error messages (e.g. its file name).
    """
    head, chunks, summary = _noise_chunks(data, spec, False, num_proc, progress, input_sha256, validate,
                                          allow_empty_masks, source)
    head["annotations"] = [ann for chunk in chunks for ann in output_annotations(chunk)]
    return NoiseResult(head, summary)


def noise_to_json(
    data: dict,
    spec: NoiseSpec,
    *,
    num_proc: int = 1,
    progress: bool = False,
    input_sha256: str | None = None,
    validate: bool = True,
    allow_empty_masks: bool = False,
    source: str = "<data>",
) -> tuple[bytes, NoiseSummary]:
    """:func:`apply_noise` straight to the bytes :func:`~hf_noisy.coco.dumps_coco` would write for its
    result (identical bytes). Each worker serialises its own annotations, so little is left to the main
    process."""
    head, chunks, summary = _noise_chunks(data, spec, True, num_proc, progress, input_sha256, validate,
                                          allow_empty_masks, source)
    before, after = json_around_annotations(head)
    return before + b",".join(chunk for chunk in chunks if chunk) + after, summary


@dataclass(frozen=True)
class _Job:
    """The work of one run; each task is a range of annotation indices (cheap to send to a worker)."""

    noiser: InstanceNoiser
    annotations: list
    sizes: dict[int, tuple[int, int]]  # image id -> (height, width)
    header: CocoHeader | None  # check each annotation against it, or trust the data
    as_json: bool
    source: str

    def run(self, bounds: tuple[int, int]) -> tuple[list[dict | Outcome | None] | bytes, NoiseSummary]:
        start, stop = bounds
        annotations = self.annotations[start:stop]
        if self.header is not None:
            for index, ann in enumerate(annotations, start):
                check_annotation(ann, index, self.header, source=self.source)
        merges = self.noiser.structure.merges if self.noiser.structure is not None else {}
        partners = {ann["id"]: self.annotations[merges[ann["id"]]] for ann in annotations if ann["id"] in merges}
        outputs = self.noiser.noise_many([(ann, *self.sizes[ann["image_id"]]) for ann in annotations], partners)
        summary = NoiseSummary.of(annotations, outputs, self.noiser.spec)
        if self.as_json:
            return orjson.dumps(list(output_annotations(outputs)))[1:-1], summary  # the same as joined by ","
        return outputs, summary


# The job of a worker process, set once by the pool's initializer (inherited without copying under fork),
# so that a task is only an index range.
_WORKER: dict[str, _Job] = {}


def _init_worker(job: _Job) -> None:
    cv2.setNumThreads(1)  # as in the parent while it noises (inherited under fork, set here under spawn)
    _WORKER["job"] = job


def _run_in_worker(bounds: tuple[int, int]) -> tuple[list[dict | None] | bytes, NoiseSummary]:
    return _WORKER["job"].run(bounds)


def chunk_ranges(total: int, processes: int) -> list[tuple[int, int]]:
    """Index ranges of at most 1,000 annotations (progress updates), and with several processes at least ~24
    per process, so that the last ones to finish are small (annotations differ a lot in cost)."""
    size = 1000 if processes == 1 else max(50, min(1000, total // (24 * processes)))
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def _noise_chunks(
    data: dict, spec: NoiseSpec, as_json: bool, num_proc: int, progress: bool, input_sha256: str | None,
    validate: bool, allow_empty_masks: bool, source: str,
) -> tuple[dict, list, NoiseSummary]:
    """Noise ``data``'s annotations in chunks (in worker processes when ``num_proc > 1``): the output dict
    without annotations, each chunk's output (annotations, or their JSON joined by commas) in order, and the
    summary."""
    if num_proc < 1:
        raise HfNoisyError(f"num_proc must be >= 1, got {num_proc}")
    header = check_header(data, source=source) if validate else None
    annotations = data["annotations"]
    if validate and not _ids_unique(annotations):
        validate_coco(data, source=source, check_masks=False)  # raises the first problem, as it would say it
    sizes = header.sizes if header else {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    structure = plan(spec, structure_records(annotations, header, sizes, source)) if spec.structural else None
    noiser = InstanceNoiser(spec, data["categories"], allow_empty_masks=allow_empty_masks,
                            structure=structure)  # fails early on a bad matrix
    job = _Job(noiser, annotations, sizes, header, as_json, source)

    processes = min(num_proc, os.cpu_count() or num_proc)
    ranges = chunk_ranges(len(annotations), processes)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(annotations), desc="noising", unit="ann", dynamic_ncols=True)
    chunks, summary, pool = [], NoiseSummary(), None
    with single_threaded_opencv(), paused_gc():  # workers fork inside and inherit both; noising makes no cycles
        try:
            if processes == 1:
                outputs = map(job.run, ranges)
            else:
                pool = worker_pool(processes, _init_worker, (job,))
                outputs = pool.imap(_run_in_worker, ranges)
            for (start, stop), (chunk, chunk_summary) in zip(ranges, outputs):
                chunks.append(chunk)
                summary += chunk_summary
                if bar is not None:
                    bar.update(stop - start)
        except CocoFormatError as err:
            if validate:  # an annotation problem in a later chunk comes before an empty mask in this one
                validate_coco(data, source=source, check_masks=False)
            raise err.with_source(source) from None
        finally:
            if pool is not None:
                pool.terminate()
            if bar is not None:
                bar.close()

    head = with_provenance({key: value for key, value in data.items() if key != "annotations"}, spec,
                           input_sha256, summary)
    return head, chunks, summary


def plan(spec: NoiseSpec, records: Iterable) -> Structure:
    """The whole-file :class:`~hf_noisy.noise.structure.Structure` of ``spec`` over ``records`` (every
    annotation's :class:`~hf_noisy.noise.structure.Record`)."""
    return plan_structure(spec.seed, records, op_drawer(spec), merges=any(op.op == "merge" for op in spec.spatial))


def structure_records(annotations: Iterable[Any], header: CocoHeader | None, sizes: Mapping[int, tuple[int, int]],
                      source: str) -> Iterator:
    """The plan's records of ``annotations`` (in input order), each checked against ``header`` first (when
    given) as the chunks would check it."""
    for index, ann in enumerate(annotations):
        if header is not None:
            check_annotation(ann, index, header, source=source)
        yield record_of(index, ann, sizes)


def with_provenance(head: dict, spec: NoiseSpec, input_sha256: str | None, summary: NoiseSummary) -> dict:
    """``head`` (a COCO dict without ``annotations``) with ``info.hf_noisy`` recording the run (a new ``info``
    dict; ``info`` is added last where ``head`` has none)."""
    info = dict(head.get("info") or {})
    info["hf_noisy"] = {
        "version": __version__,
        "spec": spec.to_dict(),
        "spec_sha256": spec.sha256,
        "input_sha256": input_sha256,
        "summary": summary.to_dict(),
    }
    head["info"] = info
    return head


def json_around_annotations(head: dict) -> tuple[bytes, bytes]:
    """The bytes :func:`~hf_noisy.coco.dumps_coco` writes before and after the annotations (joined by commas)
    of ``head`` with an ``annotations`` list added last."""
    empty_list = dumps_coco({**head, "annotations": []})
    if not empty_list.endswith(b"[]}"):  # annotations is the last key; anything else is a bug here
        raise AssertionError("the annotations list must be serialised last")
    return empty_list[:-2], b"]}"


def _ids_unique(annotations: list) -> bool:
    """Whether every annotation is an object with a distinct, hashable id (the one check that needs them all)."""
    try:
        return len({ann["id"] for ann in annotations}) == len(annotations)
    except (TypeError, KeyError):
        return False
