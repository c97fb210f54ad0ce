"""Which evaluation rules a benchmark uses: the one place that picks them.

COCO-N, Cityscapes-N and COCO-WAN are scored with COCO rules (:func:`hf_noisy.metrics.evaluate_coco`, at most
100 detections per image); LVIS-N with LVIS rules (``hf_noisy.metrics.evaluate_lvis``: federated
negatives, 300 detections per image, APr/APc/APf), as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rules", "rules_for", "score"]

IOU_TYPES = ("segm", "bbox", "boundary")


@dataclass(frozen=True)
class Rules:
    """``protocol``: ``"coco"`` or ``"lvis"``; ``max_per_image``: detections allowed (and kept) per image."""

    protocol: str
    max_per_image: int


def rules_for(benchmark: str) -> Rules:
    """The rules of ``benchmark`` (LVIS-N: LVIS rules, 300 detections per image; others: COCO rules, 100)."""
    return Rules("lvis", 300) if benchmark == "lvis-n" else Rules("coco", 100)


def score(benchmark: str, gt: dict, predictions: list | str, num_proc: int | None = None) -> dict[str, dict[str, float]]:
    """Every summary number per IoU type (``segm``, ``bbox``, ``boundary``), as ``hf-noisy evaluate --json``
    prints them (fractions in [0, 1], ``-1`` where undefined). ``predictions``: a results list or a results
    file's path (read in bounded memory); ``num_proc``: processes (default: the CPUs this process may use; the
    numbers are the same for any value)."""
    from ..metrics import available_cpus

    rules = rules_for(benchmark)
    num_proc = available_cpus() if num_proc is None else num_proc
    if rules.protocol == "lvis":
        from ..metrics import evaluate_lvis

        results = evaluate_lvis(gt, predictions, IOU_TYPES, max_dets=rules.max_per_image, num_proc=num_proc)
    else:
        from ..metrics import evaluate_coco

        results = evaluate_coco(gt, predictions, IOU_TYPES, max_dets=rules.max_per_image, num_proc=num_proc)
    return {name: dict(result.stats) for name, result in results.items()}
