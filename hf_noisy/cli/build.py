"""hf-noisy build: write a ready-to-push Hugging Face dataset folder (parquet configs + card) for a benchmark."""

from __future__ import annotations

import argparse
import sys

HELP = "build a benchmark's Hugging Face dataset folder (coco-n, cityscapes-n, lvis-n, coco-wan, shapes-n)"
DESCRIPTION = """\
Build a benchmark's dataset repository folder: parquet shards per config (clean/easy/medium/hard) and split
(train/validation), a README.md dataset card whose YAML `configs:` lists them, and hf_noisy_benchmark.json
(benchmark version, rules and input hashes, categories, statistics). Derived annotations go on train only;
validation is always clean. The folder appears only once complete. Same inputs and arguments give
byte-identical files for any --num-proc.

Sources (you obtain them yourself):
  coco-n        --coco-root DIR: annotations/instances_{train,val}2017.json, train2017/, val2017/
  cityscapes-n  --cityscapes-root DIR: leftImg8bit/{train,val}/, gtFine/{train,val}/ (instanceIds PNGs or polygons)
  lvis-n        --lvis-root DIR (lvis_v1_{train,val}.json or lvis_v0.5_*) and --coco-root DIR (the COCO 2017 images)
  coco-wan      --coco-root DIR and --wan-dir DIR holding easy.json, medium.json, hard.json from `hf-noisy wan`
  shapes-n      nothing: generated (--num-train, --num-val, --image-size, --generator-seed); the paper in miniature

Image storage: `embedded` puts the images in every config, so `load_dataset(DIR, "hard")` is complete
(content-defined chunking: the Hub's Xet storage keeps the repeated bytes once); `shared` stores them once, in
`clean`, for disk-limited local builds (hf_noisy.hub.load_coco_n joins them back); `none` stores annotations only
(load_coco_n(DIR, config, image_root=SOURCE_ROOT) joins your own images). The default follows the source's
terms: embedded for coco-n, lvis-n, coco-wan; none for cityscapes-n (Cityscapes forbids redistributing its
images; `--images embedded` makes a private copy, which `hf-noisy push` refuses without
--i-have-redistribution-rights).

examples:
  hf-noisy build coco-n --coco-root /data/coco --out coco-n --num-proc 8
  hf-noisy build lvis-n --lvis-root /data/lvis --coco-root /data/coco --out lvis-n
  hf-noisy build cityscapes-n --cityscapes-root /data/cityscapes --out cityscapes-n
  hf-noisy build coco-wan --coco-root /data/coco --wan-dir wan/ --out coco-wan
  hf-noisy build shapes-n --out shapes-n
  python -c "from datasets import load_dataset; print(load_dataset('coco-n', 'hard'))"
"""

#: benchmark -> the root options it needs
_ROOTS = {
    "coco-n": ("coco_root",),
    "cityscapes-n": ("cityscapes_root",),
    "lvis-n": ("lvis_root", "coco_root"),
    "coco-wan": ("coco_root", "wan_dir"),
    "shapes-n": (),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=list(_ROOTS), help="which benchmark dataset to build")
    parser.add_argument("--coco-root", help="COCO 2017 root folder (coco-n, lvis-n, coco-wan)")
    parser.add_argument("--cityscapes-root", help="Cityscapes root folder (cityscapes-n)")
    parser.add_argument("--lvis-root", help="folder with the LVIS train/val JSON files (lvis-n)")
    parser.add_argument("--wan-dir", help="folder with easy.json, medium.json, hard.json from `hf-noisy wan` (coco-wan)")
    shapes = parser.add_argument_group("shapes-n (generated; same arguments give the same bytes)")
    shapes.add_argument("--num-train", type=int, default=1000, help="train images (default 1000)")
    shapes.add_argument("--num-val", type=int, default=100, help="validation images (default 100)")
    shapes.add_argument("--image-size", type=int, default=128, help="image side in pixels (default 128)")
    shapes.add_argument("--generator-seed", type=int, default=0,
                        help="seed of the images and clean annotations (default 0); --seed is the noise's")
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--levels", default="clean,easy,medium,hard", help="comma-separated configs: clean, easy, medium, hard, or NAME=SPEC, a config noised by a "
                             "preset or spec file, e.g. erode7=erode.yaml (default: clean,easy,medium,hard)")
    parser.add_argument("--seed", type=int, default=1, help="noise seed (default 1 = benchmark v1.0; not for coco-wan)")
    parser.add_argument("--images", choices=["embedded", "shared", "none"], default=None,
                        help="image storage (default: embedded; none, annotation-only, for cityscapes-n)")
    parser.add_argument("--num-proc", type=int, default=1, help="worker processes (output is identical for any value)")
    parser.add_argument("--max-images", type=int, default=None, help="only the first N images of each split (quick builds)")
    parser.add_argument("--images-per-shard", type=int, default=1000, help="rows per parquet file (default 1000)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out once the new folder is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-verify-images", action="store_true",
                        help="skip decoding every image before writing (each image's size is checked anyway)")


def run(args: argparse.Namespace) -> int:
    from .. import hub
    from ..errors import HfNoisyError

    missing = [f"--{name.replace('_', '-')}" for name in _ROOTS[args.dataset] if not getattr(args, name)]
    if missing:
        raise HfNoisyError(f"{args.dataset} needs {' and '.join(missing)}")
    levels = [level.strip() for level in args.levels.split(",") if level.strip()]
    common = dict(levels=levels, images=args.images or hub.DEFAULT_IMAGES[args.dataset], num_proc=args.num_proc, max_images=args.max_images,
                  images_per_shard=args.images_per_shard, overwrite=args.overwrite,
                  progress=not args.no_progress and sys.stderr.isatty(), verify_images=not args.no_verify_images)
    if args.dataset == "coco-n":
        result = hub.build_coco_n(args.coco_root, args.out, seed=args.seed, **common)
    elif args.dataset == "cityscapes-n":
        result = hub.build_cityscapes_n(args.cityscapes_root, args.out, seed=args.seed, **common)
    elif args.dataset == "shapes-n":
        if args.max_images is not None or args.no_verify_images:
            raise HfNoisyError("shapes-n is generated: use --num-train/--num-val, not --max-images or --no-verify-images")
        common.pop("max_images"), common.pop("verify_images")
        result = hub.build_shapes_n(args.out, num_train=args.num_train, num_val=args.num_val,
                                    image_size=args.image_size, generator_seed=args.generator_seed, seed=args.seed,
                                    **common)
    elif args.dataset == "lvis-n":
        result = hub.build_lvis_n(args.lvis_root, args.coco_root, args.out, seed=args.seed, **common)
    else:
        result = hub.build_coco_wan(args.coco_root, args.wan_dir, args.out, **common)
    meta = result.metadata
    print(f"wrote {result.path} ({meta['benchmark']} {meta['benchmark_version']}, images {meta['images']}) "
          f"in {result.seconds:.1f} s")
    print(result.summary())
    return 0
