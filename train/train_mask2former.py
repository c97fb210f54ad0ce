#!/usr/bin/env python
"""Train transformers' Mask2Former on any config of a noisy-label benchmark, with accelerate; score it with
hf-noisy's metric (mask AP, Boundary AP, box AP) on the clean validation split.

    accelerate launch train/train_mask2former.py --config r50 --dataset noisy-seg/coco-n --dataset-config hard \\
        --output-dir runs/r50-hard

Configs (``train/configs/<name>.yaml``, or a path): ``tiny`` (random tiny Swin, tests and smoke runs),
``r50`` and ``swin-s`` (the paper's Mask2Former rows; ImageNet-pretrained backbones). Every config key is also a
command-line flag (``--learning-rate 5e-5``; dict keys take YAML: ``--mask2former '{num_queries: 50}'``).

Output folder::

    run_config.json                  the resolved config and command line
    checkpoints/step-000500/         accelerate state (model.safetensors, optimizer, RNG per rank, scheduler)
                                     + config.json (loadable with from_pretrained) + train_state.json
                                     + metrics.json when evaluated at that step
    model/                           the final model (+ metrics.json, README.md), what --push-to-hub uploads
    runs/                            TensorBoard logs (``tensorboard --logdir OUT/runs``)

Scientific hygiene: ``r50``/``swin-s`` start from ImageNet backbones only. Starting from a Mask2Former that
was already trained on COCO (or on this dataset's label set) leaks clean labels into a noisy-label run and needs
``--allow-coco-pretrained``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

if TYPE_CHECKING:
    from hf_noisy.hub import ResolvedDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
OUT_FEATURES = ["stage1", "stage2", "stage3", "stage4"]


@dataclasses.dataclass
class TrainConfig:
    """Every key of a ``train/configs/*.yaml`` file (each also a ``--flag``)."""

    # model
    model_name_or_path: str | None = dataclasses.field(default=None, metadata={"help": "start from this Mask2Former checkpoint (Hub id or folder) instead of a fresh head"})
    backbone: str = dataclasses.field(default="swin", metadata={"help": "backbone family of a fresh model: swin | resnet"})
    backbone_checkpoint: str | None = dataclasses.field(default=None, metadata={"help": "ImageNet-pretrained backbone (Hub id or folder) loaded into the Mask2Former backbone"})
    backbone_config: dict = dataclasses.field(default_factory=dict, metadata={"help": "SwinConfig/ResNetConfig kwargs of a randomly initialised backbone"})
    freeze_batch_norm: bool = dataclasses.field(default=False, metadata={"help": "keep the backbone's BatchNorm layers at their pretrained statistics and affine weights (detectron2's FrozenBN: batch statistics of 2 images per GPU are too noisy)"})
    mask2former: dict = dataclasses.field(default_factory=dict, metadata={"help": "Mask2FormerConfig kwargs (num_queries, hidden_dim, ...)"})
    # data
    image_size: int = dataclasses.field(default=1024, metadata={"help": "training crop side (pixels)"})
    min_scale: float = dataclasses.field(default=0.1, metadata={"help": "large-scale jitter: smallest scale"})
    max_scale: float = dataclasses.field(default=2.0, metadata={"help": "large-scale jitter: largest scale"})
    flip_prob: float = dataclasses.field(default=0.5, metadata={"help": "horizontal flip probability"})
    eval_short_edge: int = dataclasses.field(default=800, metadata={"help": "evaluation resize: shorter side"})
    eval_max_size: int = dataclasses.field(default=1333, metadata={"help": "evaluation resize: longest side at most"})
    mask_postprocess: str = dataclasses.field(default="full", metadata={"help": "full (Mask2Former's inference: masks at image resolution) | transformers (post_process_instance_segmentation: masks at 384x384)"})
    eval_batch_size: int = dataclasses.field(default=1, metadata={"help": "images per forward pass at evaluation (1: predictions do not depend on batching or process count)"})
    num_workers: int = dataclasses.field(default=4, metadata={"help": "DataLoader workers per process"})
    max_train_images: int | None = dataclasses.field(default=None, metadata={"help": "use only the first N training rows"})
    max_eval_images: int | None = dataclasses.field(default=None, metadata={"help": "evaluate on the first N rows only"})
    eval_split: str = dataclasses.field(default="validation", metadata={"help": "split to evaluate on (validation is clean in every config)"})
    # optimisation
    per_device_batch_size: int = dataclasses.field(default=2, metadata={"help": "images per process and micro-batch"})
    gradient_accumulation_steps: int = dataclasses.field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_steps: int = dataclasses.field(default=368750, metadata={"help": "optimizer steps"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={"help": "AdamW learning rate"})
    backbone_lr_multiplier: float = dataclasses.field(default=0.1, metadata={"help": "backbone learning rate = lr x this"})
    weight_decay: float = dataclasses.field(default=0.05, metadata={"help": "AdamW weight decay (0 for norms, biases, embeddings)"})
    warmup_steps: int = dataclasses.field(default=10, metadata={"help": "linear warmup steps"})
    poly_power: float = dataclasses.field(default=0.9, metadata={"help": "poly schedule: lr x (1 - step/max_steps)^power"})
    max_grad_norm: float = dataclasses.field(default=0.01, metadata={"help": "clip the full model's gradient norm (0: off)"})
    mixed_precision: str = dataclasses.field(default="bf16", metadata={"help": "no | bf16 | fp16 (CPU runs use no)"})
    class_loss: str = dataclasses.field(default="ce", metadata={"help": "ce | sce (Symmetric Cross-Entropy) | gce (generalized CE) | bootstrap (soft bootstrapping)"})
    sce_alpha: float = dataclasses.field(default=1.0, metadata={"help": "SCE: weight of CE"})
    sce_beta: float = dataclasses.field(default=1.0, metadata={"help": "SCE: weight of reverse CE"})
    gce_q: float = dataclasses.field(default=0.7, metadata={"help": "GCE: q in (0, 1] (CE as q -> 0)"})
    bootstrap_beta: float = dataclasses.field(default=0.95, metadata={"help": "soft bootstrapping: weight of the label, 1 - beta of the prediction (CE at 1)"})
    seed: int = dataclasses.field(default=42, metadata={"help": "seed of init, data order and augmentation"})
    # bookkeeping
    checkpoint_steps: int = dataclasses.field(default=5000, metadata={"help": "save a checkpoint every N steps"})
    eval_steps: int = dataclasses.field(default=50000, metadata={"help": "evaluate every N steps (and at the end)"})
    log_steps: int = dataclasses.field(default=20, metadata={"help": "log losses every N steps"})


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, TrainConfig]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python train/train_mask2former.py --config tiny --dataset coco-n --dataset-config hard --output-dir out\n"
               "  accelerate launch --multi_gpu --num_processes 8 train/train_mask2former.py --config r50 \\\n"
               "      --dataset noisy-seg/coco-n --dataset-config hard --output-dir runs/r50-hard\n"
               "  python train/train_mask2former.py --eval-only runs/r50-hard/model --dataset coco-n --output-dir ev \\\n"
               "      --predictions-out ev/results.json")
    parser.add_argument("--config", default="tiny", help="tiny | r50 | swin-s, or a YAML file (default: tiny)")
    parser.add_argument("--dataset", required=True, help="dataset folder or Hub id (anything load_dataset takes)")
    parser.add_argument("--dataset-config", default="clean", help="config to train on: clean | easy | medium | hard | ...")
    parser.add_argument("--revision", default=None, help="dataset revision (Hub tag, e.g. v1.0)")
    parser.add_argument("--image-root", default=None,
                        help="your copy of the source's images, for an annotation-only build (Cityscapes-N's "
                             "default): the source root given to hf-noisy build, e.g. /data/cityscapes")
    parser.add_argument("--output-dir", required=True, help="where checkpoints, metrics and the model go")
    parser.add_argument("--resume", nargs="?", const="latest", default=None,
                        help="continue from a checkpoint folder (default: the latest in OUTPUT_DIR/checkpoints)")
    parser.add_argument("--eval-only", metavar="CKPT", default=None,
                        help="evaluate this model (folder or Hub id) and exit; metrics go to OUTPUT_DIR/metrics.json")
    parser.add_argument("--predictions-out", default=None,
                        help="write the final model's COCO results on --predict-split here")
    parser.add_argument("--fold", metavar="K/N", type=_fold, default=None,
                        help="cross-fitting: train without fold K of N of the train split (row i is in fold i %% N), "
                             "so that --predict-split train predicts images the model never saw; run K = 0..N-1 and "
                             "give all N prediction files to hf-noisy audit")
    parser.add_argument("--predict-split", choices=["validation", "train"], default="validation",
                        help="what --predictions-out holds: the evaluation split's results (default), or the train "
                             "split's (with --fold: only the held-out fold's, out of sample)")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="upload the final model and metrics")
    parser.add_argument("--hub-private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--allow-coco-pretrained", action="store_true",
                        help="allow starting from a Mask2Former already trained on COCO (leaks clean labels)")
    parser.add_argument("--overwrite", action="store_true", help="train into a non-empty OUTPUT_DIR")
    parser.add_argument("--log-instance-losses", action="store_true",
                        help="every log_steps, record each matched instance's class, mask BCE and dice loss with its "
                             "noise provenance in OUTPUT_DIR/instance_losses/ (parquet; hf-noisy analyze losses)")
    values = config_values()
    group = parser.add_argument_group(
        "config keys (override the YAML; [brackets]: each config's value, " + ", ".join(values) + ")")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        shown = "; ".join(f"{name}: {_shown(getattr(config, field.name))}" for name, config in values.items())
        group.add_argument(flag, dest=f"cfg_{field.name}", metavar=field.name.upper(), type=_parser_of(field),
                           default=None, help=f"{field.metadata.get('help', '')} [{shown}]".replace("%", "%%"))
    args = parser.parse_args(argv)
    if args.predict_split == "train" and not args.predictions_out:
        parser.error("--predict-split train needs --predictions-out")
    if args.fold and args.eval_only:
        parser.error("--fold trains; it cannot be combined with --eval-only")
    return args, load_config(args.config, {f.name: getattr(args, f"cfg_{f.name}") for f in dataclasses.fields(TrainConfig)})


def _fold(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)`` with ``0 <= K < N`` and ``N >= 2``."""
    k, _, n = text.partition("/")
    try:
        fold = (int(k), int(n))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N, e.g. 0/2, got {text!r}") from None
    if not (fold[1] >= 2 and 0 <= fold[0] < fold[1]):
        raise argparse.ArgumentTypeError(f"expected 0 <= K < N and N >= 2, got {text!r}")
    return fold


def fold_indices(count: int, fold: tuple[int, int] | None) -> tuple[list[int], list[int]]:
    """Row indices ``(training, held out)`` of a split of ``count`` rows: fold ``K`` of ``N`` is every row ``i``
    with ``i % N == K``; without a fold, everything trains and nothing is held out."""
    if fold is None:
        return list(range(count)), []
    k, n = fold
    return [i for i in range(count) if i % n != k], [i for i in range(count) if i % n == k]


def config_values() -> dict[str, TrainConfig]:
    """Every shipped config (``train/configs/*.yaml``) by name, resolved (YAML over the dataclass defaults)."""
    return {path.stem: load_config(path.stem) for path in sorted(CONFIG_DIR.glob("*.yaml"), key=_config_order)}


def _config_order(path: Path) -> tuple[int, str]:
    return (0 if path.stem == "tiny" else 1, path.stem)  # the default first


def _shown(value: Any) -> str:
    """A config value as one short YAML-ish string for --help."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}" if value else "{}"
    return "none" if value is None else str(value)


def _parser_of(field: dataclasses.Field):
    kind = str(field.type)
    if kind == "bool":
        return _boolean
    if "dict" in kind:
        return lambda text: dict(yaml.safe_load(text) or {})
    if kind.startswith("int"):
        return int
    if kind.startswith("float"):
        return float
    return lambda text: None if text.lower() in ("none", "null") else text


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def load_config(name: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config by name (``train/configs/<name>.yaml``) or path, with non-``None`` ``overrides`` applied;
    dict keys are merged."""
    path = Path(name) if Path(name).suffix in (".yaml", ".yml") else CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise SystemExit(f"error: no config {name!r} (known: {known}; or give a .yaml path)")
    from hf_noisy.config_check import check_config_values
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.safe_yaml import load as load_yaml

    try:  # every value checked before anything is built: one line, not a TypeError minutes in
        values = load_yaml(path.read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise HfNoisyError(f"a config is a mapping of keys to values, got a {type(values).__name__}")
        check_config_values(values, TrainConfig)
    except (HfNoisyError, ValueError) as err:
        raise SystemExit(f"error: {path}: {err}") from None
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SystemExit(f"error: {path}: unknown key(s) {', '.join(unknown)}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    config = TrainConfig(**values)
    from hf_noisy.splits import canonical_split

    try:
        config.eval_split = canonical_split(config.eval_split)  # val or validation, as everywhere in hf-noisy
    except HfNoisyError as err:
        raise SystemExit(f"error: eval_split: {err}") from None
    if config.class_loss not in ("ce", "sce", "gce", "bootstrap") or config.backbone not in ("swin", "resnet") \
            or config.mask_postprocess not in ("full", "transformers"):
        raise SystemExit("error: class_loss must be ce|sce|gce|bootstrap, backbone swin|resnet, "
                         "mask_postprocess full|transformers")
    if not 0 < config.gce_q <= 1 or not 0 <= config.bootstrap_beta <= 1:
        raise SystemExit("error: gce_q must be in (0, 1] and bootstrap_beta in [0, 1]")
    return config


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------
def looks_coco_trained(model_config: Any, name: str, class_names: list[str]) -> bool:
    """True if a Mask2Former checkpoint was trained on COCO or on this label set: its name says "coco", or
    half or more of the dataset's class names are among its ``id2label`` names."""
    if "coco" in name.lower() or "coco" in str(getattr(model_config, "_name_or_path", "")).lower():
        return True
    theirs = {str(v).lower() for v in (getattr(model_config, "id2label", None) or {}).values()}
    return len(theirs & {c.lower() for c in class_names}) >= max(1, len(class_names) // 2)


def build_model(config: TrainConfig, class_names: list[str], *, allow_coco_pretrained: bool = False, log=print):
    """A ``Mask2FormerForUniversalSegmentation`` for ``class_names``: from ``model_name_or_path`` (new class
    head when the labels differ), or fresh with the backbone's ImageNet weights from ``backbone_checkpoint``."""
    from transformers import AutoConfig, Mask2FormerConfig, Mask2FormerForUniversalSegmentation, ResNetConfig, SwinConfig

    id2label = dict(enumerate(class_names))
    label2id = {name: i for i, name in id2label.items()}
    if config.model_name_or_path:
        source = AutoConfig.from_pretrained(config.model_name_or_path)
        if looks_coco_trained(source, config.model_name_or_path, class_names):
            if not allow_coco_pretrained:
                raise SystemExit(f"error: {config.model_name_or_path} looks trained on COCO (or on these labels); "
                                 "starting from it leaks clean labels into a noisy-label run. Pass "
                                 "--allow-coco-pretrained to do it anyway.")
            log(f"WARNING: starting from {config.model_name_or_path}, a Mask2Former trained on COCO or on these "
                "labels: clean labels leak into this run, so its numbers are not comparable to the benchmark's.")
        return Mask2FormerForUniversalSegmentation.from_pretrained(
            config.model_name_or_path, id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True)
    if config.backbone_checkpoint:
        backbone_config = AutoConfig.from_pretrained(config.backbone_checkpoint, out_features=OUT_FEATURES,
                                                     **config.backbone_config)
    else:
        kind = SwinConfig if config.backbone == "swin" else ResNetConfig
        backbone_config = kind(out_features=OUT_FEATURES, **config.backbone_config)
    model_config = Mask2FormerConfig(backbone_config=backbone_config, num_labels=len(class_names),
                                     id2label=id2label, label2id=label2id, **config.mask2former)
    model = Mask2FormerForUniversalSegmentation(model_config)
    if config.backbone_checkpoint:
        load_backbone_weights(model, config.backbone_checkpoint)
        log(f"backbone weights from {config.backbone_checkpoint}")
    return model


def load_backbone_weights(model, checkpoint: str) -> None:
    """Load an ImageNet checkpoint (e.g. ``microsoft/resnet-50``, a classification model) into the Mask2Former
    backbone: the encoder's own backbone class reads it, then every tensor is copied (strict)."""
    encoder = model.model.pixel_level_module.encoder
    pretrained = type(encoder).from_pretrained(checkpoint, out_features=list(encoder.out_features))
    encoder.load_state_dict(pretrained.state_dict(), strict=True)


def frozen_batch_norms(model) -> list:
    """The backbone's BatchNorm layers, with their parameters set not to train (see :func:`train_mode`)."""
    import torch

    layers = [m for m in model.model.pixel_level_module.encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.requires_grad_(False)
    return layers


def train_mode(model, frozen: list) -> None:
    """``model.train()``, except the frozen BatchNorm layers, which keep normalising with their stored statistics."""
    model.train()
    for layer in frozen:
        layer.eval()


def param_groups(model, config: TrainConfig) -> list[dict]:
    """AdamW groups: backbone at ``lr x backbone_lr_multiplier``; no weight decay on norms, biases, embeddings."""
    import torch

    backbone = {id(p) for p in model.model.pixel_level_module.encoder.parameters()}
    no_decay = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = not (param.ndim <= 1 or id(param) in no_decay or name.endswith(("relative_position_bias_table", "level_embed")))
        groups.setdefault((id(param) in backbone, decay), []).append(param)
    return [{"params": params, "lr": config.learning_rate * (config.backbone_lr_multiplier if is_backbone else 1.0),
             "weight_decay": config.weight_decay if decay else 0.0}
            for (is_backbone, decay), params in sorted(groups.items())]


def poly_with_warmup(config: TrainConfig):
    """LR factor of optimizer step ``s``: ``min(1, (s+1)/warmup) * (1 - s/max_steps)^power``."""
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
        return warm * max(0.0, 1.0 - step / config.max_steps) ** config.poly_power
    return factor


# ----------------------------------------------------------------------------------------------------------
# Data and evaluation
# ----------------------------------------------------------------------------------------------------------
def class_names_of(rows: Any) -> list[str]:
    objects = rows.features["objects"]
    inner = getattr(objects, "feature", objects)
    return list(inner["category_id"].names)


def load_split(args: argparse.Namespace, config: str, split: str, limit: int | None):
    from hf_noisy.hub import load_coco_n

    kwargs = {"revision": args.revision} if args.revision else {}
    rows = load_coco_n(args.dataset, config, split=split, image_root=args.image_root, **kwargs)
    if "image" not in rows.features:
        raise SystemExit(f"error: {args.dataset} is annotation-only (its source's images may not be redistributed): "
                         "pass --image-root with your copy of the source, e.g. --image-root /data/cityscapes")
    return rows.select(range(min(limit, len(rows)))) if limit else rows


def full_resolution_instances(class_logits, mask_logits, input_size: tuple[int, int], image_size: tuple[int, int],
                              chunk: int = 20, top_k: int | None = None) -> list[tuple[np.ndarray, int, float]]:
    """One image's instances as Mask2Former's own inference makes them (detectron2/MMDetection).

    ``class_logits`` ``(Q, C+1)``, ``mask_logits`` ``(Q, h, w)`` at 1/4 of the padded input; ``input_size`` is the
    resized image inside the padding, ``image_size`` the original ``(height, width)``. The top-``top_k``
    (default ``Q``) (query, class) pairs by class probability are kept; their mask logits are upsampled bilinearly to the padded
    input, cropped to ``input_size``, resized bilinearly to ``image_size`` and thresholded at 0; score = class
    probability x mean mask probability inside the mask. Returns ``(mask uint8, label index, score)``, empty
    masks left out, best first.
    """
    import torch.nn.functional as F

    scores = class_logits.float().softmax(-1)[:, :-1]
    num_queries, num_classes = scores.shape
    top, flat = scores.flatten().topk(min(top_k or num_queries, num_queries * num_classes))
    queries, labels = flat // num_classes, flat % num_classes
    out = []
    for begin in range(0, len(flat), chunk):
        logits = mask_logits[queries[begin:begin + chunk]].float()[None]
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)[..., :input_size[0], :input_size[1]]
        logits = F.interpolate(logits, size=image_size, mode="bilinear", align_corners=False)[0]
        binary = logits > 0
        mask_score = (logits.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        for j in range(len(binary)):
            if binary[j].any():
                out.append((binary[j].numpy().astype(np.uint8), int(labels[begin + j]),
                            float(top[begin + j] * mask_score[j])))
    return sorted(out, key=lambda item: -item[2])


def predict(model, rows: Any, indices: list[int], config: TrainConfig, category_ids: list[int], device,
            top_k: int | None = None) -> list[dict]:
    """COCO results for ``rows[indices]`` (top-``top_k`` query/class pairs, default ``num_queries``, no score
    threshold), masks at the original image size encoded with hf_noisy.masks.

    ``mask_postprocess``: ``"full"`` is :func:`full_resolution_instances` (Mask2Former's own inference);
    ``"transformers"`` is ``post_process_instance_segmentation(..., return_binary_maps=True)``, which computes
    masks at 384x384 and resizes them to the image by nearest neighbour: with perfect quarter-resolution logits
    of the ground truth of coco-tiny val at 800x1333, it scores mask AP 0.900 and Boundary AP 0.874 where
    ``"full"`` scores 0.943 and 0.939 (``tests/test_train.py`` checks the ordering).
    """
    import torch
    from datasets import Image
    from transformers import Mask2FormerImageProcessorPil
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerForUniversalSegmentationOutput

    from hf_noisy.masks import Crop
    from m2f_data import decode_image, eval_resize, pad_batch, to_pixel_values

    processor = Mask2FormerImageProcessorPil()  # post-processing only: the torch code, without torchvision
    rows = rows.select_columns(["image", "image_id", "width", "height"]).cast_column("image", Image(decode=False))
    results = []
    model.eval()
    for start in range(0, len(indices), config.eval_batch_size):
        batch = [rows[i] for i in indices[start:start + config.eval_batch_size]]
        tensors = [to_pixel_values(eval_resize(decode_image(r["image"], r["height"], r["width"]),
                                               config.eval_short_edge, config.eval_max_size)) for r in batch]
        with torch.no_grad():
            out = model(pixel_values=pad_batch(tensors).to(device))
        for k, (row, tensor) in enumerate(zip(batch, tensors)):
            image_size = (row["height"], row["width"])
            class_logits, mask_logits = out.class_queries_logits[k].float().cpu(), out.masks_queries_logits[k].float().cpu()
            if config.mask_postprocess == "full":
                instances = full_resolution_instances(class_logits, mask_logits, tuple(tensor.shape[1:]), image_size,
                                                      top_k=top_k)
            else:
                # crop the mask logits to this image's unpadded area before post-processing resizes them
                h, w = math.ceil(tensor.shape[1] / 4), math.ceil(tensor.shape[2] / 4)
                single = Mask2FormerForUniversalSegmentationOutput(class_queries_logits=class_logits[None],
                                                                   masks_queries_logits=mask_logits[None, :, :h, :w])
                (post,) = processor.post_process_instance_segmentation(single, threshold=0.0, target_sizes=[image_size],
                                                                       return_binary_maps=True)
                masks = post["segmentation"].numpy().astype(np.uint8) if post["segments_info"] else []
                instances = [(m, info["label_id"], info["score"]) for m, info in zip(masks, post["segments_info"])]
            for mask, label, score in instances:
                encoded = Crop.from_full(mask).encode()
                results.append({"image_id": row["image_id"], "category_id": category_ids[label],
                                "segmentation": encoded.rle, "score": float(score), "bbox": encoded.bbox})
    return results


def detections_per_image(model, benchmark: str) -> int:
    """How many (query, class) pairs per image a prediction keeps: the benchmark's detection limit under LVIS
    rules (300), else ``min(num_queries, limit)`` (COCO's 100)."""
    from hf_noisy.leaderboard.rules import rules_for

    rules = rules_for(benchmark)
    limit = rules.max_per_image
    return limit if rules.protocol == "lvis" else min(model.config.num_queries, limit)


def evaluate(accelerator, model, rows: Any, gt: dict, config: TrainConfig, categories: list[dict], exchange: Path,
             frozen: list = (), benchmark: str = "coco-n") -> tuple[dict, list]:
    """Predict on this rank's share of ``rows``, collect everything on the main process and score there, with
    the benchmark's rules (:func:`hf_noisy.leaderboard.rules.rules_for`: LVIS-N with LVIS rules and the top 300
    (query, class) pairs per image; the others with COCO rules and the top ``min(num_queries, 100)``).

    Ranks hand their predictions over as JSON files in ``exchange`` (a folder every rank can read), not through
    a collective: gloo's all-gather of pickled Python objects can deadlock at process exit in torch 2.13
    (the worker thread frees the gathered tensors, which needs the GIL the exiting main thread holds).
    Returns ``({"segm": stats, "bbox": stats, "boundary": stats}, predictions)`` on the main process,
    ``({}, [])`` elsewhere.
    """
    from hf_noisy.leaderboard.rules import score

    top_k = detections_per_image(accelerator.unwrap_model(model), benchmark)
    indices = list(range(accelerator.process_index, len(rows), accelerator.num_processes))
    with accelerator.autocast():
        mine = predict(accelerator.unwrap_model(model), rows, indices, config, [c["id"] for c in categories],
                       accelerator.device, top_k=top_k)
    train_mode(model, list(frozen))
    if accelerator.num_processes == 1:
        parts = [mine]
    else:
        write_json(exchange / f".predictions-rank{accelerator.process_index}.json", mine)
        accelerator.wait_for_everyone()
        parts = []
        if accelerator.is_main_process:
            for rank in range(accelerator.num_processes):
                part = exchange / f".predictions-rank{rank}.json"
                parts.append(json.loads(part.read_text(encoding="utf-8")))
                part.unlink()
        accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {}, []
    predictions = sorted((p for part in parts for p in part), key=lambda p: (p["image_id"], -p["score"]))
    if not predictions:
        accelerator.print(f"WARNING: no detections on {len(rows)} {config.eval_split} images, so every metric is 0: "
                          "each query's mask logits are below 0 everywhere, i.e. its mask is empty at the "
                          "threshold (sigmoid 0.5). The model has not learned masks yet: train longer or with a "
                          "larger learning rate (see train/configs/cpu-fit.yaml).")
    return score(benchmark, gt, predictions), predictions


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------
def latest_checkpoint(output_dir: Path) -> Path:
    found = sorted((output_dir / "checkpoints").glob("step-*"))
    if not found:
        raise SystemExit(f"error: --resume: no checkpoint in {output_dir / 'checkpoints'}")
    return found[-1]


def save_checkpoint(accelerator, model, folder: Path, state: dict) -> None:
    """accelerate state + ``config.json`` + ``train_state.json``, built in a hidden sibling and renamed into
    place by the main process once every rank has written its part (a crash leaves no complete-looking folder)."""
    from hf_noisy.fsutil import atomic_write_text, replace_folder

    partial = folder.parent / f".{folder.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    try:
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            accelerator.unwrap_model(model).config.save_pretrained(partial)
            atomic_write_text(partial / "train_state.json", json.dumps(state, indent=2) + "\n")
            replace_folder(partial, folder)  # no moment without a checkpoint at ``folder``
    except BaseException:  # Ctrl-C or a failure mid-save: nothing half-written stays behind
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()


def write_json(path: Path, data: Any) -> None:
    from hf_noisy.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def create_hub_repo(repo_id: str, *, private: bool = False, token: str | None = None):
    """Create the model repo if missing, before training: a missing or refused token, or a namespace the token's
    user is not a member of, stops the run now with one line, not after hours of training."""
    from huggingface_hub import HfApi

    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub.access import hub_errors, require_token

    action = f"--push-to-hub {repo_id}"
    try:
        api = HfApi(token=require_token(token, action))
        with hub_errors(action):
            me = api.whoami()
            namespaces = {me["name"], *(org["name"] for org in me.get("orgs", []))}
            if repo_id.split("/")[0] not in namespaces:
                raise HfNoisyError(f"{action}: the token belongs to {me['name']!r}, who may write to "
                                   f"{', '.join(sorted(namespaces))} only")
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    except HfNoisyError as err:
        raise SystemExit(f"error: {err}") from None
    return api


def upload_model(api, folder: Path, repo_id: str) -> str:
    """Upload ``folder`` (model, image processor config, metrics, card) in one commit; returns the commit id."""
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub.access import hub_errors

    try:
        with hub_errors(f"--push-to-hub {repo_id} (the model is saved in {folder})"):
            commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                       commit_message="Mask2Former trained with hf-noisy's train_mask2former.py")
    except HfNoisyError as err:
        raise SystemExit(f"error: {err}") from None
    return commit.oid


def model_card(args: argparse.Namespace, config: TrainConfig, metrics: dict, benchmark: str = "coco-n") -> str:
    """The model's README.md: YAML metadata with a ``model-index`` (mask AP, Boundary AP and box AP on the
    clean evaluation split, in percent, with the dataset repo, config and revision; Hub pages and the
    leaderboard read it) and a table of the same numbers."""
    dataset = {"type": str(args.dataset), "name": f"{args.dataset} ({args.dataset_config})",
               "config": args.dataset_config, "split": config.eval_split}
    if args.revision:
        dataset["revision"] = args.revision
    names = {"segm": ("mask AP", "mask_ap"), "boundary": ("Boundary AP", "boundary_ap"), "bbox": ("box AP", "box_ap")}
    results = [{"name": label, "type": kind, "value": round(100 * metrics[key]["AP"], 2)}
               for key, (label, kind) in names.items() if "AP" in metrics.get(key, {})]
    meta = {
        "library_name": "transformers", "pipeline_tag": "image-segmentation",
        "tags": ["mask2former", "label-noise", "hf-noisy", benchmark],
        "datasets": [str(args.dataset)],
        "model-index": [{"name": Path(args.push_to_hub or args.output_dir).name, "results": [{
            "task": {"type": "image-segmentation", "name": "Instance segmentation"},
            "dataset": dataset, "metrics": results,
        }]}],
    }
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---",
        f"# Mask2Former trained on `{args.dataset}` / `{args.dataset_config}`", "",
        f"Trained with hf-noisy's `train/train_mask2former.py --config {args.config}` ({config.max_steps} steps, "
        f"class loss `{config.class_loss}`, seed {config.seed}"
        + (f", dataset revision `{args.revision}`" if args.revision else "") + f"). Scores on the clean "
        f"`{config.eval_split}` split (hf-noisy metric: mask AP, Boundary AP, box AP):", "",
        "| metric | AP | AP50 | AP75 |", "|---|---|---|---|",
    ]
    for name in ("segm", "boundary", "bbox"):
        stats = metrics.get(name, {})
        lines.append(f"| {name} | " + " | ".join(f"{100 * stats.get(k, -1):.1f}" for k in ("AP", "AP50", "AP75")) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Parse the command line (before torch and transformers are imported, so ``--help`` and argument errors are
    instant), then train or evaluate. Ctrl-C stops with exit status 130 and says how to continue: checkpoints
    are only ever complete (built in a hidden ``.partial`` sibling that an interrupt removes), so ``--resume``
    continues from the last complete one."""
    from hf_noisy.hub import resolve_dataset

    args, config = parse_args(argv)
    benchmark = resolve_dataset(args.dataset, args.dataset_config, revision=args.revision)  # a typo fails here, at once
    try:
        return run(args, config, benchmark)
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch every rank gets the signal
            print(interrupted_message(args, argv if argv is not None else sys.argv[1:]), file=sys.stderr, flush=True)
        return 130


def interrupted_message(args: argparse.Namespace, argv: list[str]) -> str:
    """What Ctrl-C prints: what was kept and the command that continues the run."""
    import shlex

    if args.eval_only:
        return "interrupted: evaluation stopped; nothing was written"
    found = sorted((Path(args.output_dir) / "checkpoints").glob("step-*"))
    command = [sys.executable, sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else __file__]
    kept: list[str] = []
    skip_value = False
    for item in argv:
        if skip_value:
            skip_value = False
            if not item.startswith("-"):
                continue
        if item == "--resume":
            skip_value = True
            continue
        if item.startswith("--resume=") or item == "--overwrite":
            continue
        kept.append(item)
    if not found:
        return ("interrupted before the first checkpoint: nothing to resume from; start again with --overwrite:\n  "
                + shlex.join([*command, *kept, "--overwrite"]))
    return (f"interrupted: nothing half-done was kept; the last complete checkpoint is {found[-1]}. "
            "Continue with the same command plus --resume (under accelerate launch, add it there):\n  "
            + shlex.join([*command, *kept, "--resume"]))


def run(args: argparse.Namespace, config: TrainConfig, benchmark: ResolvedDataset) -> int:
    """Train (or, with ``--eval-only``, evaluate) as the parsed command line says."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from tqdm.auto import tqdm

    from hf_noisy.hub import rows_to_coco
    from m2f_data import EpochBatchSampler, Jitter, TrainDataset, collate
    from m2f_loss import install_class_loss

    output_dir = Path(args.output_dir)
    cpu = not torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=cpu,  # with `accelerate launch --multi_gpu` on a CPU machine this gives real gloo processes
        mixed_precision="no" if cpu else config.mixed_precision,
        log_with=None if args.eval_only else "tensorboard",
        project_dir=str(output_dir),
        # some Mask2Former parameters get no gradient in a step; DDP stops with an error without this
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    log = accelerator.print
    if cpu and config.mixed_precision != "no":
        log(f"no GPU: training in float32 (the config asks for {config.mixed_precision})")
    rank, world = accelerator.process_index, accelerator.num_processes
    set_seed(config.seed)  # the same initial weights on every rank

    metadata = benchmark.metadata
    categories, benchmark_id = metadata["categories"], metadata.get("benchmark_id", "coco-n")
    eval_rows = load_split(args, args.dataset_config, config.eval_split, config.max_eval_images)
    class_names = class_names_of(eval_rows)
    gt = rows_to_coco(eval_rows, categories) if accelerator.is_main_process else {}

    if args.eval_only:
        from transformers import Mask2FormerForUniversalSegmentation

        model = Mask2FormerForUniversalSegmentation.from_pretrained(args.eval_only).to(accelerator.device)
        metrics, predictions = evaluate(accelerator, model, eval_rows, gt, config, categories, output_dir,
                                        benchmark=benchmark_id)
        if accelerator.is_main_process:
            write_json(output_dir / "metrics.json", {"checkpoint": args.eval_only, "split": config.eval_split,
                                                     "num_images": len(eval_rows), "metrics": metrics})
            if args.predictions_out:
                write_json(Path(args.predictions_out), predictions)
            log(json.dumps(metrics["segm"]))
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return 0

    occupied = output_dir.is_dir() and any(output_dir.iterdir()) and not (args.resume or args.overwrite)
    accelerator.wait_for_everyone()  # every rank has looked before anything is written
    if occupied:
        raise SystemExit(f"error: {output_dir} is not empty (pass --resume to continue, --overwrite to reuse it)")
    if args.overwrite and not args.resume and accelerator.is_main_process:  # a new run: no old checkpoint to resume
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    hub = create_hub_repo(args.push_to_hub, private=args.hub_private) if args.push_to_hub and accelerator.is_main_process else None
    train_rows = load_split(args, args.dataset_config, "train", config.max_train_images)
    held_out_rows = None
    if args.fold:
        training, held_out = fold_indices(len(train_rows), args.fold)
        held_out_rows, train_rows = train_rows.select(held_out), train_rows.select(training)
        log(f"fold {args.fold[0]}/{args.fold[1]}: training on {len(train_rows)} images, holding out {len(held_out_rows)}")
    model = build_model(config, class_names, allow_coco_pretrained=args.allow_coco_pretrained, log=log)
    set_seed(config.seed, device_specific=True)  # from here on each rank draws its own points and dropout
    install_class_loss(model, config.class_loss, sce_alpha=config.sce_alpha, sce_beta=config.sce_beta,
                       gce_q=config.gce_q, bootstrap_beta=config.bootstrap_beta)
    criterion = model.criterion
    frozen = frozen_batch_norms(model) if config.freeze_batch_norm else []
    optimizer = torch.optim.AdamW(param_groups(model, config), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_with_warmup(config))
    # the scheduler is stepped by hand, once per optimizer step (accelerate's wrapper steps it once per process)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    dataset = TrainDataset(train_rows, Jitter(config.image_size, config.min_scale, config.max_scale, config.flip_prob),
                           config.seed)
    state = {"step": 0, "epoch": 0, "batch": 0}  # batch: micro-batches of this epoch already consumed per rank
    if args.resume:
        checkpoint = latest_checkpoint(output_dir) if args.resume == "latest" else Path(args.resume)
        accelerator.load_state(str(checkpoint))  # weights, optimizer, scheduler, every rank's RNG state
        state = json.loads((checkpoint / "train_state.json").read_text(encoding="utf-8"))
        if state["world_size"] != world or state["per_device_batch_size"] != config.per_device_batch_size:
            raise SystemExit("error: resume with the same number of processes and batch size as the checkpoint")
        log(f"resumed from {checkpoint} at step {state['step']} (epoch {state['epoch']}, batch {state['batch']})")
    instance_log = None
    if args.log_instance_losses:
        from m2f_instances import InstanceLossLog, provenance_of

        instance_log = InstanceLossLog(output_dir, rank, provenance_of(train_rows))
        instance_log.drop_after(state["step"])  # rows of an abandoned continuation (none on a fresh run)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / "run_config.json", {"args": {k: v for k, v in vars(args).items() if not k.startswith("cfg_")},
                                                "config": dataclasses.asdict(config)})
    accelerator.init_trackers("runs", config={k: v for k, v in dataclasses.asdict(config).items()
                                              if isinstance(v, (int, float, str, bool))})

    per_epoch = EpochBatchSampler(len(dataset), config.per_device_batch_size, seed=config.seed, epoch=0, rank=rank,
                                  world_size=world).batches_per_epoch()
    log(f"world size {world}; {len(dataset)} training images; {per_epoch} micro-batches per rank and epoch; "
        f"global batch {config.per_device_batch_size * world * config.gradient_accumulation_steps}")
    print(f"rank {rank}/{world}: {per_epoch * config.per_device_batch_size} samples per epoch", flush=True)

    def batches():
        epoch, start = state["epoch"], state["batch"]
        while True:
            sampler = EpochBatchSampler(len(dataset), config.per_device_batch_size, seed=config.seed, epoch=epoch,
                                        rank=rank, world_size=world, start_batch=start)
            # its own generator: creating the loader must not draw from the global RNG (resume would diverge)
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                                 num_workers=config.num_workers,
                                                 generator=torch.Generator().manual_seed(config.seed + epoch))
            for i, batch in enumerate(loader, start=start):
                yield epoch, i + 1, batch
            epoch, start = epoch + 1, 0

    train_mode(model, frozen)
    stream = batches()
    bar = tqdm(total=config.max_steps, initial=state["step"], desc="train", disable=not accelerator.is_local_main_process,
               dynamic_ncols=True)
    started, first_step = time.perf_counter(), state["step"]
    metrics: dict = {}
    while state["step"] < config.max_steps:
        step_loss = 0.0
        coming = state["step"] + 1
        criterion.record_instances = instance_log is not None and (
            coming % config.log_steps == 0 or coming in (1, config.max_steps))
        for micro in range(config.gradient_accumulation_steps):
            epoch, consumed, batch = next(stream)
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
        state.update(step=state["step"] + 1, epoch=epoch, batch=consumed)
        bar.update(1)
        if state["step"] % config.log_steps == 0 or state["step"] in (1, config.max_steps):
            loss = accelerator.reduce(torch.tensor(step_loss, device=accelerator.device), "mean").item()
            accelerator.log({"train/loss": loss, "train/lr": scheduler.get_last_lr()[-1], "train/epoch": epoch},
                            step=state["step"])
            bar.set_postfix(loss=f"{loss:.3f}")
            log(f"step {state['step']}: loss {loss:.4f}")
        final = state["step"] == config.max_steps
        if state["step"] % config.checkpoint_steps == 0 or final:
            if instance_log is not None:
                instance_log.flush()  # before the checkpoint: a checkpoint's steps are always on disk
            folder = output_dir / "checkpoints" / f"step-{state['step']:06d}"
            save_checkpoint(accelerator, model, folder, {**state, "world_size": world,
                                                         "per_device_batch_size": config.per_device_batch_size})
        if state["step"] % config.eval_steps == 0 or final:
            metrics, predictions = evaluate(accelerator, model, eval_rows, gt, config, categories, output_dir, frozen,
                                            benchmark_id)
            if accelerator.is_main_process:
                folder = output_dir / "checkpoints" / f"step-{state['step']:06d}"
                record = {"step": state["step"], "dataset": str(args.dataset), "config": args.dataset_config,
                          "split": config.eval_split, "num_images": len(eval_rows), "metrics": metrics,
                          "cpu_seconds": time.process_time()}  # this process's, since it started
                if folder.is_dir():
                    write_json(folder / "metrics.json", record)
                accelerator.log({f"eval/{name}_{k}": v for name, stats in metrics.items() for k, v in stats.items()
                                 if k in ("AP", "AP50", "AP75")}, step=state["step"])
                log(f"step {state['step']}: mask AP {metrics['segm']['AP']:.4f}, boundary AP "
                    f"{metrics['boundary']['AP']:.4f}, box AP {metrics['bbox']['AP']:.4f}")
                if final and args.predictions_out and args.predict_split == "validation":
                    write_json(Path(args.predictions_out), predictions)
    bar.close()
    if args.predict_split == "train" and accelerator.is_main_process:
        rows = held_out_rows if args.fold else train_rows
        top_k = detections_per_image(accelerator.unwrap_model(model), benchmark_id)
        write_json(Path(args.predictions_out), predict(accelerator.unwrap_model(model), rows, list(range(len(rows))),
                                                       config, [c["id"] for c in categories], accelerator.device,
                                                       top_k=top_k))
        train_mode(model, frozen)
        log(f"wrote {'held-out' if args.fold else 'in-sample'} predictions on {len(rows)} train images to "
            f"{args.predictions_out}")
    log(f"trained to step {state['step']} ({state['step'] - first_step} steps in {time.perf_counter() - started:.1f} s)")

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        from transformers import Mask2FormerImageProcessorPil

        from hf_noisy.fsutil import atomic_directory

        final_dir = output_dir / "model"
        with atomic_directory(final_dir, overwrite=True) as tmp:
            accelerator.unwrap_model(model).save_pretrained(tmp)
            Mask2FormerImageProcessorPil(size={"shortest_edge": config.eval_short_edge,
                                            "longest_edge": config.eval_max_size}).save_pretrained(tmp)
            write_json(tmp / "metrics.json", {"step": state["step"], "split": config.eval_split, "metrics": metrics})
            (tmp / "README.md").write_text(model_card(args, config, metrics, benchmark_id), encoding="utf-8")
        if hub is not None:
            commit = upload_model(hub, final_dir, args.push_to_hub)
            log(f"pushed {final_dir} to {args.push_to_hub} ({commit[:12]})")
    accelerator.wait_for_everyone()  # the ranks leave together, once the model is saved
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    from hf_noisy.errors import run_reporting_errors

    sys.exit(run_reporting_errors(main, Path(__file__).name))
