"""Training input pipeline throughput (images/s in one worker, r50 resolution 1024) of hf_noisy.models.data against
the pipeline of transformers' example run_instance_segmentation_no_trainer.py, steps/s of the tiny model, and
the cost of ``--log-instance-losses`` (tiny model steps/s with per-instance recording on vs off, interleaved).

    python benchmarks/bench_train.py [--coco-root ../shared/data/coco-tiny] [--num-images 40] [--rounds 2]

Both pipelines start from the same dataset rows (images as stored bytes, masks as COCO RLE) and end with what
Mask2Former's forward takes (normalised pixel values, per-instance binary masks, class labels) at 1024:

* ours: decode JPEG, decode RLE masks, large-scale jitter (scale 0.1-2.0, 1024 crop, flip), normalise;
* example: decode the image (PIL via datasets), paint the masks into the example's (semantic, instance) map,
  its albumentations transforms (HorizontalFlip, RandomBrightnessContrast, HueSaturationValue) and the
  Mask2Former image processor resizing to 1024x1024 (``Mask2FormerImageProcessorPil``: no torchvision here).
  The map-painting step is timed separately too, so the ratio against the example's own work is shown as well.

Timings share the machine with other work: the two pipelines run interleaved, best round each, and the ratio
is what to read. Requires albumentations (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hf_noisy.cli import add_option

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))


def example_inputs(rows) -> list[tuple]:
    """(PIL image, (H, W, 2) semantic+instance map) per row, as the example's dataset would store them."""
    from hf_noisy.hub import to_masks

    out = []
    for row in rows:
        masks = to_masks(row)
        annotation = np.zeros((row["height"], row["width"], 2), np.uint8)
        for k, (obj, mask) in enumerate(zip(row["objects"], masks), start=1):
            if obj["iscrowd"] or k > 255:
                continue
            annotation[mask == 1] = (obj["category_id"] + 1, k)
        out.append((row["image"], annotation))
    return out


def run_example(inputs, transform, processor) -> None:
    for pil_image, annotation in inputs:
        output = transform(image=np.array(pil_image.convert("RGB")), mask=annotation)
        pairs = np.unique(output["mask"].reshape(-1, 2), axis=0)
        mapping = {int(instance): int(semantic) for semantic, instance in pairs}
        processor(images=[output["image"]], segmentation_maps=[output["mask"][..., 1]],
                  instance_id_to_semantic_id=mapping, return_tensors="pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco-root", default=str(REPO.parent / "shared" / "data" / "coco-tiny"))
    add_option(parser, "--num-images", aliases=("--images",), type=int, default=40, help="training images per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of the tiny model")
    parser.add_argument("--config", default="tiny", help="training config of the steps/s timings (tiny, cpu-fit)")
    parser.add_argument("--steps-only", action="store_true",
                        help="only the steps/s timings (no input-pipeline comparison, no albumentations needed)")
    args = parser.parse_args()

    import cv2
    import torch
    from transformers import Mask2FormerImageProcessorPil

    import train_mask2former as m2f
    from hf_noisy.hub import build_benchmark, load_coco_n
    from hf_noisy.models import data as m2f_data
    from hf_noisy.models import mask2former

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        built = build_benchmark("coco-n", Path(tmp) / "coco-n", coco_root=args.coco_root, configs=["clean"],
                                images="embedded", max_images=args.num_images).path
        rows = load_coco_n(built, "clean", split="train")
        if not args.steps_only:
            import albumentations as A

            config = m2f.load_config("r50")
            ours = m2f_data.TrainDataset(rows, m2f_data.Jitter(config.image_size, config.min_scale, config.max_scale,
                                                               config.flip_prob), seed=0)
            transform = A.Compose([A.HorizontalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5), A.HueSaturationValue(p=0.1)])
            processor = Mask2FormerImageProcessorPil(size={"height": config.image_size, "width": config.image_size})
            best = {"ours": float("inf"), "example": float("inf"), "example (maps given)": float("inf")}
            for r in range(args.rounds):
                start = time.perf_counter()
                for i in range(len(ours)):
                    ours[(r, i)]
                best["ours"] = min(best["ours"], time.perf_counter() - start)
                start = time.perf_counter()
                inputs = example_inputs(rows)
                painted = time.perf_counter()
                run_example(inputs, transform, processor)
                end = time.perf_counter()
                best["example"] = min(best["example"], end - start)
                best["example (maps given)"] = min(best["example (maps given)"], end - painted)
            n = len(ours)
            print(f"input pipeline at {config.image_size}, {n} coco-tiny train images, one worker (best of {args.rounds}):")
            for name, seconds in best.items():
                print(f"  {name:<22} {n / seconds:7.1f} images/s")
            print(f"  ratio ours / example:              {best['example'] / best['ours']:.2f}x")
            print(f"  ratio ours / example (maps given): {best['example (maps given)'] / best['ours']:.2f}x")

        tiny = m2f.load_config(args.config)
        model = mask2former.build_model(tiny, m2f_data.class_names_of(rows))
        optimizer = torch.optim.AdamW(mask2former.param_groups(model, tiny), lr=tiny.learning_rate)
        small = m2f_data.TrainDataset(rows, m2f_data.Jitter(tiny.image_size, tiny.min_scale, tiny.max_scale,
                                                            tiny.flip_prob), seed=0)
        batches = [m2f_data.collate([small[(0, (2 * i) % len(small))], small[(0, (2 * i + 1) % len(small))]])
                   for i in range(args.steps + 2)]

        from hf_noisy.models.instance_log import InstanceLossLog, provenance_of
        from hf_noisy.models.losses import install_class_loss

        install_class_loss(model, "ce")
        log = InstanceLossLog(Path(tmp) / "run", 0, provenance_of(rows))

        def step(batch, record: bool):
            model.criterion.record_instances = record
            loss = model(pixel_values=batch["pixel_values"], mask_labels=batch["mask_labels"],
                         class_labels=batch["class_labels"]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if record:
                log.add(step=0, epoch=0, micro_batch=0, batch=batch, instances=model.criterion.last_instances)

        for batch in batches[:2]:  # warm-up
            step(batch, False)
        wall = {False: 0.0, True: 0.0}
        cpu = {False: 0.0, True: 0.0}
        for i, batch in enumerate(batches[2:]):
            for record in ((False, True) if i % 2 == 0 else (True, False)):  # interleaved, alternating order
                start, start_cpu = time.perf_counter(), time.process_time()
                step(batch, record)
                wall[record] += time.perf_counter() - start
                cpu[record] += time.process_time() - start_cpu
        log.flush()
        print(f"{args.config} model ({tiny.image_size}x{tiny.image_size}, batch {tiny.per_device_batch_size}, one CPU "
              f"thread), {args.steps} steps each way:")
        for record, name in ((False, "off"), (True, "on")):
            print(f"  --log-instance-losses {name:<3}  {args.steps / wall[record]:6.2f} steps/s wall, "
                  f"{cpu[record] / args.steps * 1000:7.1f} ms CPU per step")
        print(f"  time per step, on / off: {wall[True] / wall[False]:.2f}x wall, {cpu[True] / cpu[False]:.2f}x CPU")
        print("no GPU was lent to this task: r50 bf16 steps/s and peak memory are not measured here")


if __name__ == "__main__":
    main()
