"""``hf-noisy`` command line: one module per command, each a thin wrapper over a public library function.

Command modules import nothing heavy at the top level, so ``hf-noisy --help`` and start-up stay fast.
Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ._options import add_option

__all__ = ["COMMANDS", "add_option", "build_parser", "main"]

#: command name -> module under hf_noisy.cli
COMMANDS = {
    "demo": "demo",
    "noise": "noise",
    "spec": "spec",
    "show": "show",
    "evaluate": "evaluate",
    "quality": "quality",
    "fit": "fit",
    "build": "build",
    "push": "push",
    "push-metric": "push_metric",
    "export": "export",
    "convert": "convert",
    "leaderboard": "leaderboard",
    "wan": "wan",
    "audit": "audit",
    "random-sam": "random_sam",
    "analyze": "analyze",
}


def _available(names: list[str]) -> dict:
    modules = {}
    for name in names:
        module = COMMANDS[name]
        try:
            modules[name] = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{module}":
                raise
    return modules


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``hf-noisy`` parser with every command, or only ``command`` (a name in :data:`COMMANDS`): parsing
    that command's arguments then imports no other command's module (start-up of e.g. ``hf-noisy noise``)."""
    parser = argparse.ArgumentParser(
        prog="hf-noisy",
        description="Label-noise benchmarks for instance segmentation: make noisy COCO-style datasets "
        "(COCO-N levels of Grad et al. 2024), score them, and publish them as Hugging Face datasets.",
    )
    parser.add_argument("--version", action="version", version=f"hf-noisy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available([command] if command in COMMANDS else list(COMMANDS)).items():
        command = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run, _prog=command.prog)  # a module's subcommands set their own _prog
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    from ..errors import run_reporting_errors

    # usage errors exit 2 from argparse (`hf-noisy COMMAND: error: ...`); known errors (hf_noisy.errors.user_error)
    # become one line with the same prefix and exit 2 (bad input) or 1 (no network)
    try:
        return run_reporting_errors(args._run, args._prog, args)
    except KeyboardInterrupt:
        print(f"{args._prog}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
