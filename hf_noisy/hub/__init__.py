"""Hugging Face datasets for the noisy benchmarks: build, load, export, push, and noise rows on the fly.

>>> from hf_noisy.hub import build_benchmark, load_coco_n, to_masks
>>> build_benchmark("coco-n", "coco-n", coco_root="coco")          # doctest: +SKIP
>>> ds = load_coco_n("coco-n", "hard", split="train")             # doctest: +SKIP
>>> masks = to_masks(ds[0])                                         # doctest: +SKIP

One builder (:func:`build_dataset`) makes every benchmark from a source and config rules;
:func:`build_benchmark` builds any benchmark of the registry (:mod:`hf_noisy.benchmarks`) by its id.
"""

from .benchmarks import BENCHMARK_VERSION, Source, benchmark_info, build_benchmark
from .build import METADATA_FILE, BuildResult, Clean, Noised, Precomputed, build_dataset
from .card import BenchmarkInfo
from .load import (ResolvedDataset, build_folder, export_coco, load_coco_n, locate_dataset, read_metadata,
                   resolve_dataset, rows_to_coco, to_masks)
from .push import push_dataset
from .schema import CategoryMap, row_features
from .transform import ColumnMap, NoiseTransform

__all__ = [
    "BENCHMARK_VERSION",
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
    "Source",
    "build_benchmark",
    "build_dataset",
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
