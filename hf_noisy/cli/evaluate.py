"""hf-noisy evaluate: mask AP, Boundary AP and box AP of COCO results against a COCO or LVIS ground truth."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "score COCO results (RLE masks) against COCO or LVIS ground truth: mask AP, Boundary AP, box AP"
DESCRIPTION = """\
Evaluate detections in COCO results format (a JSON list of {image_id, category_id, segmentation RLE, score,
optional bbox}) against a COCO instance file, with the 12 COCO summary numbers per IoU type.
Boundary AP follows Boundary IoU (Cheng et al. 2021): IoU = min(mask IoU, boundary IoU).
Box-only results (bbox, no segmentation) and a box-only ground truth are scored with --iou-types bbox, as
pycocotools' loadRes scores them (box area, the box as the mask).

An LVIS ground truth (images with neg_category_ids / not_exhaustive_category_ids, or categories with a
frequency) is scored under LVIS's federated rules: detections of categories an image does not list are not
penalised, unmatched detections of not-exhaustively-annotated categories are ignored, the 300 best detections
per image are kept, and the numbers are AP, AP50, AP75, APs, APm, APl, APr, APc, APf, AR, ARs, ARm, ARl (as
the lvis package). --lvis / --no-lvis override the detection.

example:
  hf-noisy evaluate --annotations instances_val2017.json --predictions results.json
  hf-noisy evaluate --annotations instances_val2017.json --predictions results.json --iou-types segm,boundary --json
  hf-noisy evaluate --annotations lvis_v1_val.json --predictions results.json --json        # LVIS rules, detected
  hf-noisy evaluate --annotations lvis_v1_val.json --predictions results.json --num-proc 4   # same numbers

The results file is read in bounded memory (a few hundred bytes per detection), whatever its size.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--annotations", aliases=("--gt",), required=True,
               help="ground truth: the COCO or LVIS instance file")
    parser.add_argument("--predictions", required=True, help="COCO results JSON file")
    parser.add_argument("--iou-types", default="segm,bbox,boundary", help="comma-separated: segm, bbox, boundary")
    parser.add_argument("--dilation-ratio", type=float, default=None,
                        help="boundary width / image diagonal (default: the Boundary IoU paper's, "
                             "hf_noisy.metrics.DEFAULT_DILATION_RATIO)")
    parser.add_argument("--max-dets", type=int, default=None,
                        help="COCO rules: detections kept per image and category (default 100); "
                             "LVIS rules: detections kept per image (default 300)")
    rules = parser.add_mutually_exclusive_group()
    rules.add_argument("--lvis", dest="lvis", action="store_const", const=True, default=None,
                       help="LVIS federated rules (default: when the ground truth is LVIS-style)")
    rules.add_argument("--no-lvis", dest="lvis", action="store_const", const=False, help="COCO rules, always")
    parser.add_argument("--num-proc", type=int, default=None,
                        help="processes that evaluate images (default: the CPUs this process may use); "
                             "the numbers are the same for any value")
    parser.add_argument("--per-category", action="store_true", help="also report AP per category")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from ..coco import load_coco
    from ..metrics import (DEFAULT_DILATION_RATIO, LVIS, PredictionError, available_cpus, check_ground_truth, evaluate,
                           protocol_for)

    gt = load_coco(args.annotations, allow_empty_masks=True, require_segmentation=False)  # box-only: bbox scoring only
    predictions = args.predictions  # streamed from the file, in bounded memory
    num_proc = available_cpus() if args.num_proc is None else args.num_proc
    iou_types = [name.strip() for name in args.iou_types.split(",") if name.strip()]
    check_ground_truth(gt, iou_types, source=args.annotations)
    protocol = protocol_for(gt, {None: "auto", True: "lvis", False: "coco"}[args.lvis])
    max_dets = protocol.max_detections if args.max_dets is None else args.max_dets
    dilation_ratio = DEFAULT_DILATION_RATIO if args.dilation_ratio is None else args.dilation_ratio
    try:
        results = evaluate(gt, predictions, protocol, iou_types, dilation_ratio=dilation_ratio,
                           max_dets=max_dets, num_proc=num_proc, progress=show_progress(args))
    except PredictionError as err:  # name the file the detection is in
        if str(err).startswith(str(args.predictions)):
            raise
        raise PredictionError(f"{args.predictions}: {err}") from None
    if args.json:
        out = {name: result.stats for name, result in results.items()}
        if args.per_category:
            out["per_category"] = {name: {str(k): v for k, v in result.per_category.items()}
                                   for name, result in results.items()}
        print(json.dumps(out))
        return 0
    names = {category["id"]: category["name"] for category in gt["categories"]}
    stat_names = list(next(iter(results.values())).stats)
    if protocol is LVIS:
        print(f"LVIS federated rules, {max_dets} detections per image; APr/APc/APf: rare/common/frequent categories\n")
    print(f"{'':>8}" + "".join(f"{name:>8}" for name in stat_names))
    for name, result in results.items():
        print(f"{name:>8}" + "".join(_cell(result.stats[key]) for key in stat_names))
    if args.per_category:
        print(f"\n{'category':<24}" + "".join(f"{name:>10}" for name in results))
        for category_id in sorted(names):
            print(f"{names[category_id][:24]:<24}"
                  + "".join(_cell(result.per_category[category_id], 10) for result in results.values()))
    print("\n-1 = undefined (no ground truth in that area range, frequency group or category)")
    return 0


def _cell(value: float, width: int = 8) -> str:
    return f"{'-1':>{width}}" if value < 0 else f"{value:>{width}.3f}"
