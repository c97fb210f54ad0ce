"""The published benchmarks, each a source plus configs for the one builder (:func:`~hf_noisy.hub.build.build_dataset`).

* **COCO-N**: COCO 2017 with the paper's three noise levels (Table 7) on train.
* **Cityscapes-N**: Cityscapes fine instances (8 classes, supercategories human / vehicle) with the same levels.
* **LVIS-N**: LVIS (v1, or v0.5) with the same levels; symmetric class noise over LVIS's classes.
* **COCO-WAN**: COCO 2017 train masks re-made by SAM from weak prompts (``hf-noisy wan``): box (easy),
  box-centre point (medium), point + 40% symmetric class noise (hard).

Benchmark version ``v1.0`` = the paper's levels (``PRESETS``) with seed 1 on the full source; anything else
(another seed, a subset, custom specs) is recorded as ``custom``.

Image storage follows each source's terms by default (:data:`DEFAULT_IMAGES`): COCO's and LVIS's images come
from Flickr under their owners' Creative Commons licences (named per image by the ``license`` field of the COCO files; the rows do not carry it), so
COCO-N, LVIS-N and COCO-WAN embed them; Cityscapes' terms forbid redistribution, so Cityscapes-N is built
annotation-only (``images="none"``) unless asked for ``"embedded"`` explicitly, and ``hf-noisy push`` refuses an
embedded Cityscapes-N folder without ``--i-have-redistribution-rights``.
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

from ..errors import HfNoisyError
from .build import BuildResult, Clean, ConfigRule, Noised, Precomputed, build_dataset
from .card import BenchmarkInfo

__all__ = [
    "BENCHMARKS", "BENCHMARK_VERSION", "DEFAULT_IMAGES", "LEVELS", "benchmark_info",
    "build_coco_n", "build_cityscapes_n", "build_lvis_n", "build_coco_wan",
]

BENCHMARK_VERSION = "v1.0"
#: the benchmark ids, as the CLI and the Hub repos name them
BENCHMARKS = ("coco-n", "cityscapes-n", "lvis-n", "coco-wan")
#: the configs of every benchmark, in card order (the first is the default config)
LEVELS = ("clean", "easy", "medium", "hard")
#: benchmark -> its default image storage: embedded where the source's terms allow redistribution
DEFAULT_IMAGES: dict[str, Literal["embedded", "shared", "none"]] = {
    "coco-n": "embedded", "cityscapes-n": "none", "lvis-n": "embedded", "coco-wan": "embedded",
}

_PAPER = "Grad et al. (2024), *Benchmarking Label Noise in Instance Segmentation: Spatial Noise Matters*"


def benchmark_info(name: str) -> BenchmarkInfo:
    """The card texts of a benchmark by id (one of :data:`BENCHMARKS`)."""
    if name in ("coco-n", "coco-wan"):
        from ..sources.coco import COCO_CITATION, COCO_LICENSE

        common = dict(source_name="COCO 2017", source_url="https://cocodataset.org", license_tag="cc-by-4.0",
                      license_text=COCO_LICENSE, source_citation=COCO_CITATION, tags=("coco",))
        if name == "coco-n":
            return BenchmarkInfo(
                name="coco-n", title="COCO-N", pretty_name="COCO-N: COCO 2017 with benchmark label noise",
                about=f"COCO-N reproduces the noisy training sets of {_PAPER}: class noise and spatial noise "
                "(scale, localization, approximation) at the levels of the paper's Table 7.", **common)
        return BenchmarkInfo(
            name="coco-wan", title="COCO-WAN",
            pretty_name="COCO-WAN: COCO 2017 with weak-annotation noise (SAM masks from weak prompts)",
            about=f"COCO-WAN (section 3.4 of {_PAPER}) simulates semi-automatic annotation: every train mask is "
            "re-made by SAM from a weak prompt derived from the clean annotation.",
            object_extras=("sam_prompt", "sam_iou"),
            config_text={"easy": "masks re-made by SAM from each object's box",
                         "medium": "masks re-made by SAM from one positive point at each box's centre",
                         "hard": "the medium masks plus 40% symmetric class noise"},
            **common)
    if name == "lvis-n":
        from ..sources.lvis import LVIS_CITATION, LVIS_LICENSE

        return BenchmarkInfo(
            name="lvis-n", title="LVIS-N", pretty_name="LVIS-N: LVIS with benchmark label noise",
            about=f"LVIS-N applies the noise levels of {_PAPER} (Table 7; LVIS results in Table 6) to LVIS train. "
            "Class noise is symmetric over LVIS's categories (LVIS has no supercategories). Evaluate with LVIS's "
            "federated rules (`hf-noisy evaluate` detects an LVIS ground truth).",
            source_name="LVIS", source_url="https://www.lvisdataset.org", license_tag="cc-by-4.0",
            license_text=LVIS_LICENSE, source_citation=LVIS_CITATION, tags=("lvis", "coco"),
            image_extras=("neg_category_ids", "not_exhaustive_category_ids"))
    if name == "cityscapes-n":
        from ..sources.cityscapes import CITYSCAPES_CITATION, CITYSCAPES_LICENSE

        return BenchmarkInfo(
            name="cityscapes-n", title="Cityscapes-N",
            pretty_name="Cityscapes-N: Cityscapes instances with benchmark label noise",
            about=f"Cityscapes-N applies the noise levels of {_PAPER} (Table 7) to the 8 instance classes of "
            "Cityscapes' fine train annotations (asymmetric noise stays within human / vehicle).",
            source_name="Cityscapes", source_url="https://www.cityscapes-dataset.com", license_tag="other",
            license_text=CITYSCAPES_LICENSE, source_citation=CITYSCAPES_CITATION, tags=("cityscapes",),
            images_redistributable=False)
    raise HfNoisyError(f"unknown benchmark {name!r}")


def _noise_configs(levels: Sequence[str], seed: int) -> tuple[dict[str, ConfigRule], bool]:
    """Config rules for ``levels`` (``clean`` + preset names) and whether they are the paper's presets."""
    from ..noise import PRESETS, load_spec

    unknown = [level for level in levels if level != "clean" and level not in PRESETS]
    if unknown or not levels or len(set(levels)) != len(levels):
        raise HfNoisyError(f"levels must be distinct names among {', '.join(LEVELS)}; got {', '.join(levels) or 'none'}")
    rules: dict[str, ConfigRule] = {level: Clean() if level == "clean" else Noised(load_spec(level, seed=seed))
                                    for level in levels}
    return rules, seed == 1


def _noise_benchmark(name: str, splits: dict, out_dir, *, levels, seed, max_images, **kwargs) -> BuildResult:
    if max_images is not None and max_images < 1:
        raise HfNoisyError("max_images must be >= 1")
    configs, official = _noise_configs(levels, seed)
    splits = {split: source.head(max_images) for split, source in splits.items()}
    version = BENCHMARK_VERSION if official and max_images is None else "custom"
    return build_dataset(benchmark_info(name), splits, configs, out_dir, version=version,
                         extra_metadata={"seed": seed, "max_images": max_images}, **kwargs)


def build_coco_n(
    coco_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = LEVELS,
    seed: int = 1,
    images: Literal["embedded", "shared", "none"] = "embedded",
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    verify_images: bool = True,
) -> BuildResult:
    """Build COCO-N from a COCO 2017 root (``annotations/instances_{train,val}2017.json``, ``train2017/``,
    ``val2017/``). ``levels``: configs among ``clean``, ``easy``, ``medium``, ``hard``; ``max_images``: only the
    first N images of each split; ``verify_images``: decode every image before writing (sizes are always
    checked); other arguments as :func:`~hf_noisy.hub.build.build_dataset`."""
    from ..sources import read_coco_split

    splits = {split: read_coco_split(coco_root, split) for split in ("train", "validation")}
    return _noise_benchmark("coco-n", splits, out_dir, levels=levels, seed=seed, max_images=max_images,
                            images=images, num_proc=num_proc, images_per_shard=images_per_shard,
                            overwrite=overwrite, progress=progress,
                            verify_images=verify_images)


def build_lvis_n(
    lvis_root: str | os.PathLike,
    coco_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = LEVELS,
    seed: int = 1,
    images: Literal["embedded", "shared", "none"] = "embedded",
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    verify_images: bool = True,
) -> BuildResult:
    """Build LVIS-N from LVIS train/val JSON (``lvis_v1_{train,val}.json`` or v0.5's) under ``lvis_root`` and the
    COCO 2017 images under ``coco_root`` (see :mod:`hf_noisy.sources.lvis`); arguments as :func:`build_coco_n`."""
    from ..sources import read_lvis_split

    splits = {split: read_lvis_split(lvis_root, coco_root, split) for split in ("train", "validation")}
    return _noise_benchmark("lvis-n", splits, out_dir, levels=levels, seed=seed, max_images=max_images,
                            images=images, num_proc=num_proc, images_per_shard=images_per_shard,
                            overwrite=overwrite, progress=progress,
                            verify_images=verify_images)


def build_cityscapes_n(
    cityscapes_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = LEVELS,
    seed: int = 1,
    images: Literal["embedded", "shared", "none"] = "none",
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    verify_images: bool = True,
) -> BuildResult:
    """Build Cityscapes-N from a Cityscapes root (``leftImg8bit/`` and ``gtFine/``; train and val are converted
    to COCO instances first, see :mod:`hf_noisy.sources.cityscapes`); arguments as :func:`build_coco_n`, except
    that ``images`` defaults to ``"none"`` (annotation-only: Cityscapes' terms forbid redistributing its images;
    ``load_coco_n(folder, config, image_root=cityscapes_root)`` joins your own copy back). ``"embedded"`` is
    there for private copies, and ``hf-noisy push`` refuses it without ``--i-have-redistribution-rights``."""
    from ..sources.cityscapes import read_cityscapes_split

    splits = {split: read_cityscapes_split(cityscapes_root, split, progress=progress) for split in ("train", "validation")}
    return _noise_benchmark("cityscapes-n", splits, out_dir, levels=levels, seed=seed, max_images=max_images,
                            images=images, num_proc=num_proc, images_per_shard=images_per_shard,
                            overwrite=overwrite, progress=progress,
                            verify_images=verify_images)


#: the COCO-WAN level files under ``--wan-dir`` (written by ``hf-noisy wan``), in config order
WAN_FILES = {"easy": "easy.json", "medium": "medium.json", "hard": "hard.json"}


def build_coco_wan(
    coco_root: str | os.PathLike,
    wan_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    levels: Sequence[str] = LEVELS,
    images: Literal["embedded", "shared", "none"] = "embedded",
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    verify_images: bool = True,
) -> BuildResult:
    """Build COCO-WAN from a COCO 2017 root and ``wan_dir`` holding ``easy.json``, ``medium.json``, ``hard.json``:
    the train split re-made by ``hf-noisy wan`` (box prompts; point prompts; point prompts + ``--class-noise
    0.4``). The card scores each level against the clean masks (mask AP, Boundary AP, mean IoU). The version is
    always ``custom``: SAM's masks depend on the checkpoint and the hardware's float arithmetic, so a build is
    identified by its files' hashes and their ``info.hf_noisy.wan`` records (model, prompt, options), which the
    metadata keeps."""
    from ..sources import read_coco_split
    from ..sources.base import source_folder

    wan_dir = source_folder(wan_dir, "the folder of `hf-noisy wan` outputs")
    unknown = [level for level in levels if level != "clean" and level not in WAN_FILES]
    if unknown or not levels or len(set(levels)) != len(levels):
        raise HfNoisyError(f"levels must be distinct names among {', '.join(LEVELS)}; got {', '.join(levels) or 'none'}")
    missing = [WAN_FILES[level] for level in levels if level != "clean" and not (wan_dir / WAN_FILES[level]).is_file()]
    if missing:
        raise HfNoisyError(f"{wan_dir}: missing {', '.join(missing)} (make them with `hf-noisy wan`, see its --help)")
    if max_images is not None and max_images < 1:
        raise HfNoisyError("max_images must be >= 1")
    configs: dict[str, ConfigRule] = {level: Clean() if level == "clean" else Precomputed(wan_dir / WAN_FILES[level])
                                      for level in levels}
    splits = {split: read_coco_split(coco_root, split).head(max_images) for split in ("train", "validation")}
    return build_dataset(benchmark_info("coco-wan"), splits, configs, out_dir, images=images, num_proc=num_proc,
                         images_per_shard=images_per_shard, overwrite=overwrite, progress=progress,
                         verify_images=verify_images, version="custom", quality=True, extra_metadata={"max_images": max_images})
