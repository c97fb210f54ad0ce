"""Option spellings shared by every ``hf-noisy`` command and ``train/train_mask2former.py``, and old spellings
kept working without being shown.

One concept has one name everywhere: ``-o/--out`` for what a command writes, ``--annotations`` for a COCO
instance file read as the reference, ``--predictions`` for a COCO results file, ``--dataset`` for a built
dataset folder or Hub id, ``--dataset-config`` for one of its configs, ``--num-images`` for how many images to
make or draw, ``--images`` for a folder of images (build's storage mode is ``--image-storage``), ``--repo-id``
for a Hub repository, ``--private`` for a private one (and ``--num-proc``, ``--seed``, ``--overwrite``,
``--no-progress``, ``--json`` as they always were). Names a command had before (``--output``, ``--gt``,
``--build``, ...) still parse, as hidden aliases.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

__all__ = ["add_option", "at_least", "number_in"]


def add_option(parser: Any, *names: str, aliases: tuple[str, ...] = (), **kwargs: Any) -> argparse.Action:
    """``parser.add_argument(*names, **kwargs)`` (``parser``: a parser or argument group) that also accepts each
    of ``aliases`` (old spellings, e.g. ``("--output",)``), as the same action: the value lands in the same
    ``dest``, and ``required`` is met by either spelling. ``--help``, the usage line and error messages name only
    ``names``: the aliases stay in the parser's option table (which parsing reads) but leave the action's
    ``option_strings`` (which help and messages read)."""
    action = parser.add_argument(*names, *aliases, **kwargs)
    action.option_strings = [name for name in action.option_strings if name not in aliases]
    return action


def at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number ``>= minimum`` (and ``<= maximum``), else a usage error (exit 2)."""
    wanted = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a whole number {wanted}, got {text!r}")
        return value

    parse.__name__ = f"whole number {wanted}"
    return parse


def number_in(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]`` (``open_low`` / ``open_high``: without that end;
    ``high`` may be ``math.inf``), else a usage error (exit status 2)."""
    closed_high = math.isfinite(high) and not open_high
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}{']' if closed_high else ')'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (low < value if open_low else low <= value)
                and (value <= high if closed_high else value < high)):
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    parse.__name__ = f"number in {interval}"
    return parse
