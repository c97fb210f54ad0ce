"""Split names: one spelling inside hf-noisy, every usual spelling accepted at the edges.

Datasets on the Hub name their splits ``train``, ``validation`` and ``test``; COCO and Cityscapes name their
folders ``train2017``/``val2017`` and ``train``/``val``/``test``. Every command and library entry point that
takes a split name passes it through :func:`canonical_split` first, so ``val`` and ``validation`` mean the
same thing everywhere. A sliced split (``"validation[:10]"``, as ``datasets`` writes it) keeps its slice.
"""

from __future__ import annotations

from .errors import HfNoisyError

__all__ = ["SPLIT_ALIASES", "canonical_split"]

#: accepted spelling -> the canonical (Hugging Face) split name
SPLIT_ALIASES = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}


def canonical_split(name: str) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` for any accepted spelling (``"val"`` -> ``"validation"``;
    case and surrounding spaces are ignored; a ``[...]`` slice suffix is kept as is).

    Raises :class:`~hf_noisy.errors.HfNoisyError` naming the accepted spellings for anything else.
    """
    text = str(name).strip()
    base, bracket, rest = text.partition("[")
    canonical = SPLIT_ALIASES.get(base.strip().lower())
    if canonical is None:
        raise HfNoisyError(f"unknown split {name!r}; expected train, validation (or val) or test")
    return canonical + bracket + rest
