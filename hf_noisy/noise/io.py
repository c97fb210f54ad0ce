"""File to file: read a COCO file, noise it, write the result atomically.

A file is noised as a stream (:mod:`hf_noisy.noise.stream`): memory follows the images and a chunk of
annotations, not the file. A file the streaming reader does not follow to the letter
(:class:`~hf_noisy.coco_stream.NotStreamable`: not JSON, ``NaN`` literals, a key given twice...) is read whole,
as before, which words its problem (or accepts it). Either way the output bytes are the same.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..coco import CocoFormatError, parse_coco_bytes
from ..coco_stream import NotStreamable, scan_coco
from ..fsutil import atomic_write_bytes, check_output
from .engine import NoiseSummary, noise_to_json
from .spec import NoiseSpec
from .stream import noise_layout

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
    ``overwrite``); an existing one is replaced only with ``overwrite`` (see :func:`hf_noisy.fsutil.check_output`).
    The annotations are streamed (see the module docstring); the output's annotations wait in an unnamed
    temporary file beside ``output_path`` (removed by the kernel however the run ends) until the summary that
    precedes them is known.
    """
    source = Path(input_path)
    check_output(output_path, [source, *spec.input_files()], overwrite=overwrite)
    if not source.is_file():
        raise CocoFormatError("no such file", source=str(source))
    parent = Path(output_path).parent
    try:
        layout = scan_coco(source)
        with tempfile.TemporaryFile(dir=parent if parent.is_dir() else None) as body:
            before, after, summary = noise_layout(layout, spec, body, num_proc=num_proc, progress=progress,
                                                  allow_empty_masks=allow_empty_masks, source=str(source))
            body.seek(0)
            atomic_write_bytes(output_path, _Joined(before, body, after), overwrite=overwrite)
        return summary
    except NotStreamable:
        pass
    raw = source.read_bytes()
    data = parse_coco_bytes(raw, source=str(source))
    text, summary = noise_to_json(
        data, spec, num_proc=num_proc, progress=progress, input_sha256=hashlib.sha256(raw).hexdigest(),
        allow_empty_masks=allow_empty_masks, source=str(source),
    )
    atomic_write_bytes(output_path, text, overwrite=overwrite)
    return summary


class _Joined:
    """``before``, then the rest of the binary file ``body``, then ``after``, read as one file."""

    def __init__(self, before: bytes, body: BinaryIO, after: bytes) -> None:
        self._parts: list = [before, body, after]

    def read(self, size: int = -1) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                if part:
                    return part
                continue
            data = part.read(size)
            if data:
                return data
            self._parts.pop(0)
        return b""
