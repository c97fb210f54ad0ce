"""hf-noisy export: one config and split of a built (or Hub) dataset back to a COCO instance file."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "write a config/split of a COCO-N dataset (folder or Hub id) as a COCO instance JSON"
DESCRIPTION = """\
Turn one config and split of a dataset built by `hf-noisy build` (a local folder, or a Hub id with --revision)
back into a COCO instance file for detectron2 / MMDetection: COCO category ids, RLE segmentations
(detectron2: INPUT.MASK_FORMAT=bitmask), noise provenance on each annotation. Written atomically.

example:
  hf-noisy export coco-n --dataset-config hard --split train -o instances_train2017_hard.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder or Hub id")
    add_option(parser, "--dataset-config", aliases=("--config",), required=True,
               help="the config to write: clean | easy | medium | hard | ...")
    parser.add_argument("--split", default="train", help="train | validation (or val) (default: train)")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True, help="COCO JSON to write")
    parser.add_argument("--revision", default=None, help="Hub revision (tag), e.g. v1.0")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..hub import export_coco

    kwargs = {"revision": args.revision} if args.revision else {}
    data = export_coco(args.dataset, args.dataset_config, args.split, args.out, overwrite=args.overwrite,
                       progress=show_progress(args), **kwargs)
    print(f"wrote {args.out}: {len(data['images'])} images, {len(data['annotations'])} annotations "
          f"({args.dataset_config}/{args.split})")
    return 0
