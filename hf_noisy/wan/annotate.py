"""``weak_annotate``: re-make every mask of a COCO file with SAM from a weak prompt (COCO-WAN, paper sec. 3.4).

Levels: ``easy`` = box prompt; ``medium`` = box-centre point prompt; ``hard`` = the medium masks plus 40%
symmetric class noise (the noise engine's ``class_noise: {kind: symmetric, rate: 0.4}``, seed 1, so the draws
are ``BLAKE2b(seed, annotation id)`` as for COCO-N).

Work and its order: the images holding at least one annotation to prompt are taken in the input's order and
cut into chunks of ``image_batch_size`` images (one vision-encoder forward each). Chunk ``c`` is computed by
process ``c mod world_size`` (``accelerate launch``), which appends its results to its own cache file
(:mod:`hf_noisy.wan.cache`). A chunk is computed identically by whichever process takes it, so the output is
byte-identical for any number of processes and across interruptions; once every process is done, the main
process merges the cache in the input's annotation order and writes the file atomically. It is also
byte-identical for any thread count on a CPU: the decoder runs in float64 there and its outputs are rounded
to float32 (:func:`~hf_noisy.wan.sam.decoder_dtype_for`), and ``sam_iou`` is stored with
:data:`SAM_IOU_DECIMALS` decimals. (Across CPU models, BLAS builds or GPUs the float32 vision encoder may
round differently; the cache key records the device type and library versions.)

Where the output differs from the released scripts (``create_gt_plus_sam_noise.py`` and ``..._point_noise.py``):

* **ids and order**: every annotation keeps its ``id`` and the input's order (the scripts renumber from 0,
  image by image, and drop every field but ``image_id``, ``category_id``, ``segmentation``, ``bbox``, ``area``,
  ``iscrowd`` and ``id``); other fields are kept and provenance is added.
* **bbox**: COCO's tight ``[x, y, w, h]`` floats of the SAM mask (``w`` = column count; the scripts write
  ``max - min`` of the inclusive pixel indices, one pixel less, as numpy ints); ``area`` is the pixel count in
  both. An empty SAM mask has bbox ``[0, 0, 0, 0]`` and area 0 in both.
* **crowd regions** (``iscrowd: 1``) are kept as they are by default: they are ignore regions in COCO
  evaluation. The scripts prompt them too: ``include_crowd=True`` does that.
* **empty clean masks**: an annotation whose clean mask is empty gives no prompt and is kept as it is (the
  scripts would prompt the box ``(0, 0, 0, 0)``).
* **images** are decoded by OpenCV as in the scripts, but EXIF orientation is ignored (COCO's annotations
  refer to the stored pixels; the scripts' ``cv2.imread`` rotates such images) and an image whose size differs
  from the file's is an error.
* The scripts noise both the train and val files; here each call makes one file (the builder keeps val clean).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..coco import CocoFormatError, parse_coco_bytes, validate_coco, write_coco
from ..fsutil import check_output
from ..masks import Crop
from .cache import ChunkCache
from .errors import WanError
from .prompts import PROMPT_KINDS, PromptKind, make_prompt
from .sam import DECODER_DTYPES, DEFAULT_MODEL, DTYPES, SamSegmenter, decoder_dtype_for, load_image, model_fingerprint

__all__ = ["WAN_LEVELS", "WanError", "WanSummary", "level_of", "weak_annotate"]

#: The paper's COCO-WAN levels: prompt kind and symmetric class-noise rate.
WAN_LEVELS: dict[str, tuple[str, float | None]] = {"easy": ("box", None), "medium": ("point", None),
                                                   "hard": ("point", 0.4)}
#: Format of the cache lines (part of the cache key). 2: ``sam_iou`` rounded, float64 decoder on CPU.
CACHE_FORMAT = 2
#: Decimals ``sam_iou`` is stored with: the IoU head's float32 output is good to ~1e-7, its noise across
#: batching and hardware is ~1e-7 to 1e-9, and 4 decimals are far finer than the head's accuracy.
SAM_IOU_DECIMALS = 4


@dataclass
class WanSummary:
    """What a run did: counts over annotations and images, and the class noise applied (hard level)."""

    images: int = 0
    annotations: int = 0
    prompted: int = 0
    crowd_kept: int = 0
    empty_input_kept: int = 0
    empty_output: int = 0
    mean_sam_iou: float | None = None
    class_flipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        n = max(self.annotations, 1)
        rows = [("prompted (SAM)", self.prompted), ("crowd (as is)", self.crowd_kept),
                ("empty input (as is)", self.empty_input_kept), ("empty SAM mask", self.empty_output),
                ("class flipped", self.class_flipped)]
        lines = [f"{'annotations':<22}{self.annotations:>10}"]
        lines += [f"{name:<22}{count:>10}{count / n:>9.1%}" for name, count in rows]
        if self.mean_sam_iou is not None:
            lines.append(f"{'mean predicted IoU':<22}{self.mean_sam_iou:>10.3f}")
        lines.append(f"{'images':<22}{self.images:>10}")
        return "\n".join(lines)


def level_of(prompt: str, class_noise: float | None, seed: int) -> str | None:
    """The paper's level name for these options (``easy``/``medium``/``hard``), or ``None`` for a custom run."""
    for name, (kind, rate) in WAN_LEVELS.items():
        if kind == prompt and rate == class_noise and (rate is None or seed == 1):
            return name
    return None


@dataclass(frozen=True)
class _Plan:
    """What to compute: per chunk, its images ``(index into data["images"], [annotation index, ...])``."""

    chunks: list[list[tuple[int, list[int]]]]

    @classmethod
    def of(cls, data: dict, include_crowd: bool, image_batch_size: int) -> "_Plan":
        by_image: dict[int, list[int]] = {}
        for index, ann in enumerate(data["annotations"]):
            if include_crowd or not ann.get("iscrowd", 0):
                by_image.setdefault(ann["image_id"], []).append(index)
        work = [(i, by_image[image["id"]]) for i, image in enumerate(data["images"]) if image["id"] in by_image]
        return cls([work[s : s + image_batch_size] for s in range(0, len(work), image_batch_size)])


def _distributed_state(device: str | None):
    """accelerate's process state (a single process unless started by ``accelerate launch``/``torchrun``);
    on a machine without CUDA, or with ``device="cpu"``, processes talk over gloo."""
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    return PartialState(cpu=cpu)


def weak_annotate(
    input_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    prompt: PromptKind = "box",
    class_noise: float | None = None,
    seed: int = 1,
    model: str | os.PathLike = DEFAULT_MODEL,
    batch_size: int = 64,
    image_batch_size: int = 4,
    device: str | None = None,
    dtype: str = "float32",
    decoder_dtype: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    include_crowd: bool = False,
    max_images: int | None = None,
    num_workers: int = 2,
    progress: bool = False,
    on_chunk: Callable[[int], None] | None = None,
    overwrite: bool = False,
) -> WanSummary | None:
    """Re-make every mask of a COCO instance file with SAM from a weak prompt and write a new COCO file.

    Args:
        input_path: clean COCO instance JSON (validated; empty masks allowed and kept as they are).
        images_dir: folder holding each image's ``file_name``.
        output_path: where to write the result (atomically, by the main process).
        prompt: ``"box"`` (easy) or ``"point"`` (medium, hard), made as :mod:`hf_noisy.wan.prompts` says.
        class_noise: symmetric class-noise rate applied to the SAM output with the noise engine (hard: 0.4).
        seed: the class-noise seed (draws are ``BLAKE2b(seed, annotation id)``).
        model: a SAM checkpoint: Hub id or local folder with the model and its processor.
        batch_size: prompts per mask-decoder call (memory).
        image_batch_size: images per vision-encoder forward, and per cache chunk.
        device: ``"cpu"``, ``"cuda"``, ... (default: the process's accelerate device: its GPU, else CPU).
        dtype: ``"float32"`` (the reference), ``"bfloat16"`` or ``"float16"`` (GPU).
        decoder_dtype: the prompt encoder's and mask decoder's precision (default: ``"float64"`` for a float32
            model on a CPU, which makes the output independent of the thread count, else ``dtype``);
            ``"float32"`` on a CPU is faster in the decoder but ties the output to the thread count.
        cache_dir: the resumable cache's root (default: ``.hf-noisy-wan-cache`` beside the output); results
            are kept under a key of everything they depend on, so a run with other inputs never reuses them.
        include_crowd: prompt crowd regions too (the released scripts do); by default they are kept as they are.
        max_images: keep only the first ``max_images`` entries of the input's ``images`` list (in the file's
            order) and their annotations, for a quick run; the output holds just those (default: all).
        num_workers: threads that read and resize the next images while the model runs.
        progress: show a progress bar (main process: its own share of the images, with images/s).
        on_chunk: called with the number of this process's images done after each chunk is cached.
        overwrite: replace an existing ``output_path`` (never one of the inputs).

    Returns:
        The summary on the main process, ``None`` on the others.

    Every output annotation keeps its fields and ``id`` and gains ``noise_op`` (``sam_box``/``sam_point``, or
    ``none`` for one kept as it is), ``noise_param`` (``None``), ``sam_prompt`` (``[x0, y0, x1, y1]`` or
    ``[x, y]`` in original pixels, floats; ``None`` if not prompted), ``sam_iou`` (the predicted IoU of the
    kept mask, rounded to :data:`SAM_IOU_DECIMALS` decimals; ``None`` if not prompted), ``class_flipped`` and
    ``original_category_id``.
    ``info.hf_noisy`` records the version, the input's SHA-256 and the run (``wan``: level, model, options,
    summary; with class noise also the noise spec, its hash and its summary).
    """
    if prompt not in PROMPT_KINDS:
        raise WanError(f"prompt must be one of {sorted(PROMPT_KINDS)}, got {prompt!r}")
    if dtype not in DTYPES:
        raise WanError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if decoder_dtype is not None and decoder_dtype not in DECODER_DTYPES:
        raise WanError(f"decoder_dtype must be one of {sorted(DECODER_DTYPES)}, got {decoder_dtype!r}")
    if batch_size < 1 or image_batch_size < 1 or num_workers < 1:
        raise WanError("batch_size, image_batch_size and num_workers must be >= 1")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise WanError(f"max_images must be a whole number >= 1, got {max_images!r}")
    spec = None
    if class_noise is not None:
        from ..noise import ClassNoise, NoiseSpec

        spec = NoiseSpec(seed=seed, class_noise=ClassNoise("symmetric", class_noise), include_crowd=include_crowd)
    input_path, images_dir, output_path = Path(input_path), Path(images_dir), Path(output_path)
    check_output(output_path, [input_path, images_dir, model], overwrite=overwrite)
    if not images_dir.is_dir():
        raise WanError(f"{images_dir}: no such image folder")

    state = _distributed_state(device)
    if state.num_processes > 1 and device not in (None, "cpu"):
        raise WanError(f"device={device!r} with {state.num_processes} processes: leave the device to accelerate launch")
    run_device = device or str(state.device)
    if not input_path.is_file():
        raise CocoFormatError("no such file", source=str(input_path))
    raw = input_path.read_bytes()
    input_sha256 = hashlib.sha256(raw).hexdigest()
    data = parse_coco_bytes(raw, source=str(input_path))
    validate_coco(data, source=str(input_path), allow_empty_masks=True)
    del raw
    if max_images is not None:
        data = _first_images(data, max_images)
    plan = _Plan.of(data, include_crowd, image_batch_size)
    for chunk in plan.chunks:  # checked by every process, so that all of them stop on a missing image
        for i, _ in chunk:
            if not (images_dir / data["images"][i]["file_name"]).is_file():
                raise WanError(f"{images_dir / data['images'][i]['file_name']}: image {data['images'][i]['id']} not found")
    import torch
    import transformers

    options = {
        "prompt": prompt,
        "model": str(model),
        "dtype": dtype,
        "decoder_dtype": decoder_dtype or decoder_dtype_for(torch.device(run_device).type, dtype),
        "batch_size": batch_size,
        "image_batch_size": image_batch_size,
        "include_crowd": include_crowd,
        "max_images": max_images,
    }
    fields = {
        "format": CACHE_FORMAT,
        "input_sha256": input_sha256,
        "model_fingerprint": model_fingerprint(model),
        "device_type": torch.device(run_device).type,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **options,
    }
    cache = ChunkCache(cache_dir or output_path.parent / ".hf-noisy-wan-cache", fields, rank=state.process_index)
    mine = [c for c in range(len(plan.chunks)) if c % state.num_processes == state.process_index]
    with cache.exclusive():
        done = cache.done()
        todo = [c for c in mine if c not in done]
        if todo:
            _compute(data, images_dir, plan, todo, cache, prompt, model, run_device, dtype, options["decoder_dtype"],
                     batch_size, num_workers,
                     progress=progress and state.is_main_process,
                     done_images=sum(len(plan.chunks[c]) for c in mine if c in done),
                     total_images=sum(len(plan.chunks[c]) for c in mine), on_chunk=on_chunk)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    out, summary = _merge(data, plan, cache, prompt, include_crowd)
    hf_noisy = {"version": __version__, "input_sha256": input_sha256,
                "wan": {"level": level_of(prompt, class_noise, seed), **options, "model_fingerprint": fields["model_fingerprint"],
                        "device_type": fields["device_type"], "torch": fields["torch"],
                        "transformers": fields["transformers"], "summary": None}}
    if spec is not None:
        from ..noise import apply_noise

        noisy = apply_noise(out, spec, validate=False, allow_empty_masks=True)
        out = noisy.data
        summary.class_flipped = noisy.summary.class_flipped
        hf_noisy.update(spec=spec.to_dict(), spec_sha256=spec.sha256)
    hf_noisy["wan"]["summary"] = summary.to_dict()
    out["info"] = {**(data.get("info") or {}), "hf_noisy": hf_noisy}
    out["annotations"] = out.pop("annotations")  # keep annotations last, as the noise engine writes them
    write_coco(out, output_path, overwrite=overwrite)
    return summary


def _first_images(data: dict, count: int) -> dict:
    """``data`` with only its first ``count`` images (file order) and the annotations on them."""
    images = data["images"][:count]
    kept = {image["id"] for image in images}
    head = {key: value for key, value in data.items() if key not in ("images", "annotations")}
    return {**head, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in kept]}


def _compute(data: dict, images_dir: Path, plan: _Plan, todo: list[int], cache: ChunkCache, prompt: PromptKind,
             model, device: str, dtype: str, decoder_dtype: str, batch_size: int, num_workers: int, *, progress: bool,
             done_images: int, total_images: int, on_chunk: Callable[[int], None] | None) -> None:
    """Compute the chunks ``todo`` in order and append each to the cache as soon as it is done."""
    images, annotations = data["images"], data["annotations"]
    segmenter = SamSegmenter(model, device=device, dtype=dtype, decoder_dtype=decoder_dtype)

    def prepare(c: int):
        chunk = plan.chunks[c]
        pixels = [load_image(images_dir / images[i]["file_name"], images[i]["height"], images[i]["width"]) for i, _ in chunk]
        return segmenter.prepare(pixels)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_images, initial=done_images, desc="SAM", unit="img", dynamic_ncols=True)
    count = done_images
    with ThreadPoolExecutor(num_workers) as pool:
        pending: deque = deque(pool.submit(prepare, c) for c in todo[: num_workers + 1])
        try:
            for k, c in enumerate(todo):
                prepared = pending.popleft().result()
                if k + num_workers + 1 < len(todo):
                    pending.append(pool.submit(prepare, todo[k + num_workers + 1]))
                embeddings = segmenter.embed(prepared)
                results = []
                for j, (i, indices) in enumerate(plan.chunks[c]):
                    height, width = images[i]["height"], images[i]["width"]
                    prompts = [(a, make_prompt(prompt, annotations[a]["segmentation"], height, width)) for a in indices]
                    prompts = [(a, p) for a, p in prompts if p is not None]
                    if not prompts:
                        continue
                    for start in range(0, len(prompts), batch_size):  # full-size masks of one batch at a time
                        batch = prompts[start : start + batch_size]
                        masks = segmenter.segment(embeddings[j : j + 1], prompt, [p for _, p in batch],
                                                  prepared.original_sizes[j], prepared.reshaped_sizes[j], batch_size=batch_size)
                        for (a, p), mask, iou in zip(batch, masks.masks, masks.iou):
                            encoded = Crop.from_full(mask.view(np.uint8)).encode()
                            results.append([annotations[a]["id"], encoded.rle["counts"], encoded.bbox, encoded.area, p,
                                            round(iou, SAM_IOU_DECIMALS)])
                cache.append(c, results)
                count += len(plan.chunks[c])
                if bar is not None:
                    bar.update(len(plan.chunks[c]))
                if on_chunk is not None:
                    on_chunk(count)
        finally:
            for future in pending:
                future.cancel()
            if bar is not None:
                bar.close()


def _merge(data: dict, plan: _Plan, cache: ChunkCache, prompt: PromptKind, include_crowd: bool) -> tuple[dict, WanSummary]:
    """The output dict (annotations in the input's order) from the finished cache, and the summary."""
    results = cache.results()
    missing = [c for c in range(len(plan.chunks)) if c not in results]
    if missing:
        raise WanError(f"{len(missing)} of {len(plan.chunks)} chunks are missing from {cache.directory} "
                       "(did a process fail?); run again to compute them")
    by_id = {row[0]: row for rows in results.values() for row in rows}
    sizes = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    op = PROMPT_KINDS[prompt]
    summary = WanSummary(images=len(data["images"]), annotations=len(data["annotations"]))
    annotations, ious = [], []
    for ann in data["annotations"]:
        out = dict(ann)
        row = by_id.get(ann["id"])
        if row is None:
            if ann.get("iscrowd", 0) and not include_crowd:
                summary.crowd_kept += 1
            else:
                summary.empty_input_kept += 1
            out.update(noise_op="none", noise_param=None, sam_prompt=None, sam_iou=None)
        else:
            _, counts, bbox, area, sam_prompt, iou = row
            out.update(segmentation={"size": list(sizes[ann["image_id"]]), "counts": counts}, bbox=bbox, area=area,
                       noise_op=op, noise_param=None, sam_prompt=sam_prompt, sam_iou=iou)
            summary.prompted += 1
            summary.empty_output += area == 0
            ious.append(iou)
        out.update(class_flipped=False, original_category_id=ann["category_id"])
        annotations.append(out)
    if ious:  # exact sum (order-free), rounded as the values are
        summary.mean_sam_iou = round(math.fsum(ious) / len(ious), SAM_IOU_DECIMALS)
    head = {key: value for key, value in data.items() if key != "annotations"}
    head["annotations"] = annotations
    return head, summary
