"""File to file: read a COCO file, noise it, write the result atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..coco import CocoFormatError, parse_coco_bytes, validate_coco, write_coco
from .engine import NoiseResult, apply_noise
from .spec import NoiseSpec

__all__ = ["noise_file"]


def noise_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    spec: NoiseSpec,
    *,
    num_proc: int = 1,
    progress: bool = False,
    allow_empty_masks: bool = False,
) -> NoiseResult:
    """Noise a COCO instance file into ``output_path``.

    The input is validated first (a bad file raises :class:`~hf_noisy.coco.CocoFormatError` naming the
    annotation and field, and nothing is written); the output is written atomically. The output's
    ``info.hf_noisy`` records the spec, its hash, the package version and the input file's SHA-256.
    """
    source = Path(input_path)
    if not source.is_file():
        raise CocoFormatError("no such file", source=str(source))
    raw = source.read_bytes()
    data = parse_coco_bytes(raw, source=str(source))
    validate_coco(data, source=str(source), check_masks=False)
    try:
        result = apply_noise(
            data, spec, num_proc=num_proc, progress=progress, input_sha256=hashlib.sha256(raw).hexdigest(),
            validate=False, allow_empty_masks=allow_empty_masks,
        )
    except CocoFormatError as err:
        raise CocoFormatError(str(err).removeprefix("input: "), source=str(source)) from None
    write_coco(result.data, output_path)
    return result
