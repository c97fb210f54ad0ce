"""transformers' Mask2Former for a benchmark's label set, and its training recipe: a fresh model (optionally with
an ImageNet backbone) or a checkpoint with a new class head; frozen BatchNorm; AdamW groups; the poly schedule.

A starting point already trained on COCO (or on the dataset's own labels) leaks clean labels into a noisy-label
run: :func:`build_model` refuses it with :class:`PretrainedLeakError` unless ``allow_coco_pretrained``.
torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import HfNoisyError
from .train_config import TrainConfig

__all__ = ["OUT_FEATURES", "PretrainedLeakError", "build_model", "frozen_batch_norms", "load_backbone_weights",
           "looks_coco_trained", "param_groups", "poly_with_warmup", "train_mode", "training_recipe"]

#: The backbone stages Mask2Former's pixel decoder reads.
OUT_FEATURES = ["stage1", "stage2", "stage3", "stage4"]


class PretrainedLeakError(HfNoisyError):
    """The starting checkpoint was trained on COCO or on this label set (clean labels would leak in)."""


def looks_coco_trained(model_config: Any, name: str, class_names: list[str]) -> bool:
    """True if a Mask2Former checkpoint was trained on COCO or on this label set: its name says "coco", or
    half or more of the dataset's class names are among its ``id2label`` names."""
    if "coco" in name.lower() or "coco" in str(getattr(model_config, "_name_or_path", "")).lower():
        return True
    theirs = {str(v).lower() for v in (getattr(model_config, "id2label", None) or {}).values()}
    return len(theirs & {c.lower() for c in class_names}) >= max(1, len(class_names) // 2)


def build_model(config: TrainConfig, class_names: list[str], *, allow_coco_pretrained: bool = False,
                log: Callable[[str], Any] = print):
    """A ``Mask2FormerForUniversalSegmentation`` for ``class_names`` (label ``i`` is ``class_names[i]``): from
    ``model_name_or_path`` (new class head when the labels differ), or fresh with the backbone's ImageNet weights
    from ``backbone_checkpoint`` (or random weights from ``backbone_config``)."""
    from transformers import AutoConfig, Mask2FormerConfig, Mask2FormerForUniversalSegmentation, ResNetConfig, SwinConfig

    id2label = dict(enumerate(class_names))
    label2id = {name: i for i, name in id2label.items()}
    if config.model_name_or_path:
        source = AutoConfig.from_pretrained(config.model_name_or_path)
        if looks_coco_trained(source, config.model_name_or_path, class_names):
            if not allow_coco_pretrained:
                raise PretrainedLeakError(
                    f"{config.model_name_or_path} looks trained on COCO (or on these labels); starting from it leaks "
                    "clean labels into a noisy-label run. Pass allow_coco_pretrained=True (train_mask2former.py "
                    "--allow-coco-pretrained) to do it anyway.")
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

    encoder = model.model.pixel_level_module.encoder
    layers = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.requires_grad_(False)
    return layers


def train_mode(model, frozen: list = ()) -> None:
    """``model.train()``, except the ``frozen`` BatchNorm layers, which keep normalising with their stored
    statistics."""
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
        decay = not (param.ndim <= 1 or id(param) in no_decay
                     or name.endswith(("relative_position_bias_table", "level_embed")))
        groups.setdefault((id(param) in backbone, decay), []).append(param)
    return [{"params": params, "lr": config.learning_rate * (config.backbone_lr_multiplier if is_backbone else 1.0),
             "weight_decay": config.weight_decay if decay else 0.0}
            for (is_backbone, decay), params in sorted(groups.items())]


def training_recipe(config: TrainConfig, class_names: list[str], *, allow_coco_pretrained: bool = False,
                    log: Callable[[str], Any] = print):
    """Everything the optimizer steps need: ``(model, optimizer, scheduler, frozen)``: :func:`build_model` with
    the config's class loss (:func:`~hf_noisy.models.losses.install_class_loss`), the frozen BatchNorm layers
    (``freeze_batch_norm``; pass them to :func:`train_mode`), AdamW over :func:`param_groups` and the
    :func:`poly_with_warmup` ``LambdaLR`` schedule, to be stepped once per optimizer step. Draws random numbers
    only while building the model (seed before calling it for the same initial weights on every process)."""
    import torch

    from .losses import install_class_loss

    model = build_model(config, class_names, allow_coco_pretrained=allow_coco_pretrained, log=log)
    install_class_loss(model, config.class_loss, sce_alpha=config.sce_alpha, sce_beta=config.sce_beta,
                       gce_q=config.gce_q, bootstrap_beta=config.bootstrap_beta)
    frozen = frozen_batch_norms(model) if config.freeze_batch_norm else []
    optimizer = torch.optim.AdamW(param_groups(model, config), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_with_warmup(config))
    return model, optimizer, scheduler, frozen


def poly_with_warmup(config: TrainConfig) -> Callable[[int], float]:
    """LR factor of optimizer step ``s`` (for ``LambdaLR``): ``min(1, (s+1)/warmup) * (1 - s/max_steps)^power``."""
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
        return warm * max(0.0, 1.0 - step / config.max_steps) ** config.poly_power
    return factor
