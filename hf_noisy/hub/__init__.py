"""Hugging Face datasets for the noisy benchmarks: build, load, export, push, and noise rows on the fly.

>>> from hf_noisy.hub import build_coco_n, load_coco_n, to_masks
>>> build_coco_n("coco", "coco-n")                                  # doctest: +SKIP
>>> ds = load_coco_n("coco-n", "hard", split="train")             # doctest: +SKIP
>>> masks = to_masks(ds[0])                                         # doctest: +SKIP
"""

from .build import BENCHMARK_VERSION, LEVELS, METADATA_FILE, BuildResult, build_coco_n
from .load import export_coco, load_coco_n, read_metadata, to_masks
from .push import push_dataset
from .schema import CategoryMap, coco_n_features
from .transform import ColumnMap, NoiseTransform

__all__ = [
    "BENCHMARK_VERSION",
    "LEVELS",
    "METADATA_FILE",
    "BuildResult",
    "CategoryMap",
    "ColumnMap",
    "NoiseTransform",
    "build_coco_n",
    "coco_n_features",
    "export_coco",
    "load_coco_n",
    "push_dataset",
    "read_metadata",
    "to_masks",
]
