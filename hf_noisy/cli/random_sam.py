"""hf-noisy random-sam: write a random-initialised SAM checkpoint for offline smoke runs of ``hf-noisy wan``."""

from __future__ import annotations

import argparse

HELP = "write a random SAM checkpoint (no download) for offline smoke runs of `hf-noisy wan`"
DESCRIPTION = """\
Write a random-initialised transformers SAM (SamModel + SamProcessor, seeded) to a folder, for trying
`hf-noisy wan` without downloading weights: its masks are meaningless, but every code path is the real one.
Sizes: tiny (64-d, 256 px; seconds per image on a CPU), mid (SAM's real-size decoder, 512 px), huge (the
ViT-H configuration, 1024 px; for timing on a GPU).

example:
  hf-noisy random-sam smoke/tiny-sam          # smoke/: one folder for the whole smoke run
  hf-noisy wan instances_val2017.json --images val2017/ -o smoke/box.json --prompt box --model smoke/tiny-sam \\
      --max-images 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="folder to write, e.g. smoke/tiny-sam (refused if it exists, unless "
                        "--overwrite)")
    parser.add_argument("--size", choices=("tiny", "mid", "huge"), default="tiny", help="model size (default: tiny)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def run(args: argparse.Namespace) -> int:
    from ..wan import random_sam

    path = random_sam(args.output, size=args.size, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {path} (random SAM, size {args.size}, seed {args.seed}): use it as --model {path}")
    return 0
