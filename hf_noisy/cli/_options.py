"""Option spellings shared by every ``hf-noisy`` command and ``train/train_mask2former.py``, and old spellings
kept working without being shown.

One concept has one name everywhere: ``-o/--out`` for what a command writes, ``--annotations`` for a COCO
instance file read as the reference, ``--predictions`` for a COCO results file, ``--dataset`` for a built
dataset folder or Hub id, ``--dataset-config`` for one of its configs, ``--num-images`` for how many images to
make or draw, ``--repo-id`` for a Hub repository, ``--private`` for a private one (and ``--num-proc``,
``--seed``, ``--overwrite``, ``--no-progress``, ``--json`` as they always were). Names a command had before
(``--output``, ``--gt``, ``--build``, ...) still parse, as hidden aliases.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_option"]


def add_option(parser: Any, *names: str, aliases: tuple[str, ...] = (), **kwargs: Any) -> argparse.Action:
    """``parser.add_argument(*names, **kwargs)`` (``parser``: a parser or argument group) that also accepts each
    of ``aliases`` (old spellings, e.g. ``("--output",)``), as the same action: the value lands in the same
    ``dest``, and ``required`` is met by either spelling. ``--help``, the usage line and error messages name only
    ``names``: the aliases stay in the parser's option table (which parsing reads) but leave the action's
    ``option_strings`` (which help and messages read)."""
    action = parser.add_argument(*names, *aliases, **kwargs)
    action.option_strings = [name for name in action.option_strings if name not in aliases]
    return action
