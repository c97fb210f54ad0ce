"""``--no-progress`` of the long-running commands, and when their bars show: on a terminal, unless turned off."""

from __future__ import annotations

import argparse
import sys


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (there are none either when stderr is not a terminal)")


def show_progress(args: argparse.Namespace) -> bool:
    """Bars on stderr: only where it is a terminal (never in logs or pipes), and not with ``--no-progress``."""
    return not args.no_progress and sys.stderr.isatty()
