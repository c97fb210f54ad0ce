"""Build the COCO-N dataset repository folder: parquet shards per config and split, card, metadata.

Layout of the folder (ready for ``hf-noisy push`` / ``load_dataset(folder, config)``)::

    README.md                          dataset card; YAML ``configs:`` lists each config's data files
    hf_noisy_benchmark.json            version, spec hashes, input hashes, categories, statistics
    data/<config>/<split>-00000-of-0000N.parquet

Configs: ``clean`` and the noise levels (``easy``, ``medium``, ``hard``: the paper's Table 7). Splits:
``train`` (noisy in a noisy config) and ``validation`` (always the clean annotations: the paper evaluates on
clean labels). Image storage (``images``):

* ``"shared"`` (default): the image bytes are stored once, in the ``clean`` config; the noisy configs hold
  annotation rows only, in the same row order and sharding, and :func:`hf_noisy.hub.load_coco_n` joins the
  ``image`` column back. Parquet-only configs cannot reference another config's column, so a plain
  ``load_dataset(repo, "hard")`` gives rows without ``image`` in this mode (the card says so).
* ``"embedded"``: every config carries the image bytes (self-contained configs; about ``len(levels)`` times
  the disk; on the Hub, Xet storage deduplicates the repeated bytes).

The output depends only on the inputs and arguments (not on ``num_proc``): rows follow the annotation
file's image order, and shards are written by a pure function of their content.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from .. import __version__
from ..coco import file_sha256, load_coco
from ..errors import HfNoisyError
from ..fsutil import atomic_directory, atomic_write_text
from .card import render_card
from .schema import CategoryMap
from .shards import ShardStats, ShardTask, write_shard

__all__ = ["BENCHMARK_VERSION", "LEVELS", "METADATA_FILE", "BuildResult", "build_coco_n"]

BENCHMARK_VERSION = "v1.0"
LEVELS = ("clean", "easy", "medium", "hard")
METADATA_FILE = "hf_noisy_benchmark.json"
#: split -> (annotation file, image folder) under the COCO root
COCO_SPLITS = {
    "train": ("annotations/instances_train2017.json", "train2017"),
    "validation": ("annotations/instances_val2017.json", "val2017"),
}


@dataclass(frozen=True)
class BuildResult:
    """The built folder, its metadata (the content of ``hf_noisy_benchmark.json``) and the wall time."""

    path: Path
    metadata: dict
    seconds: float

    def summary(self) -> str:
        """Per-level statistics as a small table (train split)."""
        lines = [f"{'config':<8}{'instances':>10}{'flipped':>9}{'mean IoU':>10}  ops"]
        for name, config in self.metadata["configs"].items():
            stats = config["stats"]
            ops = ", ".join(f"{op} {n}" for op, n in stats["ops"].items())
            lines.append(f"{name:<8}{stats['instances']:>10}{stats['class_flipped']:>9}{stats['mean_iou']:>10.3f}  {ops}")
        return "\n".join(lines)


def _load_split(root: Path, split: str, max_images: int | None) -> tuple[dict, str]:
    annotation_file, image_dir = COCO_SPLITS[split]
    path = root / annotation_file
    data = load_coco(path)
    if max_images is not None:
        data = dict(data, images=data["images"][:max_images])
        kept = {image["id"] for image in data["images"]}
        data["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in kept]
    missing = [image["file_name"] for image in data["images"] if not (root / image_dir / image["file_name"]).is_file()]
    if missing:
        raise HfNoisyError(f"{root / image_dir}: {len(missing)} image file(s) listed in {path} are missing, e.g. {missing[0]}")
    return data, file_sha256(path)


def _by_image(images: list[dict], annotations: list[dict]) -> list[list[dict]]:
    groups: dict[int, list[dict]] = {image["id"]: [] for image in images}
    for ann in annotations:
        groups[ann["image_id"]].append(ann)
    return [groups[image["id"]] for image in images]


def _specs(levels: Sequence[str], seed: int) -> dict:
    from ..noise import PRESETS, load_spec

    unknown = [level for level in levels if level != "clean" and level not in PRESETS]
    if unknown or not levels or len(set(levels)) != len(levels):
        raise HfNoisyError(f"levels must be distinct names among {', '.join(LEVELS)}; got {', '.join(levels) or 'none'}")
    return {level: None if level == "clean" else load_spec(level, seed=seed) for level in levels}


def build_coco_n(
    coco_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = LEVELS,
    seed: int = 1,
    images: Literal["shared", "embedded"] = "shared",
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Build the COCO-N dataset folder at ``out_dir`` from a COCO root (see the module docstring).

    Args:
        coco_root: folder with ``annotations/instances_{train,val}2017.json``, ``train2017/``, ``val2017/``.
        out_dir: the folder to create; it appears only when complete (built in a hidden sibling).
        levels: configs to build; ``"clean"`` is required with ``images="shared"``.
        seed: noise seed (``1`` with the three presets is benchmark ``v1.0``).
        images: ``"shared"`` or ``"embedded"`` image storage.
        num_proc: worker processes for noising and for writing shards; the output is identical for any value.
        max_images: keep only the first N images of each split (quick builds, tests, demos).
        images_per_shard: rows per parquet file.
        overwrite: replace an existing ``out_dir`` (only once the new one is complete).
        progress: tqdm progress bars on stderr.
    """
    from ..noise import apply_noise

    start = time.perf_counter()
    specs = _specs(levels, seed)
    if images not in ("shared", "embedded"):
        raise HfNoisyError(f"images must be 'shared' or 'embedded', got {images!r}")
    if images == "shared" and "clean" not in specs:
        raise HfNoisyError("images='shared' stores the images in the 'clean' config: include 'clean' in levels")
    if num_proc < 1 or images_per_shard < 1 or (max_images is not None and max_images < 1):
        raise HfNoisyError("num_proc, images_per_shard and max_images must be >= 1")
    out_dir, root = Path(out_dir), Path(coco_root)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass --overwrite to replace it)")

    sources = {split: _load_split(root, split, max_images) for split in COCO_SPLITS}
    categories = CategoryMap.of(sources["train"][0]["categories"])
    if CategoryMap.of(sources["validation"][0]["categories"]) != categories:
        raise HfNoisyError("train and val annotation files have different categories")

    noisy = {
        level: apply_noise(sources["train"][0], spec, num_proc=num_proc, progress=progress,
                           input_sha256=sources["train"][1], validate=False)
        for level, spec in specs.items() if spec is not None
    }
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        tasks, where = _tasks(tmp, root, sources, noisy, specs, categories, images, images_per_shard)
        stats = _write(tasks, num_proc, progress)
        configs = {}
        for level, spec in specs.items():
            entry = {
                "spec": None if spec is None else spec.to_dict(),
                "spec_sha256": None if spec is None else spec.sha256,
                "has_images": images == "embedded" or level == "clean",
                "splits": {},
            }
            for split in COCO_SPLITS:
                shard_stats = [stats[i] for i in where[level, split]]
                entry["splits"][split] = {
                    "num_rows": sum(s.rows for s in shard_stats),
                    "num_instances": sum(s.instances for s in shard_stats),
                    "files": [tasks[i].path.relative_to(tmp).as_posix() for i in where[level, split]],
                }
            entry["stats"] = _level_stats(noisy.get(level), [stats[i] for i in where[level, "train"]])
            configs[level] = entry
        metadata = _metadata(sources, categories, specs, seed, images, max_images, configs)
        atomic_write_text(tmp / METADATA_FILE, json.dumps(metadata, indent=2) + "\n")
        atomic_write_text(tmp / "README.md", render_card(metadata))
        _readable(tmp)
    return BuildResult(out_dir, metadata, time.perf_counter() - start)


def _readable(folder: Path) -> None:
    """Ordinary permissions (the temporary folder and files are created private): 0o777/0o666 minus umask."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _tasks(tmp, root, sources, noisy, specs, categories, images, per_shard) -> tuple[list[ShardTask], dict]:
    tasks: list[ShardTask] = []
    where: dict[tuple[str, str], list[int]] = {}
    for level in specs:
        for split, (data, _) in sources.items():
            noisy_split = split == "train" and level in noisy
            annotations = noisy[level].data["annotations"] if noisy_split else data["annotations"]
            clean = {ann["id"]: ann for ann in data["annotations"]} if noisy_split else None
            groups = _by_image(data["images"], annotations)
            with_images = images == "embedded" or level == "clean"
            count = max(1, -(-len(data["images"]) // per_shard))
            (tmp / "data" / level).mkdir(parents=True, exist_ok=True)
            where[level, split] = []
            for k in range(count):
                chunk = slice(k * per_shard, (k + 1) * per_shard)
                where[level, split].append(len(tasks))
                tasks.append(ShardTask(
                    path=tmp / "data" / level / f"{split}-{k:05d}-of-{count:05d}.parquet",
                    images=data["images"][chunk],
                    annotations=groups[chunk],
                    category_names=tuple(categories.names),
                    category_ids=tuple(categories.ids),
                    image_dir=root / COCO_SPLITS[split][1] if with_images else None,
                    clean=clean,
                ))
    return tasks, where


def _write(tasks: list[ShardTask], num_proc: int, progress: bool) -> list[ShardStats]:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(t.images) for t in tasks), desc="writing shards", unit="row", dynamic_ncols=True)
    pool = None
    if num_proc > 1 and len(tasks) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(min(num_proc, len(tasks)))
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


def _level_stats(result, train_stats: list[ShardStats]) -> dict:
    instances = sum(s.instances for s in train_stats)
    summary = result.summary.to_dict() if result is not None else {"ops": {"none": instances}, "class_flipped": 0, "emptied": 0, "dropped": 0}
    return {
        "instances": instances,
        "ops": summary["ops"],
        "class_flipped": summary["class_flipped"],
        "emptied": summary["emptied"],
        "dropped": summary["dropped"],
        "mean_iou": sum(s.iou_sum for s in train_stats) / max(instances, 1),
    }


def _metadata(sources, categories, specs, seed, images, max_images, configs) -> dict:
    import datasets
    import pyarrow

    from ..noise import PRESETS

    official = seed == 1 and max_images is None and all(
        spec is None or spec == PRESETS[level] for level, spec in specs.items()
    )
    return {
        "benchmark": "COCO-N",
        "benchmark_version": BENCHMARK_VERSION if official else "custom",
        "seed": seed,
        "images": images,
        "max_images": max_images,
        "hf_noisy_version": __version__,
        "libraries": {"datasets": datasets.__version__, "pyarrow": pyarrow.__version__},
        "source": {
            split: {
                "annotations": COCO_SPLITS[split][0],
                "sha256": sha,
                "image_dir": COCO_SPLITS[split][1],
                "num_images": len(data["images"]),
                "num_annotations": len(data["annotations"]),
            }
            for split, (data, sha) in sources.items()
        },
        "categories": list(categories.categories),
        "configs": configs,
    }
