"""hf-noisy wan: COCO-WAN weak-annotation noise, every mask re-made by SAM from a box or point prompt."""

from __future__ import annotations

import argparse

from ._options import add_option
from ._progress import add_progress_argument, show_progress

HELP = "re-make every mask with SAM from a weak prompt (COCO-WAN: box, point, point + class noise)"
DESCRIPTION = """\
Re-make every mask of a COCO instance file with SAM (transformers' SamModel) from a weak prompt made from the
clean annotation, as the paper's released COCO-WAN scripts do, and write a new COCO file. Each image is
embedded once and all its prompts go through the mask decoder in batches; of SAM's three masks the one with
the highest predicted IoU is kept.

Levels (Grad et al. 2024, sec. 3.4):
  easy    --prompt box                          the object's box (inclusive pixel box of the clean mask)
  medium  --prompt point                        the box centre as one positive point (even if off the object)
  hard    --prompt point --class-noise 0.4      the medium masks + 40% symmetric class noise (seed 1)

Every annotation keeps its id and gains noise_op (sam_box | sam_point | none), noise_param, sam_prompt
(original pixels), sam_iou (SAM's predicted IoU), class_flipped and original_category_id. Crowd regions are
kept as they are unless --include-crowd. Results are cached per chunk of images as they are made (in
--cache-dir, keyed by the input, model and options), so a killed run restarts where it stopped; the output
is written atomically once all images are done, and is byte-identical for any number of processes and
any thread count (on a CPU the mask decoder runs in float64; sam_iou is stored with 4 decimals).

examples:
  # offline smoke run: a random SAM (meaningless masks, every code path real) on the first 2 images
  hf-noisy random-sam smoke/tiny-sam
  hf-noisy wan instances_train2017.json --images train2017/ -o smoke/box.json --prompt box --model smoke/tiny-sam \\
      --max-images 2

  hf-noisy wan instances_train2017.json --images train2017/ -o wan/easy.json --prompt box
  hf-noisy wan instances_train2017.json --images train2017/ -o wan/medium.json --prompt point
  hf-noisy wan instances_train2017.json --images train2017/ -o wan/hard.json --prompt point --class-noise 0.4

  # several GPUs (or CPU processes): images are sharded, the main process merges
  accelerate launch --multi_gpu --num_processes 8 -m hf_noisy.cli wan instances_train2017.json \\
      --images train2017/ -o wan/medium.json --prompt point --dtype bfloat16
  # CPU only: accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \\
  #   --dynamo_backend no -m hf_noisy.cli wan ...   (hf-noisy picks gloo when there is no CUDA)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="clean COCO instance JSON")
    parser.add_argument("--images", required=True, help="folder holding the images (each image's file_name)")
    add_option(parser, "-o", "--out", aliases=("--output",), required=True,
               help="where to write the COCO JSON (atomic)")
    parser.add_argument("--prompt", choices=("box", "point"), required=True, help="box (easy) or point (medium, hard)")
    parser.add_argument("--class-noise", type=float, default=None, metavar="RATE",
                        help="symmetric class-noise rate on the SAM output (hard: 0.4)")
    parser.add_argument("--seed", type=int, default=1, help="class-noise seed (default: 1, the paper's)")
    parser.add_argument("--model", default="facebook/sam-vit-huge",
                        help="SAM checkpoint: Hub id or local folder (default: facebook/sam-vit-huge, the paper's ViT-H)")
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per mask-decoder call (default: 64)")
    parser.add_argument("--image-batch-size", type=int, default=4,
                        help="images per vision-encoder forward and per cache chunk (default: 4)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: the process's GPU, else CPU)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="model precision (default: float32, as the reference; bfloat16/float16 on GPU)")
    parser.add_argument("--decoder-dtype", choices=("float32", "float64", "bfloat16", "float16"), default=None,
                        help="mask decoder precision (default: float64 for a float32 model on a CPU, so that the output "
                             "does not depend on the thread count; else --dtype)")
    parser.add_argument("--cache-dir", default=None, help="resumable cache root (default: .hf-noisy-wan-cache beside -o)")
    parser.add_argument("--include-crowd", action="store_true",
                        help="prompt crowd regions too (the released scripts do); default: keep them as they are")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="only the first N images of the input's images list (file order) and their "
                             "annotations, for a quick run; the output holds just those")
    parser.add_argument("--num-workers", type=int, default=2, help="image-reading threads (default: 2)")
    add_progress_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")


def run(args: argparse.Namespace) -> int:
    import json

    from ..wan import weak_annotate

    summary = weak_annotate(
        args.input, args.images, args.out,
        prompt=args.prompt, class_noise=args.class_noise, seed=args.seed, model=args.model,
        batch_size=args.batch_size, image_batch_size=args.image_batch_size, device=args.device, dtype=args.dtype,
        decoder_dtype=args.decoder_dtype,
        cache_dir=args.cache_dir, include_crowd=args.include_crowd, max_images=args.max_images,
        num_workers=args.num_workers,
        progress=show_progress(args), overwrite=args.overwrite,
    )
    if summary is None:  # not the main process: it has nothing to report
        return 0
    if args.json:
        print(json.dumps({"output": str(args.out), **summary.to_dict()}))
    else:
        print(f"wrote {args.out} (prompt {args.prompt}, model {args.model})")
        print(summary.table())
    return 0
