"""The benchmarks hf-noisy builds and scores, one frozen :class:`Benchmark` record each: the one place that says
what a benchmark is. The builder (:func:`hf_noisy.hub.build_benchmark`), the loader's hints, the CLI, the
training script and the leaderboard ask :func:`get`; nothing else lists benchmarks.

>>> from hf_noisy import benchmarks
>>> benchmarks.get("lvis-n").protocol, benchmarks.ids()[:2]
('lvis', ('coco-n', 'cityscapes-n'))

A record names its source reader and its card texts from the sources' own modules by :class:`Ref` (imported
only when a build needs them), so this module imports nothing of hf-noisy but its errors. Adding a benchmark
is one record here plus a source reader (a context manager, see :mod:`hf_noisy.hub.benchmarks`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from .errors import HfNoisyError

__all__ = ["CONFIGS", "Benchmark", "BoardBudgets", "Card", "Ref", "SourceFolder",
           "UnknownBenchmark", "board_ids", "detections_per_image", "get", "ids", "version_label"]

ImageMode = Literal["embedded", "shared", "none"]

#: The paper's configs of every benchmark, in card order (the first is the default): the clean annotations and
#: the three noise levels of its Table 7.
CONFIGS = ("clean", "easy", "medium", "hard")

_PAPER = "Grad et al. (2024), *Benchmarking Label Noise in Instance Segmentation: Spatial Noise Matters*"


class UnknownBenchmark(HfNoisyError):
    """A benchmark id that no record has; the message lists the known ones."""


@dataclass(frozen=True)
class Ref:
    """``module:name``, imported only by :meth:`load` (a heavy module, or one above this leaf)."""

    module: str
    name: str

    def load(self) -> Any:
        return getattr(importlib.import_module(self.module), self.name)


def _text(value: str | Ref | tuple[str | Ref, ...]) -> str:
    """A card text: ``value``, a loaded :class:`Ref`, or paragraphs joined by a blank line."""
    if isinstance(value, tuple):
        return "\n\n".join(map(_text, value))
    return value.load() if isinstance(value, Ref) else value


@dataclass(frozen=True)
class Card:
    """What a benchmark's dataset card says besides the build's own numbers (fields as
    :class:`hf_noisy.hub.BenchmarkInfo`; a :class:`Ref` is a text kept in its source's module)."""

    pretty_name: str
    about: str | Ref | tuple[str | Ref, ...]
    source_name: str
    source_url: str
    license_text: str | Ref
    source_citation: str | Ref
    tags: tuple[str, ...] = ()
    image_extras: tuple[str, ...] = ()
    object_extras: tuple[str, ...] = ()
    config_text: Mapping[str, str] = field(default_factory=dict)
    obtain_text: str | None = None

    def texts(self) -> dict[str, Any]:
        """The fields, every :class:`Ref` loaded."""
        return {name: _text(getattr(self, name)) if name in ("about", "license_text", "source_citation")
                else getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class BoardBudgets:
    """What a leaderboard allows a submission of the benchmark (resolved by :mod:`hf_noisy.leaderboard.policy`).

    Size caps in bytes, sized to take a complete validation submission at the benchmark's detections per
    image: ``max_compressed_bytes`` (the upload as sent, gzip or plain), ``max_uncompressed_bytes`` (after
    streamed decompression). Sandbox budgets for scoring one such file: ``cpu_seconds`` of CPU time,
    ``memory_mb`` of memory beyond the loaded ground truth; and for the check a submit runs before it
    enqueues (whatever the file's size): ``check_cpu_seconds``, ``check_memory_mb``. Scoring streams the
    file in bounded memory (about 0.6 KB per detection, measured by the benchmarks' --scale sweeps)."""

    max_compressed_bytes: int = 256 * 2**20
    max_uncompressed_bytes: int = 1024 * 2**20
    cpu_seconds: float = 1800.0
    memory_mb: float = 8192.0
    check_cpu_seconds: float = 20.0
    check_memory_mb: float = 1024.0


@dataclass(frozen=True)
class SourceFolder:
    """How a raw source folder given where a build is expected is recognised: the source ``option`` it is
    (``coco_root``), what it is in words, and the files or folders that mark it."""

    option: str
    what: str
    marks: tuple[str, ...]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark.

    Attributes:
        id: as the CLI and the Hub repos name it (``"coco-n"``); ``title``: ``"COCO-N"``.
        reader: the source reader, a context manager ``reader(progress=bool, **options)`` giving the
            :class:`~hf_noisy.hub.benchmarks.Source` (splits, and metadata of a generated source).
        needs: the source options a build must be given (``coco_root``); ``options``: every source option it
            takes (the needed ones first), as keyword arguments of :func:`hf_noisy.hub.build_benchmark` and
            ``--option-name`` flags of ``hf-noisy build``; ``source_help``: one line on what they hold.
        images: the default image storage, following the source's terms (``"none"``: its images may not be
            redistributed); ``license_tag``: the Hub licence tag of the derived annotations.
        protocol: how it is scored, ``"coco"`` or ``"lvis"`` (federated); see :attr:`detections_per_image`.
        card: the dataset card's texts.
        board: the leaderboard's caps and budgets, ``None`` for a benchmark no board holds.
        precomputed: config -> annotation file under the ``precomputed_from`` option's folder, for a benchmark
            whose configs are files made beforehand (COCO-WAN) rather than noise specs.
        versioned: a build of the paper's configs with seed 1 on the whole source is the official version
            (otherwise always ``custom``); ``generated``: the source is drawn, not read (no ``max_images``).
        full_source: the number of images of each split (``train``, ``validation``) of the whole official
            source (COCO 2017: 118,287 and 5,000): a build with fewer is a subset (:meth:`subset`), never the
            official version; empty for a generated source.
        quality: the card scores each derived config against the clean one.
        source_folder: how a raw source folder is told from a build (for the loader's hint), or ``None``.
    """

    id: str
    title: str
    reader: Ref
    needs: tuple[str, ...]
    options: tuple[str, ...]
    source_help: str
    images: ImageMode
    license_tag: str
    protocol: Literal["coco", "lvis"]
    card: Card
    board: BoardBudgets | None = None
    precomputed: Mapping[str, str] = field(default_factory=dict)
    precomputed_from: str | None = None
    versioned: bool = True
    full_source: Mapping[str, int] = field(default_factory=dict)
    generated: bool = False
    quality: bool = False
    source_folder: SourceFolder | None = None

    @property
    def images_redistributable(self) -> bool:
        """Whether the source's terms let anyone redistribute its images (its default storage embeds them)."""
        return self.images != "none"

    def subset(self, images: Mapping[str, int]) -> dict[str, dict[str, int]] | None:
        """``{split: {"images": n, "of": full}}`` for a build with ``images[split]`` images per split when any
        split has fewer than :attr:`full_source` says the whole source has (coco-tiny's 80 train images of
        COCO's 118,287; ``--max-images``), else ``None`` (the whole source, or a generated one)."""
        if not self.full_source or all(images.get(split, 0) >= n for split, n in self.full_source.items()):
            return None
        return {split: {"images": int(images.get(split, 0)), "of": n} for split, n in self.full_source.items()}

    @property
    def detections_per_image(self) -> int:
        """Detections kept (and allowed on a board) per image: :func:`detections_per_image` of the protocol."""
        return detections_per_image(self.protocol)


def detections_per_image(protocol: str) -> int:
    """The detections per image a protocol scores (LVIS 300, COCO 100), as the protocol itself says
    (:func:`hf_noisy.metrics.get_protocol`, the one place that decides it; imported here on first use)."""
    from .metrics import get_protocol

    return get_protocol(protocol).max_detections


#: image counts of the whole official sources (COCO 2017 / LVIS v1 / Cityscapes fine: train and val)
_COCO_IMAGES = {"train": 118287, "validation": 5000}
_LVIS_IMAGES = {"train": 100170, "validation": 19809}
_CITYSCAPES_IMAGES = {"train": 2975, "validation": 500}
_COCO_CARD = dict(source_name="COCO 2017", source_url="https://cocodataset.org",
                  license_text=Ref("hf_noisy.sources.coco", "COCO_LICENSE"),
                  source_citation=Ref("hf_noisy.sources.coco", "COCO_CITATION"), tags=("coco",))
_COCO_FOLDER = SourceFolder("coco_root", "a COCO 2017 source folder", (
    "annotations/instances_train2017.json", "annotations/instances_val2017.json", "train2017", "val2017"))
#: LVIS-N: a complete LVIS v1 val submission (19.8k images x 300, about 3 GB of JSON, 1 GB gzipped) with room.
_LVIS_BOARD = BoardBudgets(max_compressed_bytes=1536 * 2**20, max_uncompressed_bytes=4096 * 2**20,
                           cpu_seconds=7200.0, memory_mb=8192.0)
#: COCO rules: a complete COCO val submission (5k images x 100, about 300 MB of JSON) with room to spare.
_COCO_BOARD = BoardBudgets()

_RECORDS = (
    Benchmark(
        id="coco-n", title="COCO-N", reader=Ref("hf_noisy.hub.benchmarks", "read_coco"),
        needs=("coco_root",), options=("coco_root",),
        source_help="--coco-root DIR: annotations/instances_{train,val}2017.json, train2017/, val2017/",
        images="embedded", license_tag="cc-by-4.0", protocol="coco", board=_COCO_BOARD, source_folder=_COCO_FOLDER,
        full_source=_COCO_IMAGES,
        card=Card(pretty_name="COCO-N: COCO 2017 with benchmark label noise",
                  about=f"COCO-N reproduces the noisy training sets of {_PAPER}: class noise and spatial noise "
                  "(scale, localization, approximation) at the levels of the paper's Table 7.", **_COCO_CARD)),
    Benchmark(
        id="cityscapes-n", title="Cityscapes-N", reader=Ref("hf_noisy.hub.benchmarks", "read_cityscapes"),
        needs=("cityscapes_root",), options=("cityscapes_root",),
        source_help="--cityscapes-root DIR: leftImg8bit/{train,val}/, gtFine/{train,val}/ (instanceIds PNGs or "
        "polygons)",
        images="none", license_tag="other", protocol="coco", board=_COCO_BOARD, full_source=_CITYSCAPES_IMAGES,
        source_folder=SourceFolder("cityscapes_root", "a Cityscapes source folder", ("leftImg8bit", "gtFine")),
        card=Card(pretty_name="Cityscapes-N: Cityscapes instances with benchmark label noise",
                  about=f"Cityscapes-N applies the noise levels of {_PAPER} (Table 7) to the 8 instance classes of "
                  "Cityscapes' fine train annotations (asymmetric noise stays within human / vehicle).",
                  source_name="Cityscapes", source_url="https://www.cityscapes-dataset.com",
                  license_text=Ref("hf_noisy.sources.cityscapes", "CITYSCAPES_LICENSE"),
                  source_citation=Ref("hf_noisy.sources.cityscapes", "CITYSCAPES_CITATION"), tags=("cityscapes",))),
    Benchmark(
        id="lvis-n", title="LVIS-N", reader=Ref("hf_noisy.hub.benchmarks", "read_lvis"),
        needs=("lvis_root", "coco_root"), options=("lvis_root", "coco_root"),
        source_help="--lvis-root DIR (lvis_v1_{train,val}.json or lvis_v0.5_*) and --coco-root DIR (the COCO 2017 "
        "images)",
        images="embedded", license_tag="cc-by-4.0", protocol="lvis", board=_LVIS_BOARD, full_source=_LVIS_IMAGES,
        source_folder=SourceFolder("lvis_root", "an LVIS source folder", (
            "lvis_v1_train.json", "lvis_v1_val.json", "lvis_v0.5_train.json", "lvis_v0.5_val.json")),
        card=Card(pretty_name="LVIS-N: LVIS with benchmark label noise",
                  about=f"LVIS-N applies the noise levels of {_PAPER} (Table 7; LVIS results in Table 6) to LVIS "
                  "train. Class noise is symmetric over LVIS's categories (LVIS has no supercategories). Evaluate "
                  "with LVIS's federated rules (`hf-noisy evaluate` detects an LVIS ground truth).",
                  source_name="LVIS", source_url="https://www.lvisdataset.org",
                  license_text=Ref("hf_noisy.sources.lvis", "LVIS_LICENSE"),
                  source_citation=Ref("hf_noisy.sources.lvis", "LVIS_CITATION"), tags=("lvis", "coco"),
                  image_extras=("neg_category_ids", "not_exhaustive_category_ids"))),
    Benchmark(
        id="coco-wan", title="COCO-WAN", reader=Ref("hf_noisy.hub.benchmarks", "read_coco"),
        needs=("coco_root", "wan_dir"), options=("coco_root", "wan_dir"),
        source_help="--coco-root DIR and --wan-dir DIR holding easy.json, medium.json, hard.json from `hf-noisy wan`",
        images="embedded", license_tag="cc-by-4.0", protocol="coco", board=_COCO_BOARD,
        precomputed={"easy": "easy.json", "medium": "medium.json", "hard": "hard.json"}, precomputed_from="wan_dir",
        versioned=False, quality=True, full_source=_COCO_IMAGES,
        source_folder=SourceFolder("wan_dir", "a folder of `hf-noisy wan` outputs", ("easy.json", "medium.json",
                                                                                     "hard.json")),
        card=Card(pretty_name="COCO-WAN: COCO 2017 with weak-annotation noise (SAM masks from weak prompts)",
                  about=f"COCO-WAN (section 3.4 of {_PAPER}) simulates semi-automatic annotation: every train mask "
                  "is re-made by SAM from a weak prompt derived from the clean annotation.",
                  object_extras=("sam_prompt", "sam_iou"),
                  config_text={"easy": "masks re-made by SAM from each object's box",
                               "medium": "masks re-made by SAM from one positive point at each box's centre",
                               "hard": "the medium masks plus 40% symmetric class noise"},
                  **_COCO_CARD)),
    Benchmark(
        id="shapes-n", title="Shapes-N", reader=Ref("hf_noisy.hub.benchmarks", "generate_shapes"),
        needs=(), options=("num_train", "num_val", "image_size", "generator_seed"),
        source_help="nothing: generated (--num-train, --num-val, --image-size, --generator-seed); the paper in "
        "miniature",
        images="embedded", license_tag="cc0-1.0", protocol="coco", versioned=False, generated=True,
        card=Card(pretty_name="Shapes-N: synthetic shapes with benchmark label noise",
                  about=(Ref("hf_noisy.sources.shapes", "SHAPES_ABOUT"), Ref("hf_noisy.sources.shapes", "SHAPES_LIMITS")), source_name="Shapes-N", source_url="",
                  license_text="The images and annotations are generated by `hf_noisy.sources.shapes` and dedicated "
                  "to the public domain under [CC0 1.0](https://creativecommons.org/publicdomain/zero/1.0/); "
                  "nothing in them comes from COCO or any other dataset.",
                  source_citation="", tags=("synthetic",),
                  obtain_text="Nothing to obtain: `hf-noisy build shapes-n` generates the images and clean "
                  "annotations (same arguments, same bytes) and noises the train split; the generator's arguments "
                  "are in `hf_noisy_benchmark.json`.")),
)
_BY_ID = {record.id: record for record in _RECORDS}


def ids() -> tuple[str, ...]:
    """Every benchmark id, in card and CLI order."""
    return tuple(_BY_ID)


def board_ids() -> tuple[str, ...]:
    """The ids of the benchmarks a leaderboard holds (those with :attr:`Benchmark.board` budgets)."""
    return tuple(record.id for record in _RECORDS if record.board is not None)


def version_label(metadata: Mapping[str, Any]) -> str:
    """A build's version as its card and ``hf-noisy build`` show it, from its ``hf_noisy_benchmark.json``:
    ``v1.0``, ``custom``, or for a subset of the source ``custom (subset: 80 of 118,287 train images, 80 of
    5,000 validation images)``."""
    version, subset = str(metadata.get("benchmark_version") or "custom"), metadata.get("source_subset")
    if not subset:
        return version
    parts = ", ".join(f"{n['images']:,} of {n['of']:,} {split} images" for split, n in subset.items())
    return f"{version} (subset: {parts})"


def get(benchmark: str) -> Benchmark:
    """The record of ``benchmark`` (an id, exactly: ``"lvis-n"``); :class:`UnknownBenchmark` naming the known
    ids otherwise."""
    try:
        return _BY_ID[benchmark]
    except (KeyError, TypeError):
        raise UnknownBenchmark(f"unknown benchmark {benchmark!r}; choose from {', '.join(_BY_ID)}") from None
