"""YAML for files a stranger may write (noise specs, training configs, cards): safe tags only, no anchors or
aliases (a few hundred bytes of nested aliases expand to gigabytes), and a short quote of a bad value.

A leaf module: it imports nothing of hf_noisy but :mod:`hf_noisy.errors`.
"""

from __future__ import annotations

import reprlib
from typing import Any

from .errors import HfNoisyError

__all__ = ["MAX_QUOTE", "YamlError", "load", "quote"]

#: Characters of a bad value an error message quotes, at most.
MAX_QUOTE = 80

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


class YamlError(HfNoisyError):
    """Text that is not YAML, or YAML with an anchor or alias; the message is one line."""


def quote(value: Any) -> str:
    """A ``repr`` of ``value`` of at most :data:`MAX_QUOTE` characters (long strings and lists cut with ``...``)."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def _loader():  # noqa: ANN202 -- yaml is imported here only
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """``SafeLoader`` that refuses an anchor (``&a``) or alias (``*a``) before composing it."""

        def compose_node(self, parent, index):  # noqa: ANN001, ANN201
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                raise YamlError(f"line {mark.line + 1}: YAML anchors and aliases (&, *) are not accepted here")
            return super().compose_node(parent, index)

    return NoAliasLoader


def load(text: str | bytes) -> Any:
    """The value of a YAML (or JSON) document ``text``, with safe tags only and no anchors or aliases; raises
    :class:`YamlError` (one line) otherwise."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 -- a SafeLoader subclass
    except YamlError:
        raise
    except yaml.YAMLError as err:
        raise YamlError(f"not valid YAML: {' '.join(str(err).split())[:200]}") from None
    except RecursionError:
        raise YamlError("not valid YAML: nested too deeply") from None
