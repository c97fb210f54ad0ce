#!/usr/bin/env python
"""Train transformers' Mask2Former on any config of a noisy-label benchmark, with accelerate; score it with
hf-noisy's metric (mask AP, Boundary AP, box AP) on the clean validation split.

    accelerate launch train/train_mask2former.py --config r50 --dataset noisy-seg/coco-n --dataset-config hard \\
        -o runs/r50-hard

Configs (``train/configs/<name>.yaml`` or a path; keys: :class:`hf_noisy.models.TrainConfig`): ``tiny`` (random
tiny Swin, tests and smoke runs), ``r50`` and ``swin-s`` (the paper's rows; ImageNet-pretrained backbones). Every
config key is also a flag (``--learning-rate 5e-5``; dict keys take YAML: ``--mask2former '{num_queries: 50}'``).

Output: ``run_config.json``; ``checkpoints/step-NNNNNN/`` (accelerate state, ``config.json``, ``train_state.json``,
``metrics.json`` when evaluated there: :mod:`hf_noisy.models.checkpoints`); ``model/`` (the final model with its
``metrics.json`` and card, what ``--push-to-hub`` uploads); ``runs/`` (TensorBoard: ``tensorboard --logdir OUT/runs``).

Scientific hygiene: ``r50``/``swin-s`` start from ImageNet backbones only. A Mask2Former already trained on COCO
(or on this dataset's label set) leaks clean labels into a noisy-label run and needs ``--allow-coco-pretrained``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from hf_noisy import HfNoisyError
from hf_noisy.cli import add_option
from hf_noisy.models import (TrainConfig, checkpoint_folder, claim_output_dir, create_model_repo, latest_checkpoint,
                             load_checkpoint, publish, resume_hint, save_checkpoint, save_model, train_config,
                             upload_model, write_json)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: A shipped config by name (``train/configs/<name>.yaml``) or a YAML path, with overrides, validated.
load_config = functools.partial(train_config.load_config, config_dir=CONFIG_DIR)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, TrainConfig]:
    parser = argparse.ArgumentParser(  # prog: usage errors read `train_mask2former.py: error: ...`, as the others
        prog=Path(__file__).name, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python train/train_mask2former.py --config tiny --dataset coco-n --dataset-config hard -o out\n"
               "  accelerate launch --multi_gpu --num_processes 8 train/train_mask2former.py --config r50 \\\n"
               "      --dataset noisy-seg/coco-n --dataset-config hard -o runs/r50-hard\n"
               "  python train/train_mask2former.py --eval-only runs/r50-hard/model --dataset coco-n -o ev \\\n"
               "      --predictions-out ev/results.json")
    add = parser.add_argument
    add("--config", default="tiny", help="tiny | r50 | swin-s, or a YAML file (default: tiny)")
    add("--dataset", required=True, help="dataset folder or Hub id (anything load_dataset takes)")
    add("--dataset-config", default="clean", help="config to train on: clean | easy | medium | hard | ...")
    add("--revision", default=None, help="dataset revision (Hub tag, e.g. v1.0)")
    add("--image-root", default=None, help="your copy of the source's images, for an annotation-only build "
        "(Cityscapes-N's default): the source root given to hf-noisy build, e.g. /data/cityscapes")
    add_option(parser, "-o", "--out", aliases=("--output-dir",), dest="output_dir", metavar="OUTPUT_DIR", required=True,
               help="the run's folder: checkpoints, metrics, the model")
    add("--resume", nargs="?", const="latest", default=None,
        help="continue from a checkpoint folder (default: the latest in OUTPUT_DIR/checkpoints)")
    add("--eval-only", metavar="CKPT", default=None,
        help="evaluate this model (folder or Hub id) and exit; metrics go to OUTPUT_DIR/metrics.json")
    add("--predictions-out", default=None, help="write the final model's COCO results on --predict-split here")
    add("--fold", metavar="K/N", type=train_config.fold_arg, default=None,
        help="cross-fitting: train without fold K of N of the train split (row i is in fold i %% N), so that "
             "--predict-split train predicts images the model never saw; run K = 0..N-1 and give all N "
             "prediction files to hf-noisy audit")
    add("--predict-split", choices=["validation", "train"], default="validation",
        help="what --predictions-out holds: the evaluation split's results (default), or the train split's "
             "(with --fold: only the held-out fold's, out of sample)")
    add("--push-to-hub", metavar="REPO", default=None, help="upload the final model and metrics")
    add_option(parser, "--private", aliases=("--hub-private",), dest="hub_private", action="store_true",
               help="with --push-to-hub: create the Hub repo as private")
    add("--allow-coco-pretrained", action="store_true",
        help="allow starting from a Mask2Former already trained on COCO (leaks clean labels)")
    add("--overwrite", action="store_true", help="train into a non-empty OUTPUT_DIR")
    add("--log-instance-losses", action="store_true",
        help="every log_steps, record each matched instance's class, mask BCE and dice loss with its noise "
             "provenance in OUTPUT_DIR/instance_losses/ (parquet; hf-noisy analyze losses)")
    train_config.add_config_flags(parser, train_config.shipped_configs(CONFIG_DIR))
    args = parser.parse_args(argv)
    if args.predict_split == "train" and not args.predictions_out:
        parser.error("--predict-split train needs --predictions-out")
    if args.fold and args.eval_only:
        parser.error("--fold trains; it cannot be combined with --eval-only")
    return args, load_config(args.config, train_config.config_overrides(args))


def load_split(args: argparse.Namespace, config: str, split: str, limit: int | None):
    from hf_noisy.hub import load_coco_n

    kwargs = {"revision": args.revision} if args.revision else {}
    rows = load_coco_n(args.dataset, config, split=split, image_root=args.image_root, progress=True, **kwargs)
    if "image" not in rows.features:
        raise HfNoisyError(f"{args.dataset} is annotation-only (its source's images may not be redistributed): "
                           "pass --image-root with your copy of the source, e.g. --image-root /data/cityscapes")
    return rows.select(range(min(limit, len(rows)))) if limit else rows


# ---------------------------------------------------------------------------------------------- evaluation
def evaluation_rules(benchmark: str) -> tuple[str, int]:
    """``(protocol, detections per image)`` of ``benchmark`` as its registry record says (``("lvis", 300)`` for
    LVIS-N, ``("coco", 100)`` for the others). The one place the script asks for them."""
    from hf_noisy import benchmarks

    record = benchmarks.get(benchmark)
    return record.protocol, record.detections_per_image


def detections_per_image(model, benchmark: str) -> int:
    """(query, class) pairs kept per image: the LVIS limit (300), else ``min(num_queries, limit)``."""
    protocol, limit = evaluation_rules(benchmark)
    return limit if protocol == "lvis" else min(model.config.num_queries, limit)


def predict(accelerator, model, rows: Any, config: TrainConfig, categories: list[dict], benchmark: str,
            indices=None, frozen: list = ()) -> list[dict]:
    """COCO results of ``model`` on ``rows[indices]`` (default: all); the model is back in training mode after."""
    from hf_noisy.models import postprocess, train_mode

    model_ = accelerator.unwrap_model(model)
    results = postprocess.predict(model_, rows, [c["id"] for c in categories], indices=indices,
                                  batch_size=config.eval_batch_size, short_edge=config.eval_short_edge,
                                  max_size=config.eval_max_size, postprocess=config.mask_postprocess,
                                  top_k=detections_per_image(model_, benchmark), device=accelerator.device)
    train_mode(model, list(frozen))
    return results


def evaluate(accelerator, model, rows: Any, config: TrainConfig, categories: list[dict], frozen: list = (),
             benchmark: str = "coco-n", keep_predictions: bool = False) -> tuple[dict, list]:
    """Each rank predicts its share of ``rows`` (every ``num_processes``-th row) and adds it to an
    :class:`~hf_noisy.metrics.InstanceSegmentationAP` under the benchmark's protocol; the ranks' metrics are
    merged through its ``sync``. Returns ``({"segm"|"bbox"|"boundary": stats}, predictions)`` on the main process
    (every prediction, sorted by image and score, only with ``keep_predictions``), ``({}, [])`` elsewhere."""
    from accelerate.utils import gather_object

    from hf_noisy.hub import rows_to_coco
    from hf_noisy.metrics import InstanceSegmentationAP, available_cpus
    from hf_noisy.models import metric_inputs

    indices = range(accelerator.process_index, len(rows), accelerator.num_processes)
    with accelerator.autocast():
        mine = predict(accelerator, model, rows, config, categories, benchmark, indices=indices, frozen=frozen)
    protocol, limit = evaluation_rules(benchmark)
    metric = InstanceSegmentationAP(("segm", "bbox", "boundary"), protocol=protocol, categories=categories,
                                    max_dets=limit)
    metric.update(*metric_inputs(rows_to_coco(rows.select(indices), categories), mine),
                  num_proc=max(1, available_cpus() // accelerator.num_processes))  # the machine's CPUs, shared
    metric.sync(gather_object)
    count = sum(gather_object([len(mine)]))
    predictions = gather_object(mine) if keep_predictions else []
    if not accelerator.is_main_process:
        return {}, []
    if not count:
        accelerator.print(f"WARNING: no detections on {len(rows)} {config.eval_split} images, so every metric is 0: "
                          "each query's mask logits are below 0 everywhere, i.e. its mask is empty at the "
                          "threshold (sigmoid 0.5). The model has not learned masks yet: train longer or with a "
                          "larger learning rate (see train/configs/cpu-fit.yaml).")
    stats = {name: dict(result.stats) for name, result in metric.compute().items()}
    return stats, sorted(predictions, key=lambda p: (p["image_id"], -p["score"]))


def evaluate_and_record(accelerator, model, args: argparse.Namespace, config: TrainConfig, rows: Any,
                        categories: list[dict], frozen: list, benchmark: str, step: int, final: bool) -> dict:
    """:func:`evaluate` at ``step``; the main process writes the step's ``metrics.json`` beside its checkpoint
    (and the final predictions to ``--predictions-out``), logs to TensorBoard and prints one line."""
    write = final and bool(args.predictions_out) and args.predict_split == "validation"
    metrics, predictions = evaluate(accelerator, model, rows, config, categories, frozen, benchmark, write)
    if not accelerator.is_main_process:
        return metrics
    folder = checkpoint_folder(args.output_dir, step)
    if folder.is_dir():
        write_json(folder / "metrics.json", {"step": step, "dataset": str(args.dataset), "config": args.dataset_config,
                                             "split": config.eval_split, "num_images": len(rows), "metrics": metrics,
                                             "cpu_seconds": time.process_time()})  # this process's, since it started
    accelerator.log({f"eval/{name}_{k}": v for name, stats in metrics.items() for k, v in stats.items()
                     if k in ("AP", "AP50", "AP75")}, step=step)
    accelerator.print(f"step {step}: mask AP {metrics['segm']['AP']:.4f}, boundary AP "
                      f"{metrics['boundary']['AP']:.4f}, box AP {metrics['bbox']['AP']:.4f}")
    if write:
        write_json(Path(args.predictions_out), predictions)
    return metrics


def evaluate_only(accelerator, args: argparse.Namespace, config: TrainConfig, rows: Any, categories: list[dict],
                  benchmark: str) -> int:
    """``--eval-only CKPT``: score the saved model; ``OUTPUT_DIR/metrics.json`` (+ ``--predictions-out``)."""
    from transformers import Mask2FormerForUniversalSegmentation

    model = Mask2FormerForUniversalSegmentation.from_pretrained(args.eval_only).to(accelerator.device)
    metrics, predictions = evaluate(accelerator, model, rows, config, categories, benchmark=benchmark,
                                    keep_predictions=bool(args.predictions_out))
    if accelerator.is_main_process:
        write_json(Path(args.output_dir) / "metrics.json", {"checkpoint": args.eval_only, "split": config.eval_split,
                                                            "num_images": len(rows), "metrics": metrics})
        if args.predictions_out:
            write_json(Path(args.predictions_out), predictions)
        accelerator.print(json.dumps(metrics["segm"]))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


# ---------------------------------------------------------------------------------------------- training
def train_loop(accelerator, model, optimizer, scheduler, batches, state: dict, config: TrainConfig, *,
               instance_log=None, on_checkpoint=None, on_eval=None) -> None:
    """Optimizer steps from ``state["step"]`` to ``max_steps`` over ``batches`` (``(epoch, consumed, batch)``),
    logging, checkpointing and evaluating on schedule; ``state`` is updated in place."""
    import torch
    from tqdm.auto import tqdm

    criterion = accelerator.unwrap_model(model).criterion
    bar = tqdm(total=config.max_steps, initial=state["step"], desc="train", dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    while state["step"] < config.max_steps:
        step_loss, coming = 0.0, state["step"] + 1
        logged = coming % config.log_steps == 0 or coming in (1, config.max_steps)
        criterion.record_instances = instance_log is not None and logged
        for micro in range(config.gradient_accumulation_steps):
            epoch, consumed, batch = next(batches)
            last = micro == config.gradient_accumulation_steps - 1
            with (accelerator.no_sync(model) if not last else contextlib.nullcontext()), accelerator.autocast():
                out = model(pixel_values=batch["pixel_values"].to(accelerator.device),
                            mask_labels=[m.to(accelerator.device) for m in batch["mask_labels"]],
                            class_labels=[c.to(accelerator.device) for c in batch["class_labels"]])
                accelerator.backward(out.loss / config.gradient_accumulation_steps)
            step_loss += out.loss.item() / config.gradient_accumulation_steps
            if criterion.record_instances:
                instance_log.add(step=coming, epoch=epoch, micro_batch=micro, batch=batch,
                                 instances=criterion.last_instances)
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.update(step=coming, epoch=epoch, batch=consumed)
        bar.update(1)
        if logged:
            loss = accelerator.reduce(torch.tensor(step_loss, device=accelerator.device), "mean").item()
            accelerator.log({"train/loss": loss, "train/lr": scheduler.get_last_lr()[-1], "train/epoch": epoch},
                            step=coming)
            bar.set_postfix(loss=f"{loss:.3f}")
            accelerator.print(f"step {coming}: loss {loss:.4f}")
        if coming % config.checkpoint_steps == 0 or coming == config.max_steps:
            on_checkpoint()
        if coming % config.eval_steps == 0 or coming == config.max_steps:
            on_eval(coming == config.max_steps)
    bar.close()


def start_tracking(accelerator, args: argparse.Namespace, config: TrainConfig) -> None:
    """``run_config.json`` (the command line and the resolved config) and the TensorBoard tracker."""
    if accelerator.is_main_process:
        write_json(Path(args.output_dir) / "run_config.json",
                   {"args": {k: v for k, v in vars(args).items() if not k.startswith("cfg_")},
                    "config": dataclasses.asdict(config)})
    accelerator.init_trackers("runs", config={k: v for k, v in dataclasses.asdict(config).items()
                                              if isinstance(v, (int, float, str, bool))})


def training_batches(accelerator, config: TrainConfig, train_rows: Any, state: dict):
    """This rank's augmented micro-batches from the position in ``state`` on (see ``train_batches``)."""
    from hf_noisy.models import EpochBatchSampler, Jitter, TrainDataset, train_batches

    rank, world, size = accelerator.process_index, accelerator.num_processes, config.per_device_batch_size
    dataset = TrainDataset(train_rows, Jitter(config.image_size, config.min_scale, config.max_scale, config.flip_prob),
                           config.seed)
    per_epoch = EpochBatchSampler(len(dataset), size, seed=config.seed, epoch=0, rank=rank,
                                  world_size=world).batches_per_epoch()
    accelerator.print(f"world size {world}; {len(dataset)} training images; {per_epoch} micro-batches per rank and "
                      f"epoch; global batch {size * world * config.gradient_accumulation_steps}")
    print(f"rank {rank}/{world}: {per_epoch * size} samples per epoch", flush=True)
    return train_batches(dataset, size, seed=config.seed, rank=rank, world_size=world, epoch=state["epoch"],
                         start_batch=state["batch"], num_workers=config.num_workers)


def run(args: argparse.Namespace, config: TrainConfig, benchmark) -> int:
    """Train (or, with ``--eval-only``, evaluate) as the parsed command line says."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    from hf_noisy.models import InstanceLossLog, data, train_mode, training_recipe

    out, cpu = Path(args.output_dir), not torch.cuda.is_available()
    accelerator = Accelerator(cpu=cpu,  # under `accelerate launch --multi_gpu` on CPU: real gloo processes
                              mixed_precision="no" if cpu else config.mixed_precision,
                              log_with=None if args.eval_only else "tensorboard", project_dir=str(out),
                              # some Mask2Former parameters get no gradient in a step; DDP stops without this
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    log, rank, world = accelerator.print, accelerator.process_index, accelerator.num_processes
    if cpu and config.mixed_precision != "no":
        log(f"no GPU: training in float32 (the config asks for {config.mixed_precision})")
    categories, benchmark_id = benchmark.metadata["categories"], benchmark.metadata["benchmark_id"]
    eval_rows = load_split(args, args.dataset_config, config.eval_split, config.max_eval_images)
    if args.eval_only:
        return evaluate_only(accelerator, args, config, eval_rows, categories, benchmark_id)

    claim_output_dir(accelerator, out, resume=bool(args.resume), overwrite=args.overwrite)
    hub = (create_model_repo(args.push_to_hub, private=args.hub_private)  # a token problem stops the run now
           if args.push_to_hub and accelerator.is_main_process else None)
    train_rows, held_out_rows = load_split(args, args.dataset_config, "train", config.max_train_images), None
    if args.fold:
        training, held_out = data.fold_indices(len(train_rows), args.fold)
        held_out_rows, train_rows = train_rows.select(held_out), train_rows.select(training)
        log(f"fold {args.fold[0]}/{args.fold[1]}: training on {len(train_rows)} images, holding out {len(held_out_rows)}")
    set_seed(config.seed)  # the same initial weights on every rank
    model, optimizer, scheduler, frozen = training_recipe(config, data.class_names_of(eval_rows), log=log,
                                                          allow_coco_pretrained=args.allow_coco_pretrained)
    set_seed(config.seed, device_specific=True)  # from here on each rank draws its own points and dropout
    # the scheduler is stepped by hand, once per optimizer step (accelerate's wrapper steps it once per process)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    state = {"step": 0, "epoch": 0, "batch": 0}  # batch: micro-batches of this epoch already consumed per rank
    if args.resume:
        checkpoint = latest_checkpoint(out) if args.resume == "latest" else Path(args.resume)
        state = load_checkpoint(accelerator, checkpoint, per_device_batch_size=config.per_device_batch_size)
        log(f"resumed from {checkpoint} at step {state['step']} (epoch {state['epoch']}, batch {state['batch']})")
    instance_log = InstanceLossLog.resume(out, rank, train_rows, state["step"]) if args.log_instance_losses else None
    start_tracking(accelerator, args, config)
    batches = training_batches(accelerator, config, train_rows, state)
    metrics: dict = {}

    def checkpoint() -> None:
        if instance_log is not None:
            instance_log.flush()  # before the checkpoint: a checkpoint's steps are always on disk
        save_checkpoint(accelerator, model, checkpoint_folder(out, state["step"]),
                        {**state, "world_size": world, "per_device_batch_size": config.per_device_batch_size})

    def evaluation(final: bool) -> None:
        metrics.clear()
        metrics.update(evaluate_and_record(accelerator, model, args, config, eval_rows, categories, frozen,
                                           benchmark_id, state["step"], final))

    train_mode(model, frozen)
    started, first_step = time.perf_counter(), state["step"]
    train_loop(accelerator, model, optimizer, scheduler, batches, state, config, instance_log=instance_log,
               on_checkpoint=checkpoint, on_eval=evaluation)
    if args.predict_split == "train" and accelerator.is_main_process:
        rows = held_out_rows if args.fold else train_rows
        write_json(Path(args.predictions_out), predict(accelerator, model, rows, config, categories, benchmark_id,
                                                       frozen=frozen))
        log(f"wrote {'held-out' if args.fold else 'in-sample'} predictions on {len(rows)} train images to "
            f"{args.predictions_out}")
    log(f"trained to step {state['step']} ({state['step'] - first_step} steps in {time.perf_counter() - started:.1f} s)")
    save_final_model(accelerator, model, args, config, metrics, state["step"], benchmark_id, hub)
    return 0


def save_final_model(accelerator, model, args: argparse.Namespace, config: TrainConfig, metrics: dict, step: int,
                     benchmark: str, hub) -> None:
    """``OUTPUT_DIR/model`` (weights, image processor, metrics, card), complete or absent; pushed with ``hub``."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final_dir = Path(args.output_dir) / "model"
        record = {"step": step, "split": config.eval_split, "metrics": metrics}
        save_model(final_dir, accelerator.unwrap_model(model), image_size=(config.eval_short_edge, config.eval_max_size),
                   files={"metrics.json": json.dumps(record, indent=2) + "\n",
                          "README.md": model_card(args, config, metrics, benchmark)})
        if hub is not None:
            commit = upload_model(hub, final_dir, args.push_to_hub)
            accelerator.print(f"pushed {final_dir} to {args.push_to_hub} ({commit[:12]})")
    accelerator.wait_for_everyone()  # the ranks leave together, once the model is saved
    accelerator.end_training()


def model_card(args: argparse.Namespace, config: TrainConfig, metrics: dict, benchmark: str = "coco-n") -> str:
    """The final model's README.md (:func:`hf_noisy.models.publish.model_card`) for this command line."""
    recipe = (f"Trained with hf-noisy's `train/train_mask2former.py --config {args.config}` ({config.max_steps} "
              f"steps, class loss `{config.class_loss}`, seed {config.seed}"
              + (f", dataset revision `{args.revision}`" if args.revision else "") + ").")
    return publish.model_card(model_name=Path(args.push_to_hub or args.output_dir).name, dataset=str(args.dataset),
                              dataset_config=args.dataset_config, split=config.eval_split, metrics=metrics,
                              benchmark=benchmark, recipe=recipe, revision=args.revision)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line (before torch and transformers are imported, so ``--help`` and argument errors are
    instant), then train or evaluate. Ctrl-C stops with exit status 130 and says how to continue: checkpoints
    are only ever complete, so ``--resume`` continues from the last complete one."""
    from hf_noisy.hub import resolve_dataset

    args, config = parse_args(argv)
    benchmark = resolve_dataset(args.dataset, args.dataset_config, revision=args.revision)  # a typo fails here, at once
    try:
        return run(args, config, benchmark)
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch every rank gets the signal
            command = [sys.executable, sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else __file__]
            message = ("interrupted: evaluation stopped; nothing was written" if args.eval_only else
                       resume_hint(args.output_dir, command, argv if argv is not None else sys.argv[1:]))
            print(message, file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    from hf_noisy.errors import run_reporting_errors

    sys.exit(run_reporting_errors(main, Path(__file__).name))
