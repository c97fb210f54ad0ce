"""hf-noisy: label-noise benchmarks for instance segmentation on the Hugging Face stack.

The public API, imported lazily so that ``import hf_noisy`` stays cheap::

    from hf_noisy import PRESETS, load_spec, apply_noise, noise_file   # noise engine
    from hf_noisy import load_coco, write_coco, Crop                   # COCO files, masks
    from hf_noisy import build_benchmark                                # HF datasets, by benchmark id
    from hf_noisy import load_coco_n, to_masks, export_coco, NoiseTransform
    from hf_noisy import weak_annotate                                  # COCO-WAN (needs the wan extra)
    from hf_noisy import atomic_write_text, atomic_directory            # files complete or absent
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "PRESETS": "hf_noisy.noise",
    "NoiseSpec": "hf_noisy.noise",
    "InstanceNoiser": "hf_noisy.noise",
    "apply_noise": "hf_noisy.noise",
    "load_spec": "hf_noisy.noise",
    "noise_file": "hf_noisy.noise",
    "load_coco": "hf_noisy.coco",
    "write_coco": "hf_noisy.coco",
    "CocoFormatError": "hf_noisy.coco",
    "Crop": "hf_noisy.masks",
    "HfNoisyError": "hf_noisy.errors",
    "atomic_write_text": "hf_noisy.fsutil",
    "atomic_directory": "hf_noisy.fsutil",
    "to_masks": "hf_noisy.hub",
    "build_benchmark": "hf_noisy.hub",
    "load_coco_n": "hf_noisy.hub",
    "export_coco": "hf_noisy.hub",
    "NoiseTransform": "hf_noisy.hub",
    "weak_annotate": "hf_noisy.wan",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hf_noisy' has no attribute {name!r}")
