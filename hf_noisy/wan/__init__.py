"""COCO-WAN: weak-annotation noise, every mask re-made by SAM from a weak prompt (paper sec. 3.4).

Needs the ``wan`` extra (``pip install -e ".[wan]"``: transformers, torch, accelerate).

>>> from hf_noisy.wan import weak_annotate
>>> weak_annotate("instances_train2017.json", "train2017/", "wan/medium.json", prompt="point")  # doctest: +SKIP

Modules: :mod:`~hf_noisy.wan.prompts` (box / point from the clean mask, as the released scripts),
:mod:`~hf_noisy.wan.sam` (transformers' SAM, batched decoder calls), :mod:`~hf_noisy.wan.cache` (resumable
per-chunk cache), :mod:`~hf_noisy.wan.annotate` (the run: sharding, merge, class noise, output),
:mod:`~hf_noisy.wan.random_sam` (random SAM checkpoints for offline smoke runs).
"""

from .annotate import SAM_IOU_DECIMALS, WAN_LEVELS, WanError, WanSummary, level_of, weak_annotate
from .prompts import PROMPT_KINDS, make_prompt, mask_box
from .random_sam import RANDOM_SAM_SIZES, random_sam
from .sam import DEFAULT_MODEL, SamSegmenter, decoder_dtype_for, load_image, model_fingerprint

__all__ = [
    "DEFAULT_MODEL",
    "PROMPT_KINDS",
    "RANDOM_SAM_SIZES",
    "SAM_IOU_DECIMALS",
    "SamSegmenter",
    "WAN_LEVELS",
    "WanError",
    "WanSummary",
    "decoder_dtype_for",
    "level_of",
    "load_image",
    "make_prompt",
    "mask_box",
    "model_fingerprint",
    "random_sam",
    "weak_annotate",
]
