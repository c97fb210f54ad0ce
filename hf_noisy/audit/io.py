"""File to file: read an annotation file and a results file, audit, write the audit JSON (and overlays)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from ..coco import file_sha256, load_coco
from ..errors import HfNoisyError
from ..fsutil import atomic_write_bytes, check_output
from ..metrics.predictions import PredictionError, load_predictions
from .score import AuditConfig, audit_coco

__all__ = ["audit_files"]


def audit_files(annotations: str | os.PathLike, predictions: str | os.PathLike, output: str | os.PathLike, *,
                config: AuditConfig = AuditConfig(), images: str | os.PathLike | None = None, top: int = 20,
                overlays: str | os.PathLike | None = None, overwrite: bool = False) -> dict:
    """Audit the COCO file ``annotations`` with the COCO results file ``predictions``; write the audit to
    ``output`` (JSON, atomically) and return it.

    With ``images`` (the folder of the images' ``file_name``), the ``top`` most suspicious annotations are drawn
    into ``overlays`` (default: ``<output without .json>_overlays/``). An existing ``output`` or overlay folder is
    refused unless ``overwrite``, and one that is an input always (:func:`~hf_noisy.fsutil.check_output`). Bad input raises
    :class:`~hf_noisy.coco.CocoFormatError` or :class:`~hf_noisy.metrics.PredictionError` naming the file,
    item and field, before anything is written. ``info`` records both files' paths and SHA-256.
    """
    inputs = [annotations, predictions, images]
    check_output(output, inputs, overwrite=overwrite)
    folder = None
    if images is not None:
        if not Path(images).is_dir():
            raise HfNoisyError(f"--images {images}: no such folder")
        output_path = Path(output)
        folder = Path(overlays) if overlays is not None else output_path.with_name(output_path.stem + "_overlays")
        check_output(folder, inputs, overwrite=overwrite)
    gt = load_coco(annotations, allow_empty_masks=True)
    results = load_predictions(predictions)
    try:
        audit = audit_coco(gt, results, config)
    except PredictionError as err:
        raise PredictionError(f"{predictions}: {err}") from None
    audit["info"].update(annotations=str(annotations), annotations_sha256=file_sha256(annotations),
                         predictions_file=str(predictions), predictions_sha256=file_sha256(predictions))
    if folder is not None:
        from .overlay import render_audit_overlays

        render_audit_overlays(audit, gt, results, images, folder, top=top)
    atomic_write_bytes(output, orjson.dumps(audit, option=orjson.OPT_INDENT_2) + b"\n")
    return audit
