"""File to file: read a COCO file, noise it, write the result atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..coco import CocoFormatError, parse_coco_bytes
from ..fsutil import atomic_write_bytes, check_output
from .engine import NoiseSummary, noise_to_json
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
    overwrite: bool = False,
) -> NoiseSummary:
    """Noise a COCO instance file into ``output_path``; returns what was applied.

    The input is validated (a bad file raises :class:`~hf_noisy.coco.CocoFormatError` naming the file,
    annotation and field, and nothing is written); the output is written atomically. The output's
    ``info.hf_noisy`` records the spec, its hash, the package version and the input file's SHA-256.
    ``output_path`` may not be the input or a file the spec reads (its class-noise matrix; refused even with
    ``overwrite``); an existing one is replaced only
    with ``overwrite`` (see :func:`hf_noisy.fsutil.check_output`).
    """
    source = Path(input_path)
    check_output(output_path, [source, *spec.input_files()], overwrite=overwrite)
    if not source.is_file():
        raise CocoFormatError("no such file", source=str(source))
    raw = source.read_bytes()
    data = parse_coco_bytes(raw, source=str(source))
    text, summary = noise_to_json(
        data, spec, num_proc=num_proc, progress=progress, input_sha256=hashlib.sha256(raw).hexdigest(),
        allow_empty_masks=allow_empty_masks, source=str(source),
    )
    atomic_write_bytes(output_path, text, overwrite=overwrite)
    return summary
