"""hf-noisy noise: noise a COCO instance file with a preset level or a spec file."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "noise a COCO instance file (class + spatial noise, paper levels or your own spec)"
DESCRIPTION = """\
Noise a COCO instance-annotation file and write a new one. Every output annotation keeps its id and records
what happened to it (noise_op, noise_param, class_flipped, original_category_id); the file's info.hf_noisy
records the spec, its hash, the package version and the input's SHA-256. Same input + spec + seed gives
byte-identical output for any --num-proc.

A spec may also draw annotation errors: missing, duplicate, merge, split, box, shift, vertex_dropout,
crowd_flip (docs/guide/annotation-errors.md). Instances they add get new ids that collide with
no other; they record noise_source_ids (and noise_offset for shift/duplicate).

Levels (Grad et al. 2024, Table 7):
  easy    20% class noise; scale k=3, localization sigma=2, approximation d=5, each with p=0.20
  medium  30% class noise; k=5, sigma=3, d=10, each with p=0.25
  hard    40% class noise; k=7, sigma=4, d=15, each with p=0.30

example:
  hf-noisy noise instances_train2017.json -o train_hard.json --spec hard --num-proc 4
  hf-noisy noise instances_train2017.json -o mine.json --spec my_spec.yaml --seed 7
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="COCO instance JSON to noise")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True,
               help="where to write the noisy COCO JSON (atomic)")
    parser.add_argument("--spec", default="hard", help="easy | medium | hard | PATH to a YAML/JSON spec (default: hard)")
    parser.add_argument("--seed", type=int, default=None, help="override the spec's seed")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (output is identical for any value)")
    parser.add_argument("--allow-empty-masks", action="store_true", help="accept input annotations whose mask is empty")
    add_progress_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")


def run(args: argparse.Namespace) -> int:
    import json
    import os

    # Noising makes no BLAS call, but OpenBLAS (numpy's, and OpenCV's own copy) starts a thread pool at import
    # whose threads spin: ~0.1-0.2 CPU-s per run on 2 cores. One thread unless the user chose otherwise;
    # set before numpy is imported (below).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from ..fsutil import check_output
    from ..noise import load_spec, noise_file

    check_output(args.out, [args.input, args.spec], overwrite=args.overwrite)
    spec = load_spec(args.spec, seed=args.seed)
    check_output(args.out, spec.input_files(), overwrite=args.overwrite)  # e.g. its class-noise matrix
    summary = noise_file(
        args.input,
        args.out,
        spec,
        num_proc=args.num_proc,
        progress=show_progress(args),
        allow_empty_masks=args.allow_empty_masks,
        overwrite=args.overwrite,
    )
    if args.json:
        print(json.dumps({"output": str(args.out), "spec_sha256": spec.sha256, **summary.to_dict()}))
    else:
        print(f"wrote {args.out} (spec {spec.name or args.spec}, seed {spec.seed}, sha256 {spec.sha256[:12]})")
        print(summary.table())
    return 0
