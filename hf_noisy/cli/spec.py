"""hf-noisy spec: print a preset, or check a spec file, as normalised YAML with its hash."""

from __future__ import annotations

import argparse

HELP = "print a preset level as a spec file, or check your own spec (normalised YAML + SHA-256)"
DESCRIPTION = """\
Print the spec of a paper level, to start your own from it, or load and check a spec file and print it in
normalised form. The SHA-256 is the hash recorded in noisy files and dataset cards.

example:
  hf-noisy spec hard > my_spec.yaml      # edit it, then:
  hf-noisy spec my_spec.yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="easy | medium | hard | PATH to a YAML/JSON spec")
    parser.add_argument("--seed", type=int, default=None, help="override the seed")


def run(args: argparse.Namespace) -> int:
    from ..noise import load_spec

    spec = load_spec(args.spec, seed=args.seed)
    print(f"# sha256: {spec.sha256}")
    print(spec.to_yaml(), end="")
    return 0
