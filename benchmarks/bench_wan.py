"""COCO-WAN throughput: the released scripts' loop vs ``hf_noisy.wan.weak_annotate``, same model, same images.

Reference side (the structure of ``create_gt_plus_sam_*.py``, on transformers' SAM since no
``segment_anything`` checkpoint is available here): ``COCO()`` + ``annToMask`` for the prompts, each image
read with ``cv2.imread`` and embedded once (``SamPredictor.set_image``), then **one decoder call per prompt**
with all three masks upsampled and the argmax kept (``SamPredictor.predict``), each mask encoded with
``pycocotools`` and its box found with ``np.where``, the file written with ``json.dump``; its decoder runs in
float32, as the scripts' does. hf-noisy side: ``weak_annotate`` end to end (read + validate, prompts, batched decoder, RLE, cache, atomic
write) in a fresh cache directory. Both run in this process on the same images, after an untimed warm-up of
each, alternating which goes first (median of ``--repeats``); the script prints images/s, their ratio, and
how many mask pixels differ between the two outputs. It also times the stages on their own: the vision encoder
(seconds for all images, one forward each) and the decoder stage (prompts to full-size binary masks) one
prompt per call vs batched, since batching can only speed up the decoder stage; the batched stage is timed at
hf-noisy's default decoder precision (float64 on a CPU, which makes the output independent of the thread
count) and at float32, so the cost of that precision shows in the same run.

Models are random-initialised by :func:`hf_noisy.wan.random_sam` (no weights can be downloaded here): ``tiny``
(64-d, 256 px input), ``mid`` (256-d ViT with 4 layers at 512 px and SAM's real-size prompt encoder and mask
decoder) and ``huge`` (the ViT-H config, 1024 px: for a GPU, e.g. ``--device cuda --dtype bfloat16``).

    python benchmarks/bench_wan.py --models tiny mid --num-images 12 --prompt point
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hf_noisy.cli import add_option

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))
COCO_TINY = SHARED / "data" / "coco-tiny"


def subset(n: int, target: Path) -> tuple[Path, int]:
    """The first ``n`` images of coco-tiny train with their annotations; returns the file and prompt count."""
    data = json.loads((COCO_TINY / "annotations" / "instances_train2017.json").read_text())
    data["images"] = data["images"][:n]
    ids = {image["id"] for image in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    target.write_text(json.dumps(data))
    return target, sum(1 for a in data["annotations"] if not a["iscrowd"])


def reference_loop(input_path: Path, images: Path, output: Path, model: Path, kind: str, device: str, dtype: str) -> dict:
    """The released scripts' per-object loop on transformers' SAM (crowd regions skipped, as hf-noisy's default,
    so that both sides do the same work). Returns ``{annotation id: RLE}``."""
    import pycocotools.mask as mask_utils
    from pycocotools.coco import COCO

    from hf_noisy.wan import SamSegmenter, load_image

    segmenter = SamSegmenter(model, device=device, dtype=dtype, decoder_dtype=dtype)  # the scripts' precision
    coco = COCO(str(input_path))
    new_anns = {}
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        if not anns:
            continue
        prompts = []
        for ann in anns:
            rows, cols = np.where(coco.annToMask(ann))
            box = [float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())]
            prompts.append(box if kind == "box" else [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        prepared = segmenter.prepare([load_image(images / info["file_name"], info["height"], info["width"])])
        embedding = segmenter.embed(prepared)
        masks = segmenter.segment_one_by_one(embedding, kind, prompts, prepared.original_sizes[0], prepared.reshaped_sizes[0])
        for ann, mask in zip(anns, masks.masks):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            rows, cols = np.where(mask)
            bbox = [int(cols.min()), int(rows.min()), int(cols.max() - cols.min()), int(rows.max() - rows.min())] if len(rows) else [0, 0, 0, 0]
            new_anns[ann["id"]] = {"segmentation": rle, "bbox": bbox, "area": int(mask.sum())}
    output.write_text(json.dumps(list(new_anns.values())))
    return {key: value["segmentation"] for key, value in new_anns.items()}


def decoder_ratio(input_path: Path, images: Path, model: Path, kind: str, device: str, dtype: str, batch_size: int,
                  repeats: int) -> dict:
    """The decoder stage alone (prompts to full-size binary masks, embeddings computed beforehand): one call
    per prompt at the scripts' precision vs hf-noisy's batched calls at its default decoder precision (float64
    on a CPU, for thread-count independence) and at the scripts' precision, and the vision encoder's time."""
    from hf_noisy.wan import SamSegmenter, load_image, make_prompt

    data = json.loads(input_path.read_text())
    segmenter = SamSegmenter(model, device=device, dtype=dtype)
    reference = SamSegmenter(model, device=device, dtype=dtype, decoder_dtype=dtype)
    work, encode_s = [], 0.0
    for info in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == info["id"] and not a["iscrowd"]]
        prompts = [make_prompt(kind, a["segmentation"], info["height"], info["width"]) for a in anns]
        prepared = segmenter.prepare([load_image(images / info["file_name"], info["height"], info["width"])])
        start = time.perf_counter()
        embedding = segmenter.embed(prepared)
        encode_s += time.perf_counter() - start
        work.append((embedding, [p for p in prompts if p is not None], prepared.original_sizes[0], prepared.reshaped_sizes[0]))
    one, batched, batched_ref = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for embedding, prompts, size, resized in work:
            reference.segment_one_by_one(embedding, kind, prompts, size, resized)
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        for embedding, prompts, size, resized in work:
            segmenter.segment(embedding, kind, prompts, size, resized, batch_size=batch_size)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        for embedding, prompts, size, resized in work:
            reference.segment(embedding, kind, prompts, size, resized, batch_size=batch_size)
        batched_ref.append(time.perf_counter() - start)
    one_s, batched_s, batched_ref_s = (float(np.median(t)) for t in (one, batched, batched_ref))
    return {"decoder_ratio": one_s / batched_s, "encoder_s": encode_s, "decoder_one_s": one_s, "decoder_batched_s": batched_s,
            "decoder_batched_ref_s": batched_ref_s, "decoder_dtype": str(segmenter.decoder_dtype).removeprefix("torch.")}


def bench(size: str, n_images: int, kind: str, device: str, dtype: str, batch_size: int, image_batch_size: int,
          repeats: int, work: Path) -> dict:
    import pycocotools.mask as mask_utils

    from hf_noisy.wan import random_sam, weak_annotate

    model = random_sam(work / f"sam-{size}", size=size)
    input_path, prompts = subset(n_images, work / "input.json")
    images = COCO_TINY / "train2017"

    def run_reference(source: Path) -> dict:
        return reference_loop(source, images, work / "ref.json", model, kind, device, dtype)

    def run_ours(source: Path, cache: str) -> None:
        weak_annotate(source, images, work / "ours.json", prompt=kind, model=model, device=device, dtype=dtype,
                      batch_size=batch_size, image_batch_size=image_batch_size, cache_dir=work / cache)

    warm, _ = subset(2, work / "warm.json")  # untimed: first kernels, lazy imports, file caches
    run_reference(warm)
    run_ours(warm, "cache-warm")
    ref_times, our_times = [], []
    for r in range(repeats):  # alternate which side goes first
        for side in ("ref", "ours") if r % 2 == 0 else ("ours", "ref"):
            start = time.perf_counter()
            if side == "ref":
                reference = run_reference(input_path)
            else:
                run_ours(input_path, f"cache-{r}")
            (ref_times if side == "ref" else our_times).append(time.perf_counter() - start)
    decoder = decoder_ratio(input_path, images, model, kind, device, dtype, batch_size, repeats)
    ours = {a["id"]: a["segmentation"] for a in json.loads((work / "ours.json").read_text())["annotations"] if a["noise_op"] != "none"}
    assert ours.keys() == reference.keys()
    differ = sum(int((mask_utils.decode(ours[k]) != mask_utils.decode(reference[k])).sum()) for k in ours)
    total = sum(int(np.prod(reference[k]["size"])) for k in reference)
    ref_s, our_s = float(np.median(ref_times)), float(np.median(our_times))
    return {"model": size, "images": n_images, "prompts": prompts, "reference_img_per_s": n_images / ref_s,
            "hf_noisy_img_per_s": n_images / our_s, "ratio": ref_s / our_s, "pixels_differ": differ, "pixels": total, **decoder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny"], choices=["tiny", "mid", "huge"])
    add_option(parser, "--num-images", aliases=("--images",), type=int, default=12, help="coco-tiny train images (default 12)")
    parser.add_argument("--prompt", choices=["box", "point"], default="point")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (median; default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: steadier timings on a shared machine)")
    args = parser.parse_args()
    if not COCO_TINY.is_dir():
        raise SystemExit(f"coco-tiny not found at {COCO_TINY} (set HF_NOISY_SHARED)")
    import torch

    torch.set_num_threads(args.threads)
    print(f"device {args.device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}, prompt {args.prompt}")
    print(f"{'model':<6}{'images':>7}{'prompts':>8}{'ref img/s':>11}{'ours img/s':>12}{'ratio':>8}"
          f"{'encoder s':>11}{'decoder 1-by-1 s':>18}{'batched s':>11}{'ratio':>8}{'batched f32 s':>15}  masks")
    for size in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            row = bench(size, args.num_images, args.prompt, args.device, args.dtype, args.batch_size,
                        args.image_batch_size, args.repeats, Path(tmp))
        same = "identical" if row["pixels_differ"] == 0 else f"{row['pixels_differ']} of {row['pixels']} pixels differ"
        print(f"{row['model']:<6}{row['images']:>7}{row['prompts']:>8}{row['reference_img_per_s']:>11.2f}"
              f"{row['hf_noisy_img_per_s']:>12.2f}{row['ratio']:>7.2f}x{row['encoder_s']:>11.2f}"
              f"{row['decoder_one_s']:>18.2f}{row['decoder_batched_s']:>11.2f}{row['decoder_ratio']:>7.2f}x"
              f"{row['decoder_batched_ref_s']:>15.2f}  {same}")
    print("ours: batched decoder in the default precision (float64 on a CPU: thread-count independent); "
          "batched f32: the same calls at the scripts' float32; ref: one call per prompt at float32")


if __name__ == "__main__":
    main()
