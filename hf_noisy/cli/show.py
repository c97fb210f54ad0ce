"""hf-noisy show: clean vs noisy overlays of a few images, as PNG files."""

from __future__ import annotations

import argparse

from ._options import add_option, at_least

HELP = "render clean vs noisy overlays of a few images to PNG (like the paper's Fig. 3)"
DESCRIPTION = """\
Draw the clean annotations (left) and the noisy ones (right) of a few images side by side, with a legend
below. Fill colour is the class; a flipped class is marked with '*', a noised instance has its op in brackets
and an outline in the op's colour; a clean instance with no output is a dashed red box. Labels are scaled to
the image and placed without overlap (a label with no room is left out and counted in the legend).

example:
  hf-noisy show instances_val2017.json val_hard.json --images val2017/ -o overlays/ --num-images 6
  hf-noisy show instances_val2017.json val_hard.json --images val2017/ -o overlays/ --changed-only
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clean", help="clean COCO JSON")
    parser.add_argument("noisy", help="noisy COCO JSON (from hf-noisy noise)")
    parser.add_argument("--images", required=True, help="folder holding the images (file_name)")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True, help="folder for the PNG files")
    add_option(parser, "--num-images", aliases=("--num",), type=at_least(1), default=4,
               help="number of images (first ones in the file; default 4)")
    parser.add_argument("--image-ids", type=int, nargs="+", help="these image ids instead")
    parser.add_argument("--changed-only", action="store_true",
                        help="draw only the instances noise changed (and their clean counterparts)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing PNG files (never an input)")


def run(args: argparse.Namespace) -> int:
    from ..coco import load_coco
    from ..viz import render_overlays

    clean = load_coco(args.clean, allow_empty_masks=True)
    noisy = load_coco(args.noisy, allow_empty_masks=True)
    paths = render_overlays(clean, noisy, args.images, args.out, num_images=args.num_images, image_ids=args.image_ids,
                           overwrite=args.overwrite, changed_only=args.changed_only)
    for path in paths:
        print(path)
    return 0
