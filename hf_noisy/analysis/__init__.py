"""Noise diagnostics over training runs and results files (the paper's Figures 6, 7 and 10).

* :func:`analyze_losses`: per-instance class and mask losses recorded by ``train_mask2former.py
  --log-instance-losses``, clean vs each noise op and vs class-flipped, per epoch (or step bucket), with the
  AUROC that says how separable noisy instances are from clean ones by their loss.
* :func:`analyze_confidence`: detection score histograms of several results files (e.g. one per noise level).

Reading needs ``pyarrow`` (losses), drawing ``matplotlib``: ``pip install -e ".[analysis]"``.
"""

from .confidence import ConfidenceReport, analyze_confidence
from .losses import LossReport, analyze_losses, auroc, instance_groups, load_instance_losses

__all__ = [
    "ConfidenceReport",
    "LossReport",
    "analyze_confidence",
    "analyze_losses",
    "auroc",
    "instance_groups",
    "load_instance_losses",
]
