"""Noise engine: spec (what), spatial ops (mask in, mask out), class noise (label transitions), engine (apply).

>>> from hf_noisy.noise import PRESETS, apply_noise
>>> result = apply_noise(coco_dict, PRESETS["hard"])          # doctest: +SKIP
>>> result.summary.ops                                         # doctest: +SKIP
{'approximation': 211, 'dilate': 108, ...}
"""

from .annotation_ops import Outcome
from .engine import InstanceNoiser, NoiseResult, NoiseSummary, apply_noise, noise_to_json
from .io import noise_file
from .spec import PRESETS, ClassNoise, NoiseSpec, SpatialOp, SpecError, load_spec

__all__ = [
    "PRESETS",
    "ClassNoise",
    "InstanceNoiser",
    "NoiseResult",
    "NoiseSpec",
    "NoiseSummary",
    "Outcome",
    "SpatialOp",
    "SpecError",
    "apply_noise",
    "load_spec",
    "noise_file",
    "noise_to_json",
]
