"""hf-noisy evaluate: mask AP, Boundary AP and box AP of COCO results against a COCO ground truth."""

from __future__ import annotations

import argparse

HELP = "score COCO results (RLE masks) against ground truth: mask AP, Boundary AP, box AP"
DESCRIPTION = """\
Evaluate detections in COCO results format (a JSON list of {image_id, category_id, segmentation RLE, score,
optional bbox}) against a COCO instance file, with the 12 COCO summary numbers per IoU type.
Boundary AP follows Boundary IoU (Cheng et al. 2021): IoU = min(mask IoU, boundary IoU).

example:
  hf-noisy evaluate --gt instances_val2017.json --predictions results.json
  hf-noisy evaluate --gt instances_val2017.json --predictions results.json --iou-types segm,boundary --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground-truth COCO instance file")
    parser.add_argument("--predictions", required=True, help="COCO results JSON file")
    parser.add_argument("--iou-types", default="segm,bbox,boundary", help="comma-separated: segm, bbox, boundary")
    parser.add_argument("--dilation-ratio", type=float, default=0.02, help="boundary width / image diagonal")
    parser.add_argument("--max-dets", type=int, default=100, help="detections kept per image and category")
    parser.add_argument("--per-category", action="store_true", help="also report AP per category")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from ..coco import load_coco
    from ..metrics import STAT_NAMES, evaluate_coco, load_predictions

    gt = load_coco(args.gt, allow_empty_masks=True)
    predictions = load_predictions(args.predictions)
    iou_types = [name.strip() for name in args.iou_types.split(",") if name.strip()]
    results = evaluate_coco(gt, predictions, iou_types, dilation_ratio=args.dilation_ratio, max_dets=args.max_dets)
    if args.json:
        out = {name: result.stats for name, result in results.items()}
        if args.per_category:
            out["per_category"] = {name: {str(k): v for k, v in result.per_category.items()}
                                   for name, result in results.items()}
        print(json.dumps(out))
        return 0
    names = {category["id"]: category["name"] for category in gt["categories"]}
    print(f"{'':>8}" + "".join(f"{name:>8}" for name in STAT_NAMES))
    for name, result in results.items():
        print(f"{name:>8}" + "".join(_cell(result.stats[key]) for key in STAT_NAMES))
    if args.per_category:
        print(f"\n{'category':<24}" + "".join(f"{name:>10}" for name in results))
        for category_id in sorted(names):
            print(f"{names[category_id][:24]:<24}"
                  + "".join(_cell(result.per_category[category_id], 10) for result in results.values()))
    print("\n-1 = undefined (no ground truth in that area range or category)")
    return 0


def _cell(value: float, width: int = 8) -> str:
    return f"{'-1':>{width}}" if value < 0 else f"{value:>{width}.3f}"
