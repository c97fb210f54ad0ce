"""Build any benchmark of the registry (:mod:`hf_noisy.benchmarks`, which says what each one is) with
:func:`build_benchmark`: the record's source reader gives the splits, its configs are noise specs (or files made
beforehand, COCO-WAN's), and the one builder (:func:`~hf_noisy.hub.build.build_dataset`) writes the folder.
A source reader is a context manager ``reader(progress=..., **options) -> Source``: :func:`read_coco`,
:func:`read_lvis`, :func:`read_cityscapes`, :func:`generate_shapes`.

Benchmark version ``v1.0`` = the paper's levels (``PRESETS``) with seed 1 on the full source of a versioned
benchmark; anything else (another seed, a subset, custom specs, COCO-WAN, Shapes-N) is recorded as ``custom``.
A subset is any build with fewer images in a split than the whole official source has
(:attr:`hf_noisy.benchmarks.Benchmark.full_source`): ``--max-images``, or a small source such as coco-tiny; its
``hf_noisy_benchmark.json`` says how many in ``source_subset`` (``{split: {"images", "of"}}``, ``null`` for the
whole source), which the card shows beside the version.

Image storage follows each source's terms by default (:attr:`hf_noisy.benchmarks.Benchmark.images`): COCO's and
LVIS's images come from Flickr under their owners' Creative Commons licences (named per image by the ``license``
field of the COCO files; the rows do not carry it), so COCO-N, LVIS-N and COCO-WAN embed them; Cityscapes' terms
forbid redistribution, so Cityscapes-N is built annotation-only (``images="none"``) unless asked for
``"embedded"`` explicitly, and ``hf-noisy push`` refuses an embedded Cityscapes-N folder without
``--i-have-redistribution-rights``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping, Sequence

from .. import benchmarks
from ..benchmarks import CONFIGS
from ..errors import HfNoisyError
from .build import BuildResult, Clean, ConfigRule, Noised, Precomputed, build_dataset
from .card import BenchmarkInfo

if TYPE_CHECKING:
    from ..sources import SourceSplit

__all__ = ["BENCHMARK_VERSION", "Source", "benchmark_info", "build_benchmark", "generate_shapes", "read_cityscapes",
           "read_coco", "read_lvis"]

BENCHMARK_VERSION = "v1.0"
#: The splits every benchmark has (derived annotations on train only; validation is always clean).
SPLITS = ("train", "validation")


def benchmark_info(name: str) -> BenchmarkInfo:
    """The card texts of a benchmark by id (see :func:`hf_noisy.benchmarks.get`)."""
    record = benchmarks.get(name)
    return BenchmarkInfo(name=record.id, title=record.title, license_tag=record.license_tag,
                         images_redistributable=record.images_redistributable, **record.card.texts())


@dataclass(frozen=True)
class Source:
    """What a source reader gives: ``splits`` (``"train"`` and ``"validation"``), and ``metadata``: entries for
    ``hf_noisy_benchmark.json`` that say how a generated source was drawn."""

    splits: dict[str, "SourceSplit"]
    metadata: dict[str, Any] = field(default_factory=dict)


@contextmanager
def read_coco(coco_root: str | os.PathLike, *, progress: bool = False) -> Iterator[Source]:
    """COCO 2017 (``annotations/instances_{train,val}2017.json``, ``train2017/``, ``val2017/``)."""
    from ..sources import read_coco_split

    yield Source({split: read_coco_split(coco_root, split) for split in SPLITS})


@contextmanager
def read_lvis(lvis_root: str | os.PathLike, coco_root: str | os.PathLike, *, progress: bool = False) -> Iterator[Source]:
    """LVIS train/val JSON (``lvis_v1_{train,val}.json`` or v0.5's) under ``lvis_root`` and the COCO 2017 images
    under ``coco_root`` (see :mod:`hf_noisy.sources.lvis`)."""
    from ..sources import read_lvis_split

    yield Source({split: read_lvis_split(lvis_root, coco_root, split) for split in SPLITS})


@contextmanager
def read_cityscapes(cityscapes_root: str | os.PathLike, *, progress: bool = False) -> Iterator[Source]:
    """A Cityscapes root (``leftImg8bit/`` and ``gtFine/``); train and val are converted to COCO instances first
    (see :mod:`hf_noisy.sources.cityscapes`)."""
    from ..sources.cityscapes import read_cityscapes_split

    yield Source({split: read_cityscapes_split(cityscapes_root, split, progress=progress) for split in SPLITS})


@contextmanager
def generate_shapes(*, num_train: int = 1000, num_val: int = 100, image_size: int = 128, generator_seed: int = 0,
                    progress: bool = False) -> Iterator[Source]:
    """Shapes-N's clean source, generated (:func:`hf_noisy.sources.shapes.write_shapes_root`: ``num_train`` and
    ``num_val`` images of ``image_size`` pixels, drawn from ``generator_seed``) in a temporary folder that
    lives while the context does; the generator's arguments go into the metadata."""
    import tempfile

    from ..sources import read_coco_split
    from ..sources.shapes import write_shapes_root

    generator = {"num_train": num_train, "num_val": num_val, "image_size": image_size, "generator_seed": generator_seed}
    with tempfile.TemporaryDirectory(prefix="hf-noisy-shapes-") as tmp:
        root = write_shapes_root(tmp, **generator)
        yield Source({split: read_coco_split(root, split) for split in SPLITS}, {"generator": generator})


def _noise_configs(configs: Sequence[str], seed: int) -> tuple[dict[str, ConfigRule], bool]:
    """Config rules for ``configs`` and whether they are exactly the paper's.

    Each item is ``clean``, a preset name (``easy``, ``medium``, ``hard``), or ``NAME=SPEC``: a config ``NAME``
    noised by ``SPEC`` (a preset name or a YAML/JSON spec file), e.g. ``erode7=erode.yaml`` for an ablation.
    ``seed`` overrides every spec's seed."""
    from ..noise import PRESETS, load_spec

    rules: dict[str, ConfigRule] = {}
    for level in configs:
        name, _, spec = level.partition("=")
        name, spec = name.strip(), spec.strip()
        if not spec and name != "clean" and name not in PRESETS:
            raise HfNoisyError(f"config {name!r}: expected clean, a preset ({', '.join(PRESETS)}) or NAME=SPEC "
                               "(a preset or a spec file)")
        if name == "clean" and spec:
            raise HfNoisyError(f"config {level!r}: the name clean is kept for the unchanged annotations")
        if not name or not name.replace("-", "").replace("_", "").isalnum() or name in rules:
            raise HfNoisyError(f"config names must be distinct, of letters, digits, - and _; got {name!r}")
        rules[name] = Clean() if name == "clean" and not spec else Noised(load_spec(spec or name, seed=seed))
    if not rules:
        raise HfNoisyError(f"levels must name at least one config among {', '.join(CONFIGS)} (or NAME=SPEC)")
    official = all(level in CONFIGS for level in configs)
    return rules, official and seed == 1


def _precomputed_configs(record: benchmarks.Benchmark, configs: Sequence[str],
                         folder: str | os.PathLike) -> dict[str, ConfigRule]:
    """``clean`` and the record's precomputed files under ``folder`` (each must exist)."""
    from ..sources.base import source_folder

    folder = source_folder(folder, "the folder of `hf-noisy wan` outputs")
    files = record.precomputed
    unknown = [name for name in configs if name != "clean" and name not in files]
    if unknown or not configs or len(set(configs)) != len(configs):
        raise HfNoisyError(f"levels must be distinct names among clean, {', '.join(files)}; got "
                           f"{', '.join(configs) or 'none'}")
    missing = [files[name] for name in configs if name != "clean" and not (folder / files[name]).is_file()]
    if missing:
        raise HfNoisyError(f"{folder}: missing {', '.join(missing)} (make them with `hf-noisy wan`, see its --help)")
    return {name: Clean() if name == "clean" else Precomputed(Path(folder) / files[name]) for name in configs}


def _released_configs(record: benchmarks.Benchmark, files: Mapping[str, str | os.PathLike],
                      taken: Mapping[str, ConfigRule]) -> dict[str, ConfigRule]:
    """``{name: Precomputed(file, keep_ids=False)}`` for files made elsewhere; each must exist, names new."""
    if record.generated:
        raise HfNoisyError(f"{record.id} is generated: no file made elsewhere covers its images")
    rules: dict[str, ConfigRule] = {}
    for name, path in files.items():
        if not name or not name.replace("-", "").replace("_", "").isalnum() or name in taken or name == "clean":
            raise HfNoisyError(f"precomputed config names must be new, of letters, digits, - and _; got {name!r}")
        if not Path(path).is_file():
            raise HfNoisyError(f"precomputed config {name!r}: no such file {path}")
        rules[name] = Precomputed(Path(path), keep_ids=False)
    return rules


def build_benchmark(
    benchmark: str,
    out_dir: str | os.PathLike,
    *,
    configs: Sequence[str] = CONFIGS,
    seed: int = 1,
    images: Literal["embedded", "shared", "none"] | None = None,
    num_proc: int = 1,
    max_images: int | None = None,
    images_per_shard: int = 1000,
    overwrite: bool = False,
    progress: bool = False,
    verify_images: bool = True,
    precomputed: Mapping[str, str | os.PathLike] | None = None,
    **source: Any,
) -> BuildResult:
    """Build ``benchmark`` (an id of :mod:`hf_noisy.benchmarks`) into the dataset folder ``out_dir``.

    Args:
        source: the benchmark's source options (:attr:`~hf_noisy.benchmarks.Benchmark.options`), e.g.
            ``coco_root=`` for COCO-N; ``lvis_root=`` and ``coco_root=`` for LVIS-N; ``cityscapes_root=``;
            ``coco_root=`` and ``wan_dir=`` (``easy.json``, ``medium.json``, ``hard.json`` from ``hf-noisy wan``)
            for COCO-WAN; Shapes-N's generator: ``num_train``, ``num_val``, ``image_size`` (pixels),
            ``generator_seed``.
        configs: the train configs, in card order: ``clean``, a preset (``easy``, ``medium``, ``hard``) or
            ``NAME=SPEC`` (a config noised by a preset or a YAML/JSON spec file); for a benchmark of
            precomputed files (COCO-WAN), ``clean`` and its files' names.
        seed: the noise seed (every spec's; 1 with the paper's configs on the whole source = version v1.0).
        images: image storage (default: the benchmark's, following its source's terms; Cityscapes-N
            ``"none"``: ``load_coco_n(folder, config, image_root=cityscapes_root)`` joins your own copy back).
        max_images: only the first N images of each split (not for a generated source: size it instead).
        verify_images: decode every image before writing (sizes are always checked).
        precomputed: more configs, ``{name: file}``, after ``configs``: each wraps a COCO annotation file made
            elsewhere for the source's train images (a released noisy set, a re-annotation such as COCO-ReM),
            whatever its annotation ids (:class:`~hf_noisy.hub.build.Precomputed` with ``keep_ids=False``). It
            must list every train image with the source's size and only the source's categories (same ids and
            names); the card records its SHA-256. The build is then ``custom``.
        num_proc: as :func:`~hf_noisy.hub.build.build_dataset`.
        images_per_shard: as :func:`~hf_noisy.hub.build.build_dataset`.
        overwrite: as :func:`~hf_noisy.hub.build.build_dataset`.
        progress: as :func:`~hf_noisy.hub.build.build_dataset`.

    The version is ``v1.0`` for the paper's configs with seed 1 on a whole source of a versioned benchmark
    (every split with the official number of images), else ``custom`` (always for COCO-WAN, whose SAM masks
    depend on checkpoint and hardware, and for Shapes-N); ``source_subset`` in the metadata counts the images
    of a subset build against the whole source's.
    Same arguments give the same bytes for any ``num_proc``.
    """
    record = benchmarks.get(benchmark)
    unknown = sorted(set(source) - set(record.options))
    if unknown:
        raise HfNoisyError(f"{record.id} takes no source option {', '.join(unknown)}; its options: "
                           f"{', '.join(record.options) or 'none'}")
    missing = [name for name in record.needs if source.get(name) is None]
    if missing:
        raise HfNoisyError(f"{record.id} needs {' and '.join(missing)}")
    if max_images is not None and record.generated:
        raise HfNoisyError(f"{record.id} is generated: size it with its options ({', '.join(record.options)}), "
                           "not max_images")
    if max_images is not None and max_images < 1:
        raise HfNoisyError("max_images must be >= 1")
    if record.precomputed:
        rules, official = _precomputed_configs(record, configs, source.pop(record.precomputed_from)), False
    else:
        rules, official = _noise_configs(configs, seed)
    if precomputed:
        rules, official = {**rules, **_released_configs(record, precomputed, rules)}, False
    extra: dict[str, Any] = {} if record.precomputed else {"seed": seed}
    if not record.generated:
        extra["max_images"] = max_images
    with record.reader.load()(progress=progress, **source) as read:
        splits = {split: data.head(max_images) for split, data in read.splits.items()}
        subset = record.subset({split: len(data.images) for split, data in splits.items()})
        version = BENCHMARK_VERSION if record.versioned and official and subset is None else "custom"
        if not record.generated:
            extra["source_subset"] = subset
        return build_dataset(benchmark_info(record.id), splits, rules, out_dir,
                             images=record.images if images is None else images,
                             num_proc=num_proc, images_per_shard=images_per_shard, overwrite=overwrite,
                             progress=progress, version=version, quality=record.quality,
                             extra_metadata={**extra, **read.metadata}, verify_images=verify_images)
