"""Hugging Face datasets for the noisy benchmarks: build, load, export, push, and noise rows on the fly.

>>> from hf_noisy.hub import build_coco_n, load_coco_n, to_masks
>>> build_coco_n("coco", "coco-n")                                  # doctest: +SKIP
>>> ds = load_coco_n("coco-n", "hard", split="train")             # doctest: +SKIP
>>> masks = to_masks(ds[0])                                         # doctest: +SKIP

One builder (:func:`build_dataset`) makes every benchmark from a source and config rules; the benchmark
definitions (:func:`build_coco_n`, :func:`build_cityscapes_n`, :func:`build_lvis_n`, :func:`build_coco_wan`)
are a few lines each.
"""

from .benchmarks import (
    BENCHMARK_VERSION,
    BENCHMARKS,
    DEFAULT_IMAGES,
    LEVELS,
    benchmark_info,
    build_cityscapes_n,
    build_coco_n,
    build_coco_wan,
    build_shapes_n,
    build_lvis_n,
)
from .build import METADATA_FILE, BuildResult, Clean, Noised, Precomputed, build_dataset
from .card import BenchmarkInfo
from .load import (ResolvedDataset, build_folder, export_coco, load_coco_n, locate_dataset, read_metadata,
                   resolve_dataset, rows_to_coco, to_masks)
from .push import push_dataset
from .schema import CategoryMap, row_features
from .transform import ColumnMap, NoiseTransform

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_VERSION",
    "DEFAULT_IMAGES",
    "LEVELS",
    "METADATA_FILE",
    "BenchmarkInfo",
    "BuildResult",
    "CategoryMap",
    "Clean",
    "ColumnMap",
    "NoiseTransform",
    "Noised",
    "Precomputed",
    "benchmark_info",
    "build_cityscapes_n",
    "build_coco_n",
    "build_coco_wan",
    "build_shapes_n",
    "build_dataset",
    "build_lvis_n",
    "export_coco",
    "load_coco_n",
    "push_dataset",
    "read_metadata",
    "resolve_dataset",
    "locate_dataset",
    "build_folder",
    "ResolvedDataset",
    "row_features",
    "rows_to_coco",
    "to_masks",
]
