"""hf-noisy fit: estimate the noise spec that turns a clean COCO file into a noisy one."""

from __future__ import annotations

import argparse

from ._options import add_option, number_in
from ._progress import add_progress_argument, show_progress

HELP = "estimate a noise spec (class noise, spatial ops, rates, parameters) from a clean/noisy pair"
DESCRIPTION = """\
Estimate the noise spec that turns CLEAN into NOISY (COCO files of the same images, or with --dataset two
configs of a dataset built by `hf-noisy build`), in the units of `hf-noisy noise --spec`: the class-noise
kind (symmetric, asymmetric within supercategory, or a matrix), its rate; which spatial ops, with their
rates and parameters, including the annotation-error ops (missing, duplicate, merge, split, box, shift,
vertex_dropout, crowd_flip). Annotations pair by id where the ids agree, else by mask IoU; the provenance fields
hf-noisy writes (noise_op, ...) are never read. Prints a table with a 95% interval for every rate and sigma
(a share of agreeing instances for kernels and tolerances) and writes the spec (YAML; a matrix kind also
writes SPEC.matrix.json beside it). A fit cannot know the seed: the spec's is 0.

examples:
  hf-noisy noise instances_train2017.json -o hard.json --spec hard
  hf-noisy fit instances_train2017.json hard.json -o fitted.yaml
  hf-noisy fit --dataset coco-n clean coco-rem -o rem.yaml      # two configs of a build
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clean", help="clean COCO instance file (with --dataset: a config name, e.g. clean)")
    parser.add_argument("noisy", help="noisy COCO instance file over the same images (with --dataset: a config name)")
    add_option(parser, "-o", "--out", aliases=("--output",),
               help="spec YAML to write (atomic); without it, only the table")
    add_option(parser, "--dataset", aliases=("--build",),
               help="dataset folder (or Hub id) built by `hf-noisy build`: CLEAN and NOISY are configs")
    parser.add_argument("--min-iou", type=number_in(0, 1, open_low=True), default=0.1,
                        help="least mask IoU of a pair matched by IoU (default 0.1)")
    parser.add_argument("--max-images", type=int, default=None,
                        help="fit on the first N images of CLEAN only (a sample of a large file: a few ms per "
                        "instance)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sigma simulations and bootstrap (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..fsutil import atomic_write_text, check_output
    from ..noise.fit import fit_spec
    from ._pair import load_pair

    inputs = [args.dataset] if args.dataset else [args.clean, args.noisy]
    matrix_path = None
    if args.out:
        check_output(args.out, inputs, overwrite=args.overwrite)
        matrix_path = Path(args.out).with_suffix(".matrix.json")
        check_output(matrix_path, inputs, overwrite=True)
    progress = show_progress(args)
    clean, noisy = load_pair(args.clean, args.noisy, args.dataset, progress=progress)
    result = fit_spec(clean, noisy, min_iou=args.min_iou, seed=args.seed, max_images=args.max_images,
                      progress=progress)
    spec = result.spec_for(matrix_path.name if matrix_path else "matrix.json")
    if args.out:
        if spec.class_noise is not None and spec.class_noise.kind == "matrix":
            atomic_write_text(matrix_path, json.dumps(result.matrix) + "\n")
        atomic_write_text(args.out, spec.to_yaml(), overwrite=args.overwrite)
    if args.json:
        print(json.dumps({**result.to_dict(), "spec": spec.to_dict(), "output": args.out}))
        return 0
    print(result.table())
    print(f"wrote {args.out}" if args.out else "spec (not written: pass -o SPEC.yaml):")
    if not args.out:
        print(spec.to_yaml().rstrip())
    return 0
