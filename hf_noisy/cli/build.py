"""hf-noisy build: write a ready-to-push Hugging Face dataset folder (parquet configs + card)."""

from __future__ import annotations

import argparse
import sys

HELP = "build a versioned Hugging Face dataset folder (COCO-N: clean/easy/medium/hard configs)"
DESCRIPTION = """\
Build the COCO-N dataset repository folder from a COCO 2017 root (annotations/instances_{train,val}2017.json,
train2017/, val2017/): parquet shards per config and split, a README.md dataset card whose YAML `configs:`
lists them, and hf_noisy_benchmark.json (benchmark version, spec and input hashes, statistics). Noise goes on
train only; validation is always clean. The folder appears only once complete. Same inputs and arguments give
byte-identical files for any --num-proc.

Image storage: `shared` (default) stores the images once, in the `clean` config, and the noisy configs hold
annotations only (hf_noisy.hub.load_coco_n joins the images back); `embedded` puts the images in every config.

example:
  hf-noisy build coco-n --coco-root /data/coco --out coco-n --num-proc 8
  python -c "from datasets import load_dataset; print(load_dataset('coco-n', 'hard'))"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["coco-n"], help="which benchmark dataset to build")
    parser.add_argument("--coco-root", required=True, help="COCO 2017 root folder")
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--levels", default="clean,easy,medium,hard", help="comma-separated configs (default: all four)")
    parser.add_argument("--seed", type=int, default=1, help="noise seed (default 1 = benchmark v1.0)")
    parser.add_argument("--images", choices=["shared", "embedded"], default="shared", help="image storage (default: shared)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (output is identical for any value)")
    parser.add_argument("--max-images", type=int, default=None, help="only the first N images of each split (quick builds)")
    parser.add_argument("--images-per-shard", type=int, default=1000, help="rows per parquet file (default 1000)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out once the new folder is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..hub import build_coco_n

    result = build_coco_n(
        args.coco_root,
        args.out,
        levels=[level.strip() for level in args.levels.split(",") if level.strip()],
        seed=args.seed,
        images=args.images,
        num_proc=args.num_proc,
        max_images=args.max_images,
        images_per_shard=args.images_per_shard,
        overwrite=args.overwrite,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    meta = result.metadata
    print(f"wrote {result.path} ({meta['benchmark']} {meta['benchmark_version']}, seed {meta['seed']}, "
          f"images {meta['images']}) in {result.seconds:.1f} s")
    print(result.summary())
    return 0
