"""hf-noisy convert: a public dataset in its own layout to a COCO instance JSON."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "convert a dataset in its own layout (Cityscapes) to a COCO instance JSON"
DESCRIPTION = """\
Convert a local copy of a public dataset to a COCO instance-annotation file (compressed RLE masks, xywh boxes,
areas from the masks, crowd regions as iscrowd=1). The input folder is only read; the output is written
atomically (complete or not at all).

cityscapes: --root holds leftImg8bit/<split>/ and gtFine/<split>/ (download leftImg8bit_trainvaltest.zip and
  gtFine_trainvaltest.zip yourself from https://www.cityscapes-dataset.com; non-commercial research use only).
  The 8 evaluated instance classes (person, rider, car, truck, bus, train, motorcycle, bicycle) with their
  Cityscapes label ids and supercategories human / vehicle. Each instance in *_gtFine_instanceIds.png becomes
  one annotation with exactly its pixels; a group region (e.g. cargroup) becomes a crowd annotation. Frames
  with only *_gtFine_polygons.json are drawn by cityscapesScripts. image_id is computed from the frame name
  (frankfurt_000000_000294 -> 11000000000294), file_name is <city>/<frame>_leftImg8bit.png.

example:
  hf-noisy convert cityscapes --root /data/cityscapes --split val -o cityscapes_val.json
  hf-noisy noise cityscapes_train.json -o cityscapes_train_hard.json --spec hard
"""

#: dataset name -> (module under hf_noisy.sources, its converter function)
SOURCES = {"cityscapes": ("cityscapes", "convert_cityscapes")}
#: dataset name -> the folders under --root that it reads (the output may lie beside them, never over them)
READS = {"cityscapes": ("gtFine", "leftImg8bit")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(SOURCES), help="which dataset layout to read")
    parser.add_argument("--root", required=True, help="the dataset's root folder (read only)")
    parser.add_argument("--split", required=True, help="which split to convert: train | val (or validation) | test")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True, help="COCO JSON to write (atomic)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (output is identical for any value)")
    add_progress_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")


def run(args: argparse.Namespace) -> int:
    import importlib
    import os

    from ..coco import write_coco
    from ..fsutil import check_output

    check_output(args.out, [os.path.join(args.root, name) for name in READS[args.dataset]], overwrite=args.overwrite)
    module, function = SOURCES[args.dataset]
    convert = getattr(importlib.import_module(f"hf_noisy.sources.{module}"), function)
    data = convert(args.root, args.split, progress=show_progress(args), num_proc=args.num_proc)
    write_coco(data, args.out, overwrite=args.overwrite)
    crowd = sum(ann["iscrowd"] for ann in data["annotations"])
    print(f"wrote {args.out}: {len(data['images'])} images, {len(data['annotations']) - crowd} instances, "
          f"{crowd} crowd regions ({args.dataset} {args.split})")
    return 0
