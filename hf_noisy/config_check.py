"""Check a config's values against its dataclass's field types before anything expensive runs (a training
config with ``learning_rate: [1, 2]`` is one line at once, not a ``TypeError`` after the model is built).

A leaf module: it imports only :mod:`hf_noisy.errors` and :mod:`hf_noisy.safe_yaml`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import HfNoisyError
from .safe_yaml import quote

__all__ = ["ConfigError", "check_config_values"]


class ConfigError(HfNoisyError):
    """A config value of the wrong type; the message names the key and quotes the value briefly."""


def _fits(value: Any, kind: str) -> bool:
    """Whether ``value`` is a ``kind`` (a field annotation as text: ``int``, ``float``, ``bool``, ``str``, ``dict``,
    ``list``, each optionally ``| None``); an annotation it does not know accepts anything."""
    options = [part.strip() for part in kind.split("|")]
    if "None" in options and value is None:
        return True
    for option in options:
        base = option.split("[")[0]
        if base == "bool" and isinstance(value, bool):
            return True
        if base == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return math.isfinite(value)
        if base in ("str", "dict", "list") and isinstance(value, {"str": str, "dict": dict, "list": list}[base]):
            return True
        if base not in ("bool", "int", "float", "str", "dict", "list", "None"):
            return True
    return False


def check_config_values(values: dict, config_class: type) -> None:
    """Raise :class:`ConfigError` for the first value of ``values`` whose key is a field of the dataclass
    ``config_class`` and whose type is not the field's (an int passes for a float; ``None`` only where the
    field allows it)."""
    fields = {field.name: str(field.type) for field in dataclasses.fields(config_class)}
    for key, value in values.items():
        kind = fields.get(key)
        if kind is not None and not _fits(value, kind):
            raise ConfigError(f"{key} must be {kind.replace(' | None', ' or null')}, got {quote(value)}")
