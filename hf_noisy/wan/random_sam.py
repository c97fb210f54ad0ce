"""Random-initialised SAM checkpoints for offline smoke runs, tests and benchmarks (no weights to download).

A random SAM's masks are meaningless, but every code path of ``hf-noisy wan`` (processor, image embeddings,
batched decoder, post-processing, cache, sharding, class noise) is the real one, so a run on a few images
checks a set-up end to end in seconds on a CPU:

>>> from hf_noisy.wan import random_sam
>>> random_sam("tiny-sam")  # doctest: +SKIP
PosixPath('tiny-sam')

Sizes (all with a matching ``SamProcessor``: longest side resized to the input size, padded square):

* ``tiny``: 64-d ViT with 2 layers at 256 px, 64-d prompt encoder and mask decoder (~0.34 M parameters, 1.4 MB);
* ``mid``: 256-d ViT with 4 layers at 512 px, SAM's real-size prompt encoder and mask decoder;
* ``huge``: the ViT-H configuration at 1024 px (the paper's model, random weights: for timing on a GPU).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..fsutil import atomic_directory
from .errors import WanError

__all__ = ["RANDOM_SAM_SIZES", "random_sam"]

#: The sizes :func:`random_sam` makes and their input side in pixels.
RANDOM_SAM_SIZES = {"tiny": 256, "mid": 512, "huge": 1024}


def random_sam(path: str | os.PathLike, *, size: str = "tiny", seed: int = 0, overwrite: bool = False) -> Path:
    """Write a random-initialised ``SamModel`` and its ``SamProcessor`` to the folder ``path`` and return it.

    The weights are transformers' own initialisation drawn with torch's RNG seeded with ``seed`` (the caller's
    RNG state is restored afterwards), so the same ``size``, ``seed`` and library versions give the same
    weights, and so the same ``hf-noisy wan`` output.
    The folder is written atomically; an existing ``path`` is refused unless ``overwrite``.
    Use it as ``model=`` of :func:`~hf_noisy.wan.weak_annotate` or ``hf-noisy wan --model``.
    """
    import torch
    from transformers import (SamConfig, SamMaskDecoderConfig, SamModel, SamProcessor, SamPromptEncoderConfig,
                              SamVisionConfig)
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    if size not in RANDOM_SAM_SIZES:
        raise WanError(f"size must be one of {sorted(RANDOM_SAM_SIZES)}, got {size!r}")
    side = RANDOM_SAM_SIZES[size]
    if size == "tiny":
        vision = SamVisionConfig(hidden_size=64, output_channels=64, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=side, patch_size=16, window_size=4, global_attn_indexes=[1], mlp_dim=128,
                                 num_pos_feats=32)
        prompt = SamPromptEncoderConfig(hidden_size=64, image_size=side, patch_size=16)
        decoder = SamMaskDecoderConfig(hidden_size=64, mlp_dim=128, num_attention_heads=2, iou_head_hidden_dim=64)
    elif size == "mid":
        vision = SamVisionConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, image_size=side,
                                 window_size=8, global_attn_indexes=[1, 3], mlp_dim=1024)
        prompt = SamPromptEncoderConfig(image_size=side)
        decoder = SamMaskDecoderConfig()
    else:
        vision = SamVisionConfig(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                                 global_attn_indexes=[7, 15, 23, 31], mlp_dim=5120)
        prompt = SamPromptEncoderConfig()
        decoder = SamMaskDecoderConfig()
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    with torch.random.fork_rng(devices=[]):  # transformers' own initialisation, seeded; global RNG restored
        torch.manual_seed(seed)
        model = SamModel(config).eval()
    processor = SamImageProcessorPil(size={"longest_edge": side}, pad_size={"height": side, "width": side})
    with atomic_directory(path, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        SamProcessor(processor).save_pretrained(tmp)
    return Path(path)

