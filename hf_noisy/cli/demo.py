"""hf-noisy demo: the main job on built-in data."""

from __future__ import annotations

import argparse

from ._options import add_option, at_least

HELP = "make a small synthetic COCO dataset, noise it at every paper level, and summarise (no downloads)"
DESCRIPTION = """\
Run the whole pipeline on built-in data: a deterministic synthetic dataset of shapes (holes, thin objects,
touching objects, multi-part objects, crowd regions) is written as COCO, noised at the paper's easy, medium and
hard levels, drawn as clean-vs-noisy overlays, built into a COCO-N-style Hugging Face dataset folder (parquet
configs clean/easy/medium/hard + card; needs the hub extra), loaded back with load_dataset, and summarised.
Output goes to one folder (default ./hf-noisy-demo), written atomically; --overwrite replaces an earlier one.

example:
  hf-noisy demo
  hf-noisy demo -o /tmp/demo --num-images 50 --num-proc 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "-o", "--out", default="hf-noisy-demo",
               help="output folder (default: hf-noisy-demo in the current folder)")
    add_option(parser, "--num-images", aliases=("--images",), type=at_least(1), default=12,
               help="number of synthetic images (default 12)")
    parser.add_argument("--seed", type=int, default=1, help="noise seed (default 1, as the paper)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder (atomically, once the new one is complete)")


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    report = run_demo(args.out, num_images=args.num_images, seed=args.seed, num_proc=args.num_proc,
                      overwrite=args.overwrite)
    made = "coco/, noisy/{easy,medium,hard}.json, overlays/" + (", demo-shapes/" if report.hub_rows else "") + ", summary.md"
    print(f"hf-noisy demo: wrote {report.out_dir}/ ({made})\n")
    print(report.table)
    return 0
