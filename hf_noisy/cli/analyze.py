"""hf-noisy analyze: noise diagnostics of training runs (per-instance losses) and of results (confidence)."""

from __future__ import annotations

import argparse
import json

from ._options import add_option, at_least, number_in
from ._progress import add_progress_argument, show_progress

HELP = "noise diagnostics: per-instance losses by noise type (Fig. 7/10), detection confidence (Fig. 6)"
DESCRIPTION = """\
losses RUN_DIR       a run of train_mask2former.py --log-instance-losses: mean and 25-75% band of class and mask
                     loss per epoch (or step bucket), clean vs each noise op vs class-flipped, as a PNG, and a
                     table of the AUROC of each loss for noisy vs clean instances (0.5: not separable)
confidence RESULTS.. COCO results files (e.g. one run per noise level): score histograms (> 0.5) in one PNG with a
                     legend, and each run's mean score and share of detections above 0.5

examples:
  hf-noisy analyze losses runs/tiny-hard -o runs/tiny-hard/losses.png
  hf-noisy analyze confidence runs/*/results.json --names clean,easy,medium,hard -o runs/confidence.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    losses = sub.add_parser("losses", help="per-instance losses of a run, by noise provenance")
    losses.add_argument("run_dir", metavar="RUN_DIR", help="the training run's output folder")
    add_option(losses, "-o", "--out", default=None, help="PNG to write (default: RUN_DIR/instance_losses.png)")
    losses.add_argument("--by", choices=("epoch", "step"), default="epoch", help="bucket rows by epoch or by step range")
    losses.add_argument("--buckets", type=at_least(1), default=10, help="--by step: number of equal step ranges")
    losses.add_argument("--json", action="store_true", help="print the summary and separability as JSON")
    losses.add_argument("--overwrite", action="store_true", help="replace an existing PNG (never an input)")
    add_progress_argument(losses)
    confidence = sub.add_parser("confidence", help="detection score histograms of several results files")
    confidence.add_argument("results", metavar="RESULTS", nargs="+", help="COCO results JSON files (.gz allowed)")
    confidence.add_argument("--names", default=None, help="comma-separated run names, one per file")
    add_option(confidence, "-o", "--out", default=None,
               help="PNG to write (default: confidence.png beside the first RESULTS file)")
    confidence.add_argument("--threshold", type=number_in(0, 1, open_high=True), default=0.5,
                            help="score threshold (default 0.5)")
    confidence.add_argument("--json", action="store_true", help="print the per-run numbers as JSON")
    confidence.add_argument("--overwrite", action="store_true", help="replace an existing PNG (never an input)")
    add_progress_argument(confidence)
    for subcommand in sub.choices.values():  # errors read `{subcommand.prog}: error: ...`, as argparse's
        subcommand.set_defaults(_prog=subcommand.prog)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..analysis import analyze_confidence, analyze_losses
    from ..fsutil import check_output

    if args.what == "losses":
        out = args.out or str(Path(args.run_dir) / "instance_losses.png")
        check_output(out, [args.run_dir] if args.out else [], overwrite=args.overwrite)
        report = analyze_losses(args.run_dir, figure=out, by=args.by, num_buckets=args.buckets,
                                progress=show_progress(args))
        if args.json:
            print(json.dumps({"by": report.by, "summary": report.summary, "separability": report.separability}))
        else:
            print(report.format_table())
            print(f"figure: {report.figure}")
        return 0
    out = args.out or str(Path(args.results[0]).parent / "confidence.png")
    check_output(out, args.results, overwrite=args.overwrite)
    for path in args.results:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
    names = args.names.split(",") if args.names else None
    report = analyze_confidence(args.results, names=names, threshold=args.threshold, figure=out,
                                progress=show_progress(args))
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "scores"} for r in report.runs]))
    else:
        print(report.format_table())
        print(f"figure: {report.figure}")
    return 0
