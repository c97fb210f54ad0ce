"""Mask AP, Boundary AP and box AP (COCO-style) as a Hugging Face ``evaluate`` module: the Space's script.

The module itself ships inside the hf-noisy package (``hf_noisy/metrics/mask_boundary_ap.py``; its path for
``evaluate.load`` is :func:`hf_noisy.metrics.evaluate_module_path`), and this Space installs hf-noisy
(requirements.txt), so the script only names it: ``evaluate`` takes the module's one ``evaluate.Metric``
class, wherever it is defined.
"""

from hf_noisy.metrics.mask_boundary_ap import MaskBoundaryAP

__all__ = ["MaskBoundaryAP"]
