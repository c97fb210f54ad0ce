"""``--no-progress`` of the long-running commands, and when their bars show: on a terminal, unless turned off."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (there are none either when stderr is not a terminal)")


def show_progress(args: argparse.Namespace) -> bool:
    """Bars on stderr: only where it is a terminal (never in logs or pipes), and not with ``--no-progress``."""
    return not args.no_progress and sys.stderr.isatty()


@contextlib.contextmanager
def datasets_bars(show: bool) -> Iterator[None]:
    """The ``datasets`` library's own bars (reading parquet, building splits) follow ``show`` inside the block;
    its earlier setting comes back after it, so an in-process caller's choice is left as it was."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    (datasets.enable_progress_bars if show else datasets.disable_progress_bars)()
    try:
        yield
    finally:
        (datasets.enable_progress_bars if was else datasets.disable_progress_bars)()
