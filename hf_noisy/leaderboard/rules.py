"""Which evaluation rules a benchmark uses: the one place that picks them.

COCO-N, Cityscapes-N and COCO-WAN are scored with COCO rules (:func:`hf_noisy.metrics.evaluate_coco`, at most
100 detections per image); LVIS-N with LVIS rules (``hf_noisy.metrics.evaluate_lvis``: federated
negatives, 300 detections per image, APr/APc/APf), as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sandbox import SandboxLimits

__all__ = ["COCO_RULES", "LVIS_RULES", "Rules", "limits_text", "rules_for", "score"]

IOU_TYPES = ("segm", "bbox", "boundary")


@dataclass(frozen=True)
class Rules:
    """``protocol``: ``"coco"`` or ``"lvis"``; ``max_per_image``: detections allowed (and kept) per image.

    The caps a complete submission of the benchmark fits in: ``max_compressed_bytes`` (the upload, gzip or
    plain) and ``max_uncompressed_bytes`` (after streamed decompression); and the scoring budgets of the sandbox
    (``cpu_seconds`` of CPU time, ``memory_mb`` of memory) for checking and scoring a file of that size. Sized
    from a complete validation submission at ``max_per_image`` detections per image: COCO val, 5k images x 100,
    about 300 MB of JSON; LVIS v1 val, 19.8k images x 300 = 5.9M detections, about 3 GB of JSON, about 1 GB
    gzipped. Scoring streams the file in bounded memory (about 0.6 KB per detection, measured by the
    benchmarks' --scale sweeps).
    """

    protocol: str
    max_per_image: int
    # Rules compare (and hash) by how they score; the caps and budgets ride along.
    max_compressed_bytes: int = field(default=256 * 2**20, compare=False)
    max_uncompressed_bytes: int = field(default=1024 * 2**20, compare=False)
    cpu_seconds: float = field(default=1800.0, compare=False)
    memory_mb: float = field(default=8192.0, compare=False)
    #: The check a submit runs before it enqueues (its own budget, whatever the file's size: a file it cannot
    #: check in full within it is checked in full when it is scored, on its submitter's scoring budget).
    check_cpu_seconds: float = field(default=20.0, compare=False)
    check_memory_mb: float = field(default=1024.0, compare=False)

    def sandbox(self, cpu_seconds: float | None = None, memory_mb: float | None = None,
                wall_seconds: float | None = None) -> "SandboxLimits":
        """The sandbox budgets of one check or one scoring: ``cpu_seconds``, ``memory_mb`` (these rules' where
        ``None``), and a wall-clock limit (default: twice the CPU time plus 10 minutes, for start-up and a busy
        machine)."""
        from .sandbox import SandboxLimits

        cpu = self.cpu_seconds if cpu_seconds is None else cpu_seconds
        return SandboxLimits(cpu_seconds=cpu, memory_mb=self.memory_mb if memory_mb is None else memory_mb,
                             wall_seconds=2 * cpu + 600 if wall_seconds is None else wall_seconds)

    def check_sandbox(self) -> "SandboxLimits":
        """The budgets of the check a submit runs: ``check_cpu_seconds`` of CPU time, ``check_memory_mb`` of
        memory, a wall-clock limit of three times the CPU time plus 60 s (start-up, ground truth, a busy
        machine), and no retry (an upload that gets its check killed costs one check, not three)."""
        from .sandbox import SandboxLimits

        return SandboxLimits(cpu_seconds=self.check_cpu_seconds, memory_mb=self.check_memory_mb,
                             wall_seconds=3 * self.check_cpu_seconds + 60, retries=0)


#: LVIS-N: a complete LVIS v1 val submission (about 3 GB uncompressed, 1 GB gzipped) with room to spare.
LVIS_RULES = Rules("lvis", 300, max_compressed_bytes=1536 * 2**20, max_uncompressed_bytes=4096 * 2**20,
                   cpu_seconds=7200.0, memory_mb=8192.0)
#: COCO-N, Cityscapes-N, COCO-WAN: a complete COCO val submission (about 300 MB) with room to spare.
COCO_RULES = Rules("coco", 100)


def rules_for(benchmark: str) -> Rules:
    """The rules of ``benchmark`` (LVIS-N: LVIS rules, 300 detections per image; others: COCO rules, 100), with
    its upload caps and scoring budgets."""
    return LVIS_RULES if benchmark == "lvis-n" else COCO_RULES


def limits_text(benchmarks: tuple[str, ...] = ("coco-n", "cityscapes-n", "lvis-n", "coco-wan")) -> str:
    """The per-benchmark limits as a Markdown table, for the protocol page."""
    lines = ["| benchmark | rules | detections per image | upload (compressed) | uncompressed | CPU time | memory |",
             "|---|---|---|---|---|---|---|"]
    for name in benchmarks:
        r = rules_for(name)
        lines.append(f"| {name} | {r.protocol.upper()} | {r.max_per_image} | {r.max_compressed_bytes / 2**20:,.0f} MiB | "
                     f"{r.max_uncompressed_bytes / 2**20:,.0f} MiB | {r.cpu_seconds:,.0f} s | {r.memory_mb / 1024:g} GiB |")
    return "\n".join(lines)


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
