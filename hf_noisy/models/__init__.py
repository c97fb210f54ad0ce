"""Models trained on the noisy benchmarks: transformers' Mask2Former glue, importable from any training loop.

Imported lazily: ``import hf_noisy.models`` loads no torch, transformers or datasets; each name loads its module
on first use (``pip install -e ".[train]"`` for those that need torch).

* :mod:`.train_config` — :class:`TrainConfig`, :func:`load_config` (YAML, validated; :class:`ConfigError`).
* :mod:`.data` — dataset rows -> Mask2Former inputs: :class:`TrainDataset`, :class:`Jitter`, :func:`collate`,
  :class:`EpochBatchSampler`, :func:`train_batches`, :func:`class_names_of`, :func:`fold_indices`.
* :mod:`.mask2former` — :func:`build_model` and the training recipe (:func:`training_recipe`: class loss,
  :func:`param_groups`, :func:`poly_with_warmup`, :func:`frozen_batch_norms`; :func:`train_mode`).
* :mod:`.losses` — noise-robust class losses (SCE, GCE, soft bootstrapping): :func:`install_class_loss`.
* :mod:`.postprocess` — Mask2Former outputs -> COCO results with RLE masks: :func:`predict`,
  :func:`full_resolution_instances`.
* :mod:`.instance_log` — per-instance training losses with noise provenance (:class:`InstanceLossLog`).
* :mod:`.checkpoints` — a run's folder: complete-or-absent checkpoints and final model, :func:`write_json`.
* :mod:`.publish` — a trained model's Hub repo, card and upload.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "train_config", "ConfigError": "train_config", "load_config": "train_config",
    "shipped_configs": "train_config", "add_config_flags": "train_config", "config_overrides": "train_config",
    "validate_config": "train_config", "fold_arg": "train_config",
    "TrainDataset": "data", "Jitter": "data", "collate": "data", "EpochBatchSampler": "data",
    "class_names_of": "data", "fold_indices": "data", "train_batches": "data",
    "build_model": "mask2former", "PretrainedLeakError": "mask2former", "frozen_batch_norms": "mask2former",
    "train_mode": "mask2former", "param_groups": "mask2former", "poly_with_warmup": "mask2former",
    "training_recipe": "mask2former",
    "NoisyLabelLoss": "losses", "install_class_loss": "losses", "symmetric_cross_entropy": "losses",
    "generalized_cross_entropy": "losses", "soft_bootstrapping": "losses",
    "predict": "postprocess", "full_resolution_instances": "postprocess", "to_coco_results": "postprocess",
    "metric_inputs": "postprocess",
    "InstanceLossLog": "instance_log", "provenance_of": "instance_log",
    "RunFolderError": "checkpoints", "save_checkpoint": "checkpoints", "load_checkpoint": "checkpoints",
    "latest_checkpoint": "checkpoints", "checkpoint_folder": "checkpoints", "write_json": "checkpoints",
    "save_model": "checkpoints", "claim_output_dir": "checkpoints", "resume_hint": "checkpoints",
    "create_model_repo": "publish", "upload_model": "publish", "model_card": "publish",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
