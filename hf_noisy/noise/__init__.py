"""Noise engine: spec (what), spatial ops (mask in, mask out), class noise (label transitions), engine (apply)."""

from .spec import PRESETS, ClassNoise, NoiseSpec, SpatialOp, SpecError, load_spec

__all__ = ["PRESETS", "ClassNoise", "NoiseSpec", "SpatialOp", "SpecError", "load_spec"]
