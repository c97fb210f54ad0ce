"""hf-noisy audit: find likely label errors in a COCO instance file with a model's predictions."""

from __future__ import annotations

import argparse

from ._options import add_option, at_least
from ._progress import add_progress_argument, show_progress

HELP = "score every annotation of a COCO file for being wrong (class, mask, spurious) and list missing ones"
DESCRIPTION = """\
Audit a COCO instance file (e.g. a train split) with a model's COCO results on the same images: every
annotation gets a score in [0, 1] (higher = more likely wrong) and a suspected kind (class, mask, spurious,
none); confident predictions that no annotation accounts for are listed as missing; dataset-level rates of
class flips and of dilated, eroded, shifted (localization) and polygon-approximated masks are estimated.
See hf_noisy.audit for the output format.

example:
  hf-noisy audit --annotations instances_train2017.json --predictions results.json -o audit.json
  hf-noisy audit --annotations instances_train2017.json --predictions results.json -o audit.json \\
      --images train2017 --top 20          # also audit_overlays/: the 20 worst, beside their predictions
  hf-noisy audit --annotations train.json --predictions fold0.json fold1.json -o audit.json   # cross-fitted
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="COCO instance file to audit")
    parser.add_argument("--predictions", required=True, nargs="+",
                        help="COCO results JSON of a model on the same images; several files are read as one "
                             "(the held-out folds of train_mask2former.py --fold K/N --predict-split train)")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True, help="audit JSON to write")
    parser.add_argument("--images", help="image folder: draw overlays of the most suspicious annotations")
    parser.add_argument("--top", type=at_least(0), default=20,
                        help="overlays of the first N flagged annotations, each numbered by its rank in the audit JSON "
                             "(default 20)")
    parser.add_argument("--overlays", help="overlay folder (default: <output>_overlays)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing audit JSON and overlay folder")
    parser.add_argument("--flag-score", type=float, default=0.3, help="score from which an annotation is flagged")
    parser.add_argument("--missing-score", type=float, default=0.5, help="prediction score for a missing annotation")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..audit import AuditConfig, audit_files

    config = AuditConfig(flag_score=args.flag_score, missing_score=args.missing_score)
    audit = audit_files(args.annotations, args.predictions, args.out, config=config, images=args.images,
                        top=args.top, overlays=args.overlays, overwrite=args.overwrite,
                        progress=show_progress(args))
    est = audit["estimated"]
    print(f"audited {est['annotations']} annotations: suspected {est['suspected']}, missing {est['missing']}; "
          f"wrote {args.out}")
    return 0
