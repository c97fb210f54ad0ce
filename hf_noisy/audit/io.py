"""File to file: read an annotation file and a results file, audit, write the audit JSON (and overlays)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import orjson

from ..coco import file_sha256, load_coco
from ..errors import HfNoisyError
from ..fsutil import atomic_write_bytes, check_output
from ..metrics.predictions import PredictionError, load_predictions
from .score import AuditConfig, audit_coco

__all__ = ["audit_files"]


def audit_files(annotations: str | os.PathLike, predictions: str | os.PathLike | Sequence[str | os.PathLike],
                output: str | os.PathLike, *,
                config: AuditConfig = AuditConfig(), images: str | os.PathLike | None = None, top: int = 20,
                overlays: str | os.PathLike | None = None, overwrite: bool = False,
                progress: bool = False) -> dict:
    """Audit the COCO file ``annotations`` with the COCO results file ``predictions``; write the audit to
    ``output`` (JSON, atomically) and return it.

    ``predictions`` may be several files, read as one list: the held-out folds of a cross-fitted model
    (``train_mask2former.py --fold K/N --predict-split train``), each image predicted by a model that did not
    train on it.

    With ``images`` (the folder of the images' ``file_name``), the ``top`` most suspicious annotations are drawn
    into ``overlays`` (default: ``<output without .json>_overlays/``). An existing ``output`` or overlay folder is
    refused unless ``overwrite``, and one that is an input always (:func:`~hf_noisy.fsutil.check_output`). Bad input raises
    :class:`~hf_noisy.coco.CocoFormatError` or :class:`~hf_noisy.metrics.PredictionError` naming the file,
    item and field, before anything is written. ``info`` records both files' paths and SHA-256. ``progress``: a
    progress bar on stderr of the images audited.
    """
    files = [predictions] if isinstance(predictions, (str, os.PathLike)) else list(predictions)
    if not files:
        raise HfNoisyError("no predictions file given")
    inputs = [annotations, *files, images]
    check_output(output, inputs, overwrite=overwrite)
    folder = None
    if images is not None:
        if not Path(images).is_dir():
            raise HfNoisyError(f"image folder {images}: no such folder")
        output_path = Path(output)
        folder = Path(overlays) if overlays is not None else output_path.with_name(output_path.stem + "_overlays")
        check_output(folder, inputs, overwrite=overwrite)
    gt = load_coco(annotations, allow_empty_masks=True)
    results = [r for path in files for r in load_predictions(path)]
    try:
        audit = audit_coco(gt, results, config, progress=progress)
    except PredictionError as err:
        raise PredictionError(f"{', '.join(map(str, files))}: {err}") from None
    audit["info"].update(annotations=str(annotations), annotations_sha256=file_sha256(annotations))
    if len(files) == 1:
        audit["info"].update(predictions_file=str(files[0]), predictions_sha256=file_sha256(files[0]))
    else:
        audit["info"].update(predictions_files=[str(f) for f in files],
                             predictions_sha256=[file_sha256(f) for f in files])
    if folder is not None:
        from .overlay import render_audit_overlays

        render_audit_overlays(audit, gt, results, images, folder, top=top)
    atomic_write_bytes(output, orjson.dumps(audit, option=orjson.OPT_INDENT_2) + b"\n")
    return audit
