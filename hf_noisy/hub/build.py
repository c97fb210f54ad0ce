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

Memory: the build is a list of tasks, one per chunk of ``images_per_shard`` images of a split. A task reads
its images' annotations once (a split read from a file keeps them there: :class:`~hf_noisy.coco_stream.
AnnotationFile`, an index of a few bytes per annotation), derives every config's annotations for them (noise
is drawn per annotation, so a chunk noised alone gives the rows of the whole file) and writes that shard of
every config. Worker processes get only task numbers; what they share with this process is the images'
entries and that index. Peak memory therefore follows the number of images, not of annotations (a
:class:`Precomputed` file is still read whole, and ``quality`` scores the whole split in memory).

Before anything is written, every image file is checked against its entry: its pixel size must equal the
entry's ``width``/``height``, and (``verify_images``, the default) it must decode fully. A bad one stops the
build with one line naming the file and the reason. The output may not be, or hold, any input (image folders,
annotation files, precomputed files), even with ``overwrite`` (:func:`hf_noisy.fsutil.check_output`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, Sequence, Union

from .. import __version__
from ..coco import file_sha256, load_coco
from ..errors import HfNoisyError
from ..masks import segmentation_to_rle
from ..fsutil import atomic_directory, atomic_write_text, check_output, recover
from ..workers import worker_pool
from .card import BenchmarkInfo, render_card
from .schema import CategoryMap
from .shards import ShardStats, ShardTask, write_shard

if TYPE_CHECKING:
    from ..noise import NoiseSpec
    from ..noise.engine import InstanceNoiser, NoiseSummary
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
    categories = CategoryMap.of(splits["train"].header["categories"])
    if CategoryMap.of(splits["validation"].header["categories"]).ids != categories.ids:
        raise HfNoisyError(f"{info.title}: train and validation list different categories")

    train = splits["train"]
    makers = {name: _maker(name, rule, train) for name, rule in configs.items()}  # bad specs/files fail here
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        job = _Job(tmp, {split: _Split.of(source) for split, source in splits.items()}, makers,
                   tuple(categories.names), tuple(categories.ids), images, images_per_shard,
                   info.image_extras, info.object_extras)
        done = _run(job, num_proc, progress)
        entries = {}
        for name, rule in configs.items():
            maker = makers[name]
            entry = _describe(rule, maker.made(done))
            entry["has_images"] = job.with_images(name)
            entry["splits"] = {}
            for split in SPLITS:
                shards = [(task, result[name]) for task, result in done if task[0] == split]
                entry["splits"][split] = {
                    "num_rows": sum(r.stats.rows for _, r in shards),
                    "num_instances": sum(r.stats.instances for _, r in shards),
                    "num_bytes": sum(r.stats.arrow_bytes for _, r in shards),
                    "parquet_bytes": sum(job.path(name, *task).stat().st_size for task, _ in shards),
                    "files": [job.path(name, *task).relative_to(tmp).as_posix() for task, _ in shards],
                }
            entry["stats"] = _ShardCounts.total([result[name].counts for task, result in done if task[0] == "train"])
            if quality and not isinstance(rule, Clean):
                entry["quality"] = _quality(train.data, maker.annotations(train))
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


class _CleanMaker:
    """A :class:`Clean` config: the source's train annotations as they are."""

    derives = False

    def made(self, done: list) -> dict:
        return {}


@dataclass(frozen=True)
class _NoiseMaker:
    """A :class:`Noised` config: each chunk's annotations noised where the chunk is written."""

    name: str
    spec: "NoiseSpec"
    noiser: "InstanceNoiser"
    derives = True

    def derive(self, groups: list[list[dict]], heights_widths: list[tuple[int, int]],
               start: int) -> tuple[list[list[dict]], "NoiseSummary"]:
        from ..noise.annotation_ops import output_annotations
        from ..noise.engine import NoiseSummary

        items = [(ann, *size) for anns, size in zip(groups, heights_widths) for ann in anns]
        outputs = self.noiser.noise_many(items)
        summary = NoiseSummary.of([ann for ann, _, _ in items], outputs, self.spec)
        noisy, at = [], 0
        for anns in groups:  # dropped (None) and removed (``missing``) instances leave their image's row
            noisy.append(list(output_annotations(outputs[at:at + len(anns)])))
            at += len(anns)
        return noisy, summary

    def made(self, done: list) -> dict:
        from ..noise.engine import NoiseSummary

        summary = NoiseSummary()
        for task, results in done:
            if task[0] == "train":
                summary += results[self.name].summary
        return {"summary": summary.to_dict()}

    def annotations(self, train: "SourceSplit") -> list[dict]:
        from ..noise import apply_noise

        return apply_noise(train.data, self.spec, validate=False).data["annotations"]


@dataclass(frozen=True)
class _HeldMaker:
    """A config whose train annotations are made whole before any shard (a :class:`Precomputed` file, or a
    :class:`Noised` spec that may draw ``duplicate``, ``split`` or ``merge``: new ids and neighbours depend on
    the whole split), held here and served by train image row; ``record`` is what the metadata keeps of it."""

    list_: list[dict]
    groups: list[list[dict]]
    record: dict
    derives = True

    @classmethod
    def of(cls, annotations: list[dict], train: "SourceSplit", record: dict) -> "_HeldMaker":
        return cls(annotations, _by_image(train.images, annotations), record)

    def derive(self, groups: list[list[dict]], heights_widths: list, start: int) -> tuple[list[list[dict]], None]:
        return self.groups[start:start + len(groups)], None

    def made(self, done: list) -> dict:
        return self.record

    def annotations(self, train: "SourceSplit") -> list[dict]:
        return self.list_


def _maker(name: str, rule: ConfigRule, train: "SourceSplit"):
    """What makes the config's train annotations chunk by chunk; bad specs and files fail here, before writing."""
    if isinstance(rule, Clean):
        return _CleanMaker()
    if isinstance(rule, Noised) and rule.spec.structural:  # noised once, as `hf-noisy noise` does
        from ..noise import apply_noise

        result = apply_noise(train.data, rule.spec, validate=False)
        return _HeldMaker.of(result.data["annotations"], train, {"summary": result.summary.to_dict()})
    if isinstance(rule, Noised):
        from ..noise.engine import InstanceNoiser

        return _NoiseMaker(name, rule.spec, InstanceNoiser(rule.spec, train.header["categories"], allow_empty_masks=False))
    if isinstance(rule, Precomputed):
        annotations, record = _precomputed(name, Path(rule.path), train, rule.keep_ids)
        return _HeldMaker.of(annotations, train, record)
    raise HfNoisyError(f"config {name!r}: unknown rule {rule!r}")


def _precomputed(name: str, path: Path, train: "SourceSplit", keep_ids: bool = True) -> tuple[list[dict], dict]:
    data = load_coco(path, allow_empty_masks=True)
    if keep_ids and [c["id"] for c in data["categories"]] != [c["id"] for c in train.header["categories"]]:
        raise HfNoisyError(f"config {name!r}: {path} has other categories than the source's train split")
    known = {c["id"]: c["name"] for c in train.header["categories"]}
    strange = [c for c in data["categories"] if known.get(c["id"]) != c["name"]]
    if strange:
        raise HfNoisyError(f"config {name!r}: {path}: category {strange[0]['id']} ({strange[0]['name']!r}) is not a "
                           "category of the source's train split (same id and name)")
    sizes = {image["id"]: (image["height"], image["width"]) for image in train.images}
    theirs = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    wrong = [i for i, size in theirs.items() if i in sizes and size != sizes[i]]
    if wrong:
        raise HfNoisyError(f"config {name!r}: {path}: image {wrong[0]} has another size than in the source")
    missing = [i for i in sizes if i not in theirs]
    if missing:
        raise HfNoisyError(f"config {name!r}: {path} lacks {len(missing)} image(s) of the source's train split, "
                           f"e.g. image id {missing[0]}")
    clean = {ann["id"]: ann["image_id"] for ann in train.annotations}
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


@dataclass(frozen=True)
class _Split:
    """A source split as the job reads it: its images, their files and their annotations by image row."""

    images: list[dict]
    image_paths: tuple[Path, ...]
    annotations: Sequence[dict]  # an AnnotationFile (read by image row) or a list
    groups: list[list[dict]] | None  # a list's annotations grouped by image row

    @classmethod
    def of(cls, source: "SourceSplit") -> "_Split":
        listed = isinstance(source.annotations, list)
        return cls(source.images, source.image_paths, source.annotations,
                   _by_image(source.images, source.annotations) if listed else None)

    def by_image(self, start: int, stop: int) -> list[list[dict]]:
        if self.groups is not None:
            return self.groups[start:stop]
        return self.annotations.by_image(start, stop)


@dataclass(frozen=True)
class _ShardCounts:
    """A train shard's counts for the config statistics (:meth:`total` sums them into the metadata's)."""

    instances: int
    iou_sum: float
    ops: Counter
    class_flipped: int
    changed_emptied: int
    dropped: int

    @classmethod
    def of(cls, clean: list[list[dict]], derived: list[list[dict]], stats: ShardStats) -> "_ShardCounts":
        flat = [ann for anns in derived for ann in anns]
        return cls(stats.instances, stats.iou_sum, Counter(str(ann.get("noise_op", "none")) for ann in flat),
                   sum(bool(ann.get("class_flipped", False)) for ann in flat),
                   sum(float(ann["area"]) == 0 for ann in flat if ann.get("noise_op", "none") != "none"),
                   sum(map(len, clean)) - len(flat))

    @staticmethod
    def total(shards: list["_ShardCounts"]) -> dict:
        instances = sum(s.instances for s in shards)
        dropped = sum(s.dropped for s in shards)
        return {
            "instances": instances,
            "ops": dict(sorted(sum((s.ops for s in shards), Counter()).items())),
            "class_flipped": sum(s.class_flipped for s in shards),
            "emptied": sum(s.changed_emptied for s in shards) + dropped,
            "dropped": dropped,
            "mean_iou": sum(s.iou_sum for s in shards) / max(instances, 1),
        }


@dataclass(frozen=True)
class _ShardResult:
    """What writing one config's shard gave: its statistics, its counts (train) and its noise summary."""

    stats: ShardStats
    counts: "_ShardCounts | None"
    summary: "NoiseSummary | None"


@dataclass(frozen=True)
class _Job:
    """The whole build as tasks ``(split, shard index)``: each reads its chunk of images' annotations once
    and writes that shard of every config (what a worker process holds: the images and per-annotation
    index, never the annotations)."""

    tmp: Path
    splits: dict[str, _Split]
    makers: dict
    category_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    images: str
    per_shard: int
    image_extras: tuple[str, ...]
    object_extras: tuple[str, ...]

    def tasks(self) -> list[tuple[str, int]]:
        return [(split, k) for split in SPLITS for k in range(self.count(split))]

    def count(self, split: str) -> int:
        return max(1, -(-len(self.splits[split].images) // self.per_shard))

    def with_images(self, name: str) -> bool:
        return self.images == "embedded" or (self.images == "shared" and name == "clean")

    def path(self, name: str, split: str, k: int) -> Path:
        return self.tmp / "data" / name / f"{split}-{k:05d}-of-{self.count(split):05d}.parquet"

    def rows(self, task: tuple[str, int]) -> int:
        split, k = task
        return len(self.splits[split].images[k * self.per_shard:(k + 1) * self.per_shard])

    def run(self, task: tuple[str, int]) -> dict[str, _ShardResult]:
        """Write shard ``task`` of every config; a shard equal to one written already (the same clean rows)
        is copied."""
        split, k = task
        source = self.splits[split]
        start, stop = k * self.per_shard, min((k + 1) * self.per_shard, len(source.images))
        images = source.images[start:stop]
        clean = source.by_image(start, stop)
        known = {ann["id"]: (ann["segmentation"], segmentation_to_rle(ann["segmentation"], image["height"], image["width"]))
                 for image, anns in zip(images, clean) for ann in anns}  # each clean mask rasterised once
        index_of = None
        written: dict[bool, tuple[Path, ShardStats]] = {}
        results = {}
        for name, maker in self.makers.items():
            path, with_images = self.path(name, split, k), self.with_images(name)
            derives = split == "train" and maker.derives
            summary = None
            if derives:
                sizes = [(image["height"], image["width"]) for image in images]
                groups, summary = maker.derive(clean, sizes, start)
                if index_of is None:
                    index_of = {ann["id"]: ann for anns in clean for ann in anns}
            else:
                groups = clean
            if not derives and with_images in written:
                shutil.copyfile(written[with_images][0], path)
                stats = written[with_images][1]
            else:
                stats = write_shard(ShardTask(
                    path=path, images=images, annotations=groups, category_names=self.category_names,
                    category_ids=self.category_ids,
                    image_paths=source.image_paths[start:stop] if with_images else None,
                    clean=index_of if derives else None, image_extras=self.image_extras,
                    object_extras=self.object_extras, clean_rles=known))
                if not derives:
                    written[with_images] = path, stats
            counts = _ShardCounts.of(clean, groups, stats) if split == "train" else None
            results[name] = _ShardResult(stats, counts, summary)
        return results


# A worker's job, set once by the pool's initializer (inherited without copying under fork).
_WORKER: dict = {}


def _init_worker(job: _Job) -> None:
    import cv2

    cv2.setNumThreads(1)  # as in the parent (inherited under fork, set here under spawn)
    _WORKER["job"] = job


def _run_in_worker(task: tuple[str, int]) -> dict[str, _ShardResult]:
    return _WORKER["job"].run(task)


def _run(job: _Job, num_proc: int, progress: bool) -> list[tuple[tuple[str, int], dict[str, _ShardResult]]]:
    """Every task's results, in task order (tasks run in ``num_proc`` worker processes when there are several)."""
    from ..runtime import single_threaded_opencv

    tasks = job.tasks()
    for name in job.makers:
        (job.tmp / "data" / name).mkdir(parents=True, exist_ok=True)
    done = []
    with ExitStack() as stack:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            total = sum(map(job.rows, tasks)) * len(job.makers)
            bar = stack.enter_context(tqdm(total=total, desc="writing shards", unit="row", dynamic_ncols=True))
        stack.enter_context(single_threaded_opencv())  # workers fork inside and inherit it
        if num_proc > 1 and len(tasks) > 1:
            pool = worker_pool(min(num_proc, len(tasks)), _init_worker, (job,))
            stack.callback(pool.terminate)
            results = pool.imap(_run_in_worker, tasks)
        else:
            results = map(job.run, tasks)
        for task, result in zip(tasks, results):
            done.append((task, result))
            if bar is not None:
                bar.update(job.rows(task) * len(job.makers))
    return done


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
            split: {**source.provenance, "num_images": len(source.images),
                    "num_annotations": len(source.annotations)}
            for split, source in splits.items()
        },
        "categories": list(categories.categories),
        "row_extras": {"image": list(info.image_extras), "object": list(info.object_extras)},
        "configs": configs,
    }
