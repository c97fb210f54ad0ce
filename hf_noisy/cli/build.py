"""hf-noisy build: write a ready-to-push Hugging Face dataset folder (parquet configs + card) for a benchmark."""

from __future__ import annotations

import argparse

from .. import benchmarks
from ._options import add_option
from ._progress import add_progress_argument, show_progress

from ._options import add_option


def _takes(option: str) -> str:
    """``(coco-n, lvis-n, coco-wan)``: the benchmarks whose source takes ``option``."""
    return "(" + ", ".join(name for name in benchmarks.ids() if option in benchmarks.get(name).options) + ")"


def _default_storage() -> str:
    """``embedded for coco-n, ...; none for cityscapes-n``: each benchmark's default image storage."""
    modes: dict[str, list[str]] = {}
    for name in benchmarks.ids():
        modes.setdefault(benchmarks.get(name).images, []).append(name)
    return "; ".join(f"{mode} for {', '.join(names)}" for mode, names in modes.items())


HELP = f"build a benchmark's Hugging Face dataset folder ({', '.join(benchmarks.ids())})"
DESCRIPTION = """\
Build a benchmark's dataset repository folder: parquet shards per config (clean/easy/medium/hard) and split
(train/validation), a README.md dataset card whose YAML `configs:` lists them, and hf_noisy_benchmark.json
(benchmark version, rules and input hashes, categories, statistics). Derived annotations go on train only;
validation is always clean. The folder appears only once complete. Same inputs and arguments give
byte-identical files for any --num-proc.

Sources (you obtain them yourself):
{sources}

Image storage: `embedded` puts the images in every config, so `load_dataset(DIR, "hard")` is complete
(content-defined chunking: the Hub's Xet storage keeps the repeated bytes once); `shared` stores them once, in
`clean`, for disk-limited local builds (hf_noisy.hub.load_coco_n joins them back); `none` stores annotations only
(load_coco_n(DIR, config, image_root=SOURCE_ROOT) joins your own images). The default follows the source's
terms: {defaults}
(Cityscapes forbids redistributing its images; `--image-storage embedded` makes a private copy, which `hf-noisy push`
refuses without --i-have-redistribution-rights).

examples:
  hf-noisy build coco-n --coco-root /data/coco --out coco-n --num-proc 8
  hf-noisy build lvis-n --lvis-root /data/lvis --coco-root /data/coco --out lvis-n
  hf-noisy build cityscapes-n --cityscapes-root /data/cityscapes --out cityscapes-n
  hf-noisy build coco-wan --coco-root /data/coco --wan-dir wan/ --out coco-wan
  hf-noisy build shapes-n --out shapes-n
  hf-noisy build coco-n --coco-root /data/coco --levels clean --precomputed coco-rem=instances_train2017_rem.json \\
      --out coco-rem      # a config wrapping a file made elsewhere (docs/guide/datasets.md, "Released files as configs")
  python -c "from datasets import load_dataset; print(load_dataset('coco-n', 'hard'))"
""".format(sources="\n".join(f"  {name:<13} {benchmarks.get(name).source_help}" for name in benchmarks.ids()),
           defaults=_default_storage())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=benchmarks.ids(), help="which benchmark dataset to build")
    parser.add_argument("--coco-root", help=f"COCO 2017 root folder {_takes('coco_root')}")
    parser.add_argument("--cityscapes-root", help=f"Cityscapes root folder {_takes('cityscapes_root')}")
    parser.add_argument("--lvis-root", help=f"folder with the LVIS train/val JSON files {_takes('lvis_root')}")
    parser.add_argument("--wan-dir", help="folder with easy.json, medium.json, hard.json from `hf-noisy wan` "
                        + _takes("wan_dir"))
    shapes = parser.add_argument_group("shapes-n (generated; same arguments give the same bytes)")
    shapes.add_argument("--num-train", type=int, default=1000, help="train images (default 1000)")
    shapes.add_argument("--num-val", type=int, default=100, help="validation images (default 100)")
    shapes.add_argument("--image-size", type=int, default=128, help="image side in pixels (default 128)")
    shapes.add_argument("--generator-seed", type=int, default=0,
                        help="seed of the images and clean annotations (default 0); --seed is the noise's")
    add_option(parser, "-o", "--out", required=True, help="dataset folder to create")
    parser.add_argument("--levels", default="clean,easy,medium,hard", help="comma-separated configs: clean, easy, medium, hard, or NAME=SPEC, a config noised by a "
                             "preset or spec file, e.g. erode7=erode.yaml (default: clean,easy,medium,hard)")
    parser.add_argument("--precomputed", action="append", default=[], metavar="NAME=FILE",
                        help="add a config NAME wrapping a COCO annotation file made elsewhere for the source's train "
                        "images (a released noisy set, a re-annotation); repeatable; its SHA-256 goes in the card")
    parser.add_argument("--seed", type=int, default=1, help="noise seed (default 1 = benchmark v1.0; not for coco-wan)")
    add_option(parser, "--image-storage", aliases=("--images",), choices=["embedded", "shared", "none"], default=None,
                        help="image storage (default: the benchmark's, following its source's terms; see above)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (output is identical for any value)")
    parser.add_argument("--max-images", type=int, default=None, help="only the first N images of each split (quick builds)")
    parser.add_argument("--images-per-shard", type=int, default=1000, help="rows per parquet file (default 1000)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out once the new folder is complete")
    add_progress_argument(parser)
    parser.add_argument("--no-verify-images", action="store_true",
                        help="skip decoding every image before writing (each image's size is checked anyway)")


def run(args: argparse.Namespace) -> int:
    from ..errors import HfNoisyError
    from ..hub import build_benchmark

    record = benchmarks.get(args.dataset)
    missing = [f"--{name.replace('_', '-')}" for name in record.needs if not getattr(args, name)]
    if missing:
        raise HfNoisyError(f"{args.dataset} needs {' and '.join(missing)}")
    if record.generated and (args.max_images is not None or args.no_verify_images):
        raise HfNoisyError(f"{args.dataset} is generated: use --num-train/--num-val, not --max-images or "
                           "--no-verify-images")
    precomputed: dict[str, str] = {}
    for item in args.precomputed:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip() or name.strip() in precomputed:
            raise HfNoisyError(f"--precomputed takes distinct NAME=FILE, got {item!r}")
        precomputed[name.strip()] = path.strip()
    result = build_benchmark(
        args.dataset, args.out, configs=[level.strip() for level in args.levels.split(",") if level.strip()],
        seed=args.seed, images=args.image_storage, num_proc=args.num_proc, max_images=args.max_images,
        images_per_shard=args.images_per_shard, overwrite=args.overwrite,
        progress=show_progress(args), verify_images=not args.no_verify_images,
        precomputed=precomputed,
        **{name: getattr(args, name) for name in record.options})
    meta = result.metadata
    print(f"wrote {result.path} ({meta['benchmark']} {benchmarks.version_label(meta)}, images {meta['images']}) "
          f"in {result.seconds:.1f} s")
    print(result.summary())
    return 0
