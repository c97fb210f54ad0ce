"""hf-noisy quality: how far noisy annotations are from the clean ones (mask/Boundary AP, mean IoUs per op)."""

from __future__ import annotations

import argparse

from ._progress import add_progress_argument, show_progress

HELP = "score noisy annotations against the clean ones: mask AP, Boundary AP, mean mask/boundary IoU per op"
DESCRIPTION = """\
Score a noisy COCO file against the clean file it was made from: the noisy annotations as detections
(score 1.0) give mask AP and Boundary AP; each noisy annotation paired with the clean annotation of the same
id gives mean mask IoU and mean boundary IoU. Broken down by the op recorded in each annotation's
`noise_op` field when the noisy file has it. With --build, --clean and --noisy name two configs of a dataset
built by `hf-noisy build` (their train splits), e.g. a config wrapping a released file (`--precomputed`).

examples:
  hf-noisy noise instances_val2017.json -o noisy.json --spec medium
  hf-noisy quality --clean instances_val2017.json --noisy noisy.json
  hf-noisy quality --build coco-n --clean clean --noisy coco-n-hard-released
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clean", required=True, help="clean COCO instance file (with --build: a config name)")
    parser.add_argument("--noisy", required=True, help="noisy COCO instance file over the same images (with --build: "
                        "a config name)")
    parser.add_argument("--build", help="dataset folder (or Hub id) built by `hf-noisy build`: --clean and --noisy "
                        "are configs")
    parser.add_argument("--dilation-ratio", type=float, default=None,
                        help="boundary width / image diagonal (default: the Boundary IoU paper's, "
                             "hf_noisy.metrics.DEFAULT_DILATION_RATIO)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from ..metrics import DEFAULT_DILATION_RATIO, score_quality
    from ._pair import load_pair

    clean, noisy = load_pair(args.clean, args.noisy, args.build)
    ratio = DEFAULT_DILATION_RATIO if args.dilation_ratio is None else args.dilation_ratio
    report = score_quality(clean, noisy, dilation_ratio=ratio, progress=show_progress(args))
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"{'group':<16}{'anns':>7}{'paired':>8}{'flipped':>8}{'mask AP':>9}{'bnd AP':>9}{'mask IoU':>10}{'bnd IoU':>9}")
    for name, group in report.groups.items():
        print(f"{name:<16}{group.annotations:>7}{group.paired:>8}{group.class_flipped:>8}"
              f"{group.mask_AP:>9.3f}{group.boundary_AP:>9.3f}"
              f"{_iou(group.mean_mask_iou):>10}{_iou(group.mean_boundary_iou):>9}")
    return 0


def _iou(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
