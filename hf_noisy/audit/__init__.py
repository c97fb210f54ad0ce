"""Audit an instance-segmentation dataset: which annotations are likely wrong, judged by a model's predictions.

>>> from hf_noisy.audit import audit_coco, audit_files
>>> audit = audit_coco(coco_dict, coco_results)              # doctest: +SKIP
>>> audit["annotations"][0]                                  # the most suspicious one  # doctest: +SKIP

Output (a JSON object; :func:`audit_files` writes it):

* ``annotations``: one row per annotation, most suspicious first (``score`` descending, then ``id``):
  ``id``, ``image_id``, ``category_id`` (as labelled); ``score`` in [0, 1], higher = more likely wrong,
  comparable across annotations; ``suspected``: ``"class"``, ``"mask"``, ``"spurious"`` or ``"none"`` (below
  ``flag_score``); ``matched_iou`` / ``boundary_iou``: mask IoU and Boundary IoU with the matched prediction
  (``null`` when none); ``suggested_category_id``: the class the overlapping predictions prefer, when it is
  not the label (else ``null``); ``reason``: one human-readable sentence; ``op``: when the mask part reaches
  ``flag_score``, the spatial error its shape suggests (``dilate``, ``erode``, ``localization``,
  ``approximation``), else ``null``; ``prediction``: index
  of the matched prediction in the results list; ``scores``: the ``class``, ``mask`` and ``spurious`` parts
  (``score`` is their maximum). Crowd regions are listed with score 0 and not audited.
* ``missing``: confident predictions (``score >= missing_score``) that no annotation accounts for:
  ``image_id``, ``category_id``, ``segmentation`` (RLE), ``score``, ``prediction``.
* ``estimated``: dataset-level rates, as shares of the audited annotations: ``class_flip``, ``dilate``,
  ``erode``, ``localization``, ``approximation``, ``spurious``; ``missing`` (a count); counts per
  ``suspected`` kind; ``median_area_ratio`` (annotation area / prediction area over the matches: > 1 means
  dilated labels, < 1 eroded) and ``median_displacement_px`` (the same, as a signed boundary shift in pixels).
* ``info``: the package version, the config, image / prediction / match counts, the model's recall; from
  :func:`audit_files` also the input paths and their SHA-256.

How annotations are scored: :mod:`hf_noisy.audit.score`.
"""

from .io import audit_files
from .overlay import render_audit_overlays
from .score import OPS, SUSPECTS, AuditConfig, AuditError, audit_coco

__all__ = ["OPS", "SUSPECTS", "AuditConfig", "AuditError", "audit_coco", "audit_files", "render_audit_overlays"]
