"""Overlays: clean-vs-noisy pictures (:mod:`hf_noisy.viz.pair`, ``hf-noisy show``) and the pieces the audit's
overlays share: panels and their frame (:mod:`~hf_noisy.viz.panel`), legible labels (:mod:`~hf_noisy.viz.text`)
placed without overlap (:mod:`~hf_noisy.viz.placement`)."""

from .pair import changed, render_overlays, render_pair
from .placement import Placement, place_labels

__all__ = ["Placement", "changed", "place_labels", "render_overlays", "render_pair"]
