"""How a board scores a benchmark's submissions: the registry's protocol (:attr:`hf_noisy.benchmarks.Benchmark.protocol`)
and detections per image, evaluated by :mod:`hf_noisy.metrics`. The board owns no scoring rule of its own.

COCO-N, Cityscapes-N and COCO-WAN are scored with COCO rules, LVIS-N with LVIS rules (federated negatives,
APr/APc/APf), as the paper does: :func:`hf_noisy.metrics.evaluate` with the record's protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import benchmarks

__all__ = ["Rules", "rules_for", "score"]


@dataclass(frozen=True)
class Rules:
    """``protocol``: ``"coco"`` or ``"lvis"``; ``max_per_image``: detections allowed (and kept) per image."""

    protocol: str
    max_per_image: int


def rules_for(benchmark: str) -> Rules:
    """The scoring rules of ``benchmark`` (an id of :mod:`hf_noisy.benchmarks`; an unknown one is
    :class:`~hf_noisy.benchmarks.UnknownBenchmark`)."""
    record = benchmarks.get(benchmark)
    return Rules(record.protocol, record.detections_per_image)


def score(benchmark: str, gt: dict, predictions: list | str, num_proc: int | None = None) -> dict[str, dict[str, float]]:
    """Every summary number per IoU type (:data:`hf_noisy.metrics.IOU_TYPES`), as ``hf-noisy evaluate --json``
    prints them (fractions in [0, 1], ``-1`` where undefined). ``predictions``: a results list or a results
    file's path (read in bounded memory); ``num_proc``: processes (default: the CPUs this process may use; the
    numbers are the same for any value)."""
    from ..metrics import IOU_TYPES, available_cpus, evaluate

    rules = rules_for(benchmark)
    results = evaluate(gt, predictions, rules.protocol, IOU_TYPES, max_dets=rules.max_per_image,
                       num_proc=available_cpus() if num_proc is None else num_proc)
    return {name: dict(result.stats) for name, result in results.items()}
