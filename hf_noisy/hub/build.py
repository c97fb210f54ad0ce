"""The one dataset builder: a benchmark's source splits + its configs -> a dataset repository folder.

A benchmark is a *source* (its splits as :class:`~hf_noisy.sources.SourceSplit`: COCO dicts plus the image
file of each image) and a set of *configs*, each a rule for how its ``train`` annotations are made
(:class:`Clean`: as is; :class:`Noised`: a noise spec applied by the engine; :class:`Precomputed`: a COCO
file made elsewhere, such as COCO-WAN's SAM masks). ``validation`` is the clean source split in every config:
the paper evaluates on clean labels. The benchmark definitions themselves (COCO-N, Cityscapes-N, LVIS-N,
COCO-WAN) are a few lines each in :mod:`hf_noisy.hub.benchmarks`.

Layout of the folder (ready for ``hf-noisy push`` / ``load_dataset(folder, config)``)::

    README.md                          dataset card; YAML ``configs:`` lists each config's data files
    hf_noisy_benchmark.json            version, rules and hashes, input hashes, categories, statistics
    data/<config>/<split>-00000-of-0000N.parquet

Image storage (``images``):

* ``"embedded"`` (default): every config carries the image bytes, so ``load_dataset(repo, "hard")`` is
  complete. Shards use content-defined chunking and every config lays the ``image`` column out identically
  (same rows, row groups and pages), so the Hub's Xet storage keeps the repeated bytes once
  (``benchmarks/bench_build.py`` measures it). On local disk it costs one copy of the images per config.
* ``"shared"``: the image bytes are stored once, in the ``clean`` config; the other configs hold annotation
  rows only, in the same row order and sharding, and :func:`hf_noisy.hub.load_coco_n` joins ``image`` back
  (for disk-limited local builds).
* ``"none"`` (annotation-only): no config holds image bytes, only ``file_name``; users join their own copy of
  the source's images (``load_coco_n(..., image_root=...)``). For sources whose terms forbid redistributing
  the images (Cityscapes), this is the mode a folder can be published in without extra rights.

The output depends only on the inputs and arguments (not on ``num_proc``): rows follow the annotation file's
image order, and shards are written by a pure function of their content. The folder appears only when
complete (it is built in a hidden sibling and renamed).

Before anything is written, every image file is checked against its entry: its pixel size must equal the
entry's ``width``/``height``, and (``verify_images``, the default) it must decode fully. A bad one stops the
build with one line naming the file and the reason. The output may not be, or hold, any input (image folders,
annotation files, precomputed files), even with ``overwrite`` (:func:`hf_noisy.fsutil.check_output`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, Union

from .. import __version__
from ..coco import file_sha256, load_coco
from ..errors import HfNoisyError
from ..fsutil import atomic_directory, atomic_write_text, check_output, recover
from ..workers import worker_pool
from .card import BenchmarkInfo, render_card
from .schema import CategoryMap
from .shards import ShardStats, ShardTask, write_shard

if TYPE_CHECKING:
    from ..noise import NoiseSpec
    from ..sources import SourceSplit

__all__ = ["METADATA_FILE", "SPLITS", "BuildResult", "Clean", "ConfigRule", "Noised", "Precomputed", "build_dataset"]

METADATA_FILE = "hf_noisy_benchmark.json"
#: the splits of every benchmark: ``train`` (derived per config) and ``validation`` (always clean)
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Clean:
    """The source's train annotations as they are."""


@dataclass(frozen=True)
class Noised:
    """The train annotations noised by the engine with ``spec`` (draws from (seed, annotation id))."""

    spec: "NoiseSpec"


@dataclass(frozen=True)
class Precomputed:
    """A COCO file of train annotations made elsewhere (e.g. by ``hf-noisy wan``) over the source's train
    images. It must keep the clean annotation ids (they pair each derived instance with its clean one) and use
    the source's categories; images missing from the source split (e.g. in a subset build) are left out.
    ``keep_ids=False`` wraps a file made by others (a released noisy set, a re-annotation): its ids need not be
    clean ids and it may list a subset of the source's categories (same ids and names)."""

    path: Path
    keep_ids: bool = True


ConfigRule = Union[Clean, Noised, Precomputed]


@dataclass(frozen=True)
class BuildResult:
    """The built folder, its metadata (the content of ``hf_noisy_benchmark.json``) and the wall time."""

    path: Path
    metadata: dict
    seconds: float

    def summary(self) -> str:
        """Per-config statistics as a small table (train split)."""
        width = max(8, *(len(name) + 1 for name in self.metadata["configs"]))
        lines = [f"{'config':<{width}}{'instances':>10}{'flipped':>9}{'mean IoU':>10}  ops"]
        for name, config in self.metadata["configs"].items():
            stats = config["stats"]
            ops = ", ".join(f"{op} {n}" for op, n in stats["ops"].items())
            lines.append(f"{name:<{width}}{stats['instances']:>10}{stats['class_flipped']:>9}{stats['mean_iou']:>10.3f}"
                         f"  {ops}")
        return "\n".join(lines)


def build_dataset(
    info: BenchmarkInfo,
    splits: Mapping[str, "SourceSplit"],
    configs: Mapping[str, ConfigRule],
    out_dir: str | os.PathLike,
    *,
    images: Literal["embedded", "shared", "none"] = "embedded",
    num_proc: int = 1,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    version: str = "custom",
    quality: bool = False,
    extra_metadata: Mapping | None = None,
    verify_images: bool = True,
) -> BuildResult:
    """Build a benchmark's dataset folder at ``out_dir`` (see the module docstring).

    Args:
        info: the benchmark's name, card texts, licence and citation (:class:`~hf_noisy.hub.card.BenchmarkInfo`).
        splits: ``{"train": ..., "validation": ...}`` source splits (validated COCO dicts + image files).
        configs: config name -> rule for its train annotations, in card order (the first is the default).
        out_dir: the folder to create; it appears only when complete.
        images: ``"embedded"`` (self-contained configs), ``"shared"`` (images once, in ``clean``) or ``"none"``
            (annotation-only: no image bytes anywhere).
        num_proc: worker processes for noising and for writing shards; the output is identical for any value.
        images_per_shard: rows per parquet file.
        overwrite: replace an existing ``out_dir`` (only once the new one is complete).
        progress: tqdm progress bars on stderr.
        version: the benchmark version recorded in the metadata and card (``"custom"`` unless official).
        quality: score each derived config's train annotations against the clean ones (mask AP, Boundary AP,
            mean IoUs: :func:`hf_noisy.metrics.score_quality`) and put the numbers in the metadata and card.
        extra_metadata: more JSON-serialisable entries for ``hf_noisy_benchmark.json``.
        verify_images: decode every image fully before anything is written (in ``num_proc`` worker
            processes), so a truncated or corrupt file fails the build naming it. Each image's pixel size is
            checked against its entry's ``width``/``height`` in any case (a header read).

    Raises:
        HfNoisyError: bad arguments or input (nothing is written), e.g. an image that does not decode or whose
            size differs from its annotation entry, or an ``out_dir`` that is or holds an input.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is false.
    """
    start = time.perf_counter()
    _check_arguments(splits, configs, images, num_proc, images_per_shard)
    inputs = {path.parent for split in splits.values() for path in split.image_paths}
    inputs |= {Path(path) for split in splits.values() for path in split.inputs}
    inputs |= {Path(rule.path) for rule in configs.values() if isinstance(rule, Precomputed)}
    recover(out_dir)  # a swap killed half-way is completed first, so that `overwrite` sees what is there
    out_dir = check_output(out_dir, sorted(inputs), overwrite=overwrite)
    for split in splits.values():
        split.check_images(decode=verify_images, num_proc=num_proc)
    categories = CategoryMap.of(splits["train"].data["categories"])
    if CategoryMap.of(splits["validation"].data["categories"]).ids != categories.ids:
        raise HfNoisyError(f"{info.title}: train and validation list different categories")

    train = splits["train"]
    derived = {name: _derive(name, rule, train, num_proc, progress) for name, rule in configs.items()}
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        clean_rules = {name for name, rule in configs.items() if isinstance(rule, Clean)}
        tasks, where = _tasks(tmp, info, splits, derived, clean_rules, categories, images, images_per_shard)
        stats = _write(tasks, num_proc, progress)
        entries = {}
        for name, rule in configs.items():
            entry = _describe(rule, derived[name][1])
            entry["has_images"] = images == "embedded" or (images == "shared" and name == "clean")
            entry["splits"] = {
                split: {
                    "num_rows": sum(stats[i].rows for i in where[name, split]),
                    "num_instances": sum(stats[i].instances for i in where[name, split]),
                    "num_bytes": sum(stats[i].arrow_bytes for i in where[name, split]),
                    "parquet_bytes": sum(tasks[i].path.stat().st_size for i in where[name, split]),
                    "files": [tasks[i].path.relative_to(tmp).as_posix() for i in where[name, split]],
                }
                for split in SPLITS
            }
            annotations = derived[name][0]
            entry["stats"] = _stats(train.data["annotations"], annotations, [stats[i] for i in where[name, "train"]])
            if quality and not isinstance(rule, Clean):
                entry["quality"] = _quality(train.data, annotations)
            entries[name] = entry
        metadata = _metadata(info, splits, categories, images, version, entries, extra_metadata)
        atomic_write_text(tmp / METADATA_FILE, json.dumps(metadata, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", render_card(metadata, info))
    return BuildResult(out_dir, metadata, time.perf_counter() - start)


def _check_arguments(splits, configs, images, num_proc, images_per_shard) -> None:
    if set(splits) != set(SPLITS):
        raise HfNoisyError(f"a benchmark needs the splits {', '.join(SPLITS)}; got {', '.join(splits) or 'none'}")
    if not configs:
        raise HfNoisyError("no configs to build")
    if images not in ("shared", "embedded", "none"):
        raise HfNoisyError(f"images must be 'embedded', 'shared' or 'none', got {images!r}")
    if images == "shared" and not isinstance(configs.get("clean"), Clean):
        raise HfNoisyError("images='shared' stores the images in the 'clean' config: include 'clean' in the configs")
    if num_proc < 1 or images_per_shard < 1:
        raise HfNoisyError("num_proc and images_per_shard must be >= 1")


def _derive(name: str, rule: ConfigRule, train: "SourceSplit", num_proc: int, progress: bool) -> tuple[list[dict], dict]:
    """The config's train annotations and what made them (for the metadata)."""
    if isinstance(rule, Clean):
        return train.data["annotations"], {}
    if isinstance(rule, Noised):
        from ..noise import apply_noise

        result = apply_noise(train.data, rule.spec, num_proc=num_proc, progress=progress,
                             input_sha256=train.provenance.get("sha256"), validate=False)
        return result.data["annotations"], {"summary": result.summary.to_dict()}
    if isinstance(rule, Precomputed):
        return _precomputed(name, Path(rule.path), train, rule.keep_ids)
    raise HfNoisyError(f"config {name!r}: unknown rule {rule!r}")


def _precomputed(name: str, path: Path, train: "SourceSplit", keep_ids: bool = True) -> tuple[list[dict], dict]:
    data = load_coco(path, allow_empty_masks=True)
    if keep_ids and [c["id"] for c in data["categories"]] != [c["id"] for c in train.data["categories"]]:
        raise HfNoisyError(f"config {name!r}: {path} has other categories than the source's train split")
    known = {c["id"]: c["name"] for c in train.data["categories"]}
    strange = [c for c in data["categories"] if known.get(c["id"]) != c["name"]]
    if strange:
        raise HfNoisyError(f"config {name!r}: {path}: category {strange[0]['id']} ({strange[0]['name']!r}) is not a "
                           "category of the source's train split (same id and name)")
    sizes = {image["id"]: (image["height"], image["width"]) for image in train.data["images"]}
    theirs = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    wrong = [i for i, size in theirs.items() if i in sizes and size != sizes[i]]
    if wrong:
        raise HfNoisyError(f"config {name!r}: {path}: image {wrong[0]} has another size than in the source")
    missing = [i for i in sizes if i not in theirs]
    if missing:
        raise HfNoisyError(f"config {name!r}: {path} lacks {len(missing)} image(s) of the source's train split, "
                           f"e.g. image id {missing[0]}")
    clean = {ann["id"]: ann["image_id"] for ann in train.data["annotations"]}
    annotations = [ann for ann in data["annotations"] if ann["image_id"] in sizes]
    strangers = [ann["id"] for ann in annotations if keep_ids and clean.get(ann["id"]) != ann["image_id"]]
    if strangers:
        raise HfNoisyError(f"config {name!r}: {path}: annotation {strangers[0]} is not a clean annotation of the same "
                           f"image; precomputed annotations must keep the clean ids")
    made_by = data.get("info", {}).get("hf_noisy") if isinstance(data.get("info"), dict) else None
    return annotations, {"file": {"name": path.name, "sha256": file_sha256(path), "made_by": made_by}}


def _describe(rule: ConfigRule, made: dict) -> dict:
    if isinstance(rule, Clean):
        return {"rule": "clean", "spec": None, "spec_sha256": None}
    if isinstance(rule, Noised):
        return {"rule": "noise", "spec": rule.spec.to_dict(), "spec_sha256": rule.spec.sha256, **made}
    return {"rule": "precomputed", "spec": None, "spec_sha256": None, **made}


def _by_image(images: list[dict], annotations: list[dict]) -> list[list[dict]]:
    groups: dict[int, list[dict]] = {image["id"]: [] for image in images}
    for ann in annotations:
        groups[ann["image_id"]].append(ann)
    return [groups[image["id"]] for image in images]


def _tasks(tmp, info, splits, derived, clean_rules, categories, images, per_shard) -> tuple[list[ShardTask], dict]:
    tasks: list[ShardTask] = []
    where: dict[tuple[str, str], list[int]] = {}
    for name in derived:
        for split in SPLITS:
            source = splits[split]
            is_derived = split == "train" and name not in clean_rules
            annotations = derived[name][0] if split == "train" else source.data["annotations"]
            clean = {ann["id"]: ann for ann in source.data["annotations"]} if is_derived else None
            groups = _by_image(source.data["images"], annotations)
            with_images = images == "embedded" or (images == "shared" and name == "clean")
            count = max(1, -(-len(source.data["images"]) // per_shard))
            (tmp / "data" / name).mkdir(parents=True, exist_ok=True)
            where[name, split] = []
            for k in range(count):
                chunk = slice(k * per_shard, (k + 1) * per_shard)
                where[name, split].append(len(tasks))
                tasks.append(ShardTask(
                    path=tmp / "data" / name / f"{split}-{k:05d}-of-{count:05d}.parquet",
                    images=source.data["images"][chunk],
                    annotations=groups[chunk],
                    category_names=tuple(categories.names),
                    category_ids=tuple(categories.ids),
                    image_paths=source.image_paths[chunk] if with_images else None,
                    clean=clean,
                    image_extras=info.image_extras,
                    object_extras=info.object_extras,
                ))
    return tasks, where


def _write(tasks: list[ShardTask], num_proc: int, progress: bool) -> list[ShardStats]:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(t.images) for t in tasks), desc="writing shards", unit="row", dynamic_ncols=True)
    pool = None
    if num_proc > 1 and len(tasks) > 1:
        pool = worker_pool(min(num_proc, len(tasks)))
        results = pool.imap(write_shard, tasks)
    else:
        results = map(write_shard, tasks)
    out = []
    try:
        for stats in results:
            out.append(stats)
            if bar is not None:
                bar.update(stats.rows)
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    return out


def _stats(clean: list[dict], derived: list[dict], train_stats: list[ShardStats]) -> dict:
    """Train-split statistics, counted on the annotations themselves (the same for every kind of rule)."""
    instances = sum(s.instances for s in train_stats)
    changed = [ann for ann in derived if ann.get("noise_op", "none") != "none"]
    dropped = len(clean) - len(derived)
    return {
        "instances": instances,
        "ops": dict(sorted(Counter(str(ann.get("noise_op", "none")) for ann in derived).items())),
        "class_flipped": sum(bool(ann.get("class_flipped", False)) for ann in derived),
        "emptied": sum(float(ann["area"]) == 0 for ann in changed) + dropped,
        "dropped": dropped,
        "mean_iou": sum(s.iou_sum for s in train_stats) / max(instances, 1),
    }


def _quality(clean: dict, annotations: list[dict]) -> dict:
    from ..metrics import score_quality

    report = score_quality(clean, dict(clean, annotations=annotations))
    return {name: {"mask_AP": g.mask_AP, "boundary_AP": g.boundary_AP, "mean_mask_iou": g.mean_mask_iou,
                   "mean_boundary_iou": g.mean_boundary_iou, "annotations": g.annotations}
            for name, g in report.groups.items()}


def _metadata(info, splits, categories, images, version, configs, extra) -> dict:
    import datasets
    import pyarrow

    return {
        "benchmark": info.title,
        "benchmark_id": info.name,
        "benchmark_version": version,
        "images": images,
        "images_redistributable": info.images_redistributable,
        "hf_noisy_version": __version__,
        "libraries": {"datasets": datasets.__version__, "pyarrow": pyarrow.__version__},
        **dict(extra or {}),
        "source": {
            split: {**source.provenance, "num_images": len(source.data["images"]),
                    "num_annotations": len(source.data["annotations"])}
            for split, source in splits.items()
        },
        "categories": list(categories.categories),
        "row_extras": {"image": list(info.image_extras), "object": list(info.object_extras)},
        "configs": configs,
    }
