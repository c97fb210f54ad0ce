"""The training config of ``train/train_mask2former.py``: one dataclass (:class:`TrainConfig`), read from a YAML
file (:func:`load_config`), checked field by field before anything is built, and offered as command-line flags
(:func:`add_config_flags` / :func:`config_overrides`; :func:`fold_arg` for ``--fold K/N``).

Every problem is a :class:`~hf_noisy.config_check.ConfigError` (an :class:`~hf_noisy.errors.HfNoisyError`) whose
one-line message names the file or the bad field. No torch here: ``--help`` and a bad config answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

import yaml

from ..config_check import ConfigError, check_config_values
from ..errors import HfNoisyError
from ..safe_yaml import load as load_yaml
from ..splits import canonical_split

__all__ = ["CHOICES", "ConfigError", "TrainConfig", "add_config_flags", "config_overrides", "fold_arg",
           "load_config", "shipped_configs", "validate_config"]


def _field(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


@dataclasses.dataclass
class TrainConfig:
    """Every key of a ``train/configs/*.yaml`` file (each also a ``--flag``). Sizes in pixels, steps in optimizer
    steps, learning rates per step (AdamW), probabilities in [0, 1]."""

    # model
    model_name_or_path: str | None = _field(None, "start from this Mask2Former checkpoint (Hub id or folder) instead of a fresh head")
    backbone: str = _field("swin", "backbone family of a fresh model: swin | resnet")
    backbone_checkpoint: str | None = _field(None, "ImageNet-pretrained backbone (Hub id or folder) loaded into the Mask2Former backbone")
    backbone_config: dict = _field({}, "SwinConfig/ResNetConfig kwargs of a randomly initialised backbone")
    freeze_batch_norm: bool = _field(False, "keep the backbone's BatchNorm layers at their pretrained statistics and affine weights (detectron2's FrozenBN: batch statistics of 2 images per GPU are too noisy)")
    mask2former: dict = _field({}, "Mask2FormerConfig kwargs (num_queries, hidden_dim, ...)")
    # data
    image_size: int = _field(1024, "training crop side (pixels)")
    min_scale: float = _field(0.1, "large-scale jitter: smallest scale")
    max_scale: float = _field(2.0, "large-scale jitter: largest scale")
    flip_prob: float = _field(0.5, "horizontal flip probability")
    eval_short_edge: int = _field(800, "evaluation resize: shorter side")
    eval_max_size: int = _field(1333, "evaluation resize: longest side at most")
    mask_postprocess: str = _field("full", "full (Mask2Former's inference: masks at image resolution) | transformers (post_process_instance_segmentation: masks at 384x384)")
    eval_batch_size: int = _field(1, "images per forward pass at evaluation (1: predictions do not depend on batching or process count)")
    num_workers: int = _field(4, "DataLoader workers per process")
    max_train_images: int | None = _field(None, "use only the first N training rows")
    max_eval_images: int | None = _field(None, "evaluate on the first N rows only")
    eval_split: str = _field("validation", "split to evaluate on (validation is clean in every config)")
    # optimisation
    per_device_batch_size: int = _field(2, "images per process and micro-batch")
    gradient_accumulation_steps: int = _field(1, "micro-batches per optimizer step")
    max_steps: int = _field(368750, "optimizer steps")
    learning_rate: float = _field(1e-4, "AdamW learning rate")
    backbone_lr_multiplier: float = _field(0.1, "backbone learning rate = lr x this")
    weight_decay: float = _field(0.05, "AdamW weight decay (0 for norms, biases, embeddings)")
    warmup_steps: int = _field(10, "linear warmup steps")
    poly_power: float = _field(0.9, "poly schedule: lr x (1 - step/max_steps)^power")
    max_grad_norm: float = _field(0.01, "clip the full model's gradient norm (0: off)")
    mixed_precision: str = _field("bf16", "no | bf16 | fp16 (CPU runs use no)")
    class_loss: str = _field("ce", "ce | sce (Symmetric Cross-Entropy) | gce (generalized CE) | bootstrap (soft bootstrapping)")
    sce_alpha: float = _field(1.0, "SCE: weight of CE")
    sce_beta: float = _field(1.0, "SCE: weight of reverse CE")
    gce_q: float = _field(0.7, "GCE: q in (0, 1] (CE as q -> 0)")
    bootstrap_beta: float = _field(0.95, "soft bootstrapping: weight of the label, 1 - beta of the prediction (CE at 1)")
    seed: int = _field(42, "seed of init, data order and augmentation")
    # bookkeeping
    checkpoint_steps: int = _field(5000, "save a checkpoint every N steps")
    eval_steps: int = _field(50000, "evaluate every N steps (and at the end)")
    log_steps: int = _field(20, "log losses every N steps")


#: The accepted values of each choice field.
CHOICES = {"backbone": ("swin", "resnet"), "mask_postprocess": ("full", "transformers"),
           "class_loss": ("ce", "sce", "gce", "bootstrap"), "mixed_precision": ("no", "bf16", "fp16")}


def validate_config(config: TrainConfig) -> TrainConfig:
    """``config`` with its evaluation split spelt canonically (``val`` -> ``validation``); raises
    :class:`ConfigError` naming the first field whose value is out of range."""
    try:
        eval_split = canonical_split(config.eval_split)
    except HfNoisyError as err:
        raise ConfigError(f"eval_split: {err}") from None
    for name, allowed in CHOICES.items():
        value = getattr(config, name)
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if not 0 < config.gce_q <= 1:
        raise ConfigError(f"gce_q must be in (0, 1], got {config.gce_q}")
    if not 0 <= config.bootstrap_beta <= 1:
        raise ConfigError(f"bootstrap_beta must be in [0, 1], got {config.bootstrap_beta}")
    return dataclasses.replace(config, eval_split=eval_split)


def load_config(name: str | Path, overrides: dict[str, Any] | None = None, *,
                config_dir: str | Path | None = None) -> TrainConfig:
    """The config ``name``: a ``.yaml``/``.yml`` path, or ``config_dir/<name>.yaml``; with the non-``None``
    ``overrides`` applied over the file (dict values are merged key by key) and validated."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml") and config_dir is not None:
        path = Path(config_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(config_dir).glob("*.yaml"))) if config_dir else "none"
        raise ConfigError(f"no config {str(name)!r} (known: {known}; or give a .yaml path)")
    try:  # every value checked before anything is built: one line, not a TypeError minutes in
        values = load_yaml(path.read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"a config is a mapping of keys to values, got a {type(values).__name__}")
        check_config_values(values, TrainConfig)
    except (HfNoisyError, ValueError) as err:  # safe_yaml's YamlError is a ValueError
        raise ConfigError(f"{path}: {err}") from None
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_config(TrainConfig(**values))


def shipped_configs(config_dir: str | Path, first: str = "tiny") -> dict[str, TrainConfig]:
    """Every ``config_dir/*.yaml`` by name, resolved (YAML over the dataclass defaults); ``first`` leads."""
    paths = sorted(Path(config_dir).glob("*.yaml"), key=lambda p: (p.stem != first, p.stem))
    return {path.stem: load_config(path) for path in paths}


def add_config_flags(parser: argparse.ArgumentParser, shown: dict[str, TrainConfig]) -> None:
    """One ``--flag`` per :class:`TrainConfig` field (``learning_rate`` -> ``--learning-rate``; dict fields take
    YAML), default ``None`` (keep the file's value); its help lists each config of ``shown`` with its value."""
    group = parser.add_argument_group(
        "config keys (override the YAML; [brackets]: each config's value, " + ", ".join(shown) + ")")
    for field in dataclasses.fields(TrainConfig):
        values = "; ".join(f"{name}: {_shown(getattr(config, field.name))}" for name, config in shown.items())
        group.add_argument("--" + field.name.replace("_", "-"), dest=f"cfg_{field.name}", metavar=field.name.upper(),
                           type=_parser_of(field), default=None,
                           help=f"{field.metadata.get('help', '')} [{values}]".replace("%", "%%"))


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config flags of parsed ``args`` (``None``: not given), by field name, for :func:`load_config`."""
    return {field.name: getattr(args, f"cfg_{field.name}") for field in dataclasses.fields(TrainConfig)}


def fold_arg(text: str) -> tuple[int, int]:
    """``--fold K/N`` (cross-fitting) as ``(K, N)`` with ``0 <= K < N`` and ``N >= 2``; an argparse ``type``."""
    k, _, n = text.partition("/")
    try:
        fold = (int(k), int(n))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N, e.g. 0/2, got {text!r}") from None
    if not (fold[1] >= 2 and 0 <= fold[0] < fold[1]):
        raise argparse.ArgumentTypeError(f"expected 0 <= K < N and N >= 2, got {text!r}")
    return fold


def _shown(value: Any) -> str:
    """A config value as one short YAML-ish string for ``--help``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}" if value else "{}"
    return "none" if value is None else str(value)


def _parser_of(field: dataclasses.Field) -> Callable[[str], Any]:
    """The argparse ``type`` of a field, from its annotation (text, as ``from __future__ import annotations``)."""
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
