"""hf-noisy quality: how far noisy annotations are from the clean ones (mask/Boundary AP, mean IoUs per op)."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "score noisy annotations against the clean ones: mask AP, Boundary AP, mean mask/boundary IoU per op"
DESCRIPTION = """\
Score a noisy COCO file against the clean file it was made from: the noisy annotations as detections
(score 1.0) give mask AP and Boundary AP; each noisy annotation paired with the clean annotation of the same
id gives mean mask IoU and mean boundary IoU. Broken down by the op recorded in each annotation's
`noise_op` field when the noisy file has it. With --dataset, CLEAN and NOISY name two configs of a dataset
built by `hf-noisy build` (their train splits), e.g. a config wrapping a released file (`--precomputed`).

examples:
  hf-noisy noise instances_val2017.json -o noisy.json --spec medium
  hf-noisy quality instances_val2017.json noisy.json
  hf-noisy quality --dataset coco-n clean coco-n-hard-released
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clean", nargs="?", help="clean COCO instance file (with --dataset: a config name)")
    parser.add_argument("noisy", nargs="?", help="noisy COCO instance file over the same images (with --dataset: "
                        "a config name)")
    for name in ("clean", "noisy"):  # the old spellings, --clean FILE --noisy FILE (hidden)
        parser.add_argument(f"--{name}", dest=f"{name}_option", help=argparse.SUPPRESS)
    add_option(parser, "--dataset", aliases=("--build",),
               help="dataset folder (or Hub id) built by `hf-noisy build`: CLEAN and NOISY are configs")
    parser.add_argument("--dilation-ratio", type=float, default=None,
                        help="boundary width / image diagonal (default: the Boundary IoU paper's, "
                             "hf_noisy.metrics.DEFAULT_DILATION_RATIO)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_progress_argument(parser)


def _pair_names(args: argparse.Namespace) -> tuple[str, str]:
    """CLEAN and NOISY, each given once: as a positional argument or by its old option (``--clean``)."""
    from ..errors import HfNoisyError

    names = []
    for name in ("clean", "noisy"):
        given = [value for value in (getattr(args, name), getattr(args, f"{name}_option")) if value is not None]
        if len(given) != 1:
            raise HfNoisyError(f"give {name.upper()} once (the {name} file, or with --dataset a config name); "
                             f"got {len(given)}")
        names.append(given[0])
    return names[0], names[1]


def run(args: argparse.Namespace) -> int:
    import json

    from ..metrics import DEFAULT_DILATION_RATIO, score_quality
    from ._pair import load_pair

    progress = show_progress(args)
    clean, noisy = load_pair(*_pair_names(args), args.dataset, progress=progress)
    ratio = DEFAULT_DILATION_RATIO if args.dilation_ratio is None else args.dilation_ratio
    report = score_quality(clean, noisy, dilation_ratio=ratio, progress=progress)
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
