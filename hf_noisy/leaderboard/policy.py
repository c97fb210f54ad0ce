"""What a leaderboard allows: caps on a submission, quotas per submitter, and the sandbox's budgets, resolved
for a benchmark in one place.

The numbers per benchmark are the registry's (:class:`hf_noisy.benchmarks.BoardBudgets`: sized from a complete
validation submission at the benchmark's detections per image). Everything here that can be ``None`` means
"the benchmark's value", and :func:`_resolve` is the one place that fills it in: :meth:`Limits.for_benchmark`
for the size caps, :func:`scoring_limits` and :func:`check_limits` for the sandbox. A leaf of the leaderboard:
it imports the registry and the errors, nothing else of hf-noisy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import benchmarks
from ..benchmarks import BoardBudgets
from ..errors import HfNoisyError

__all__ = ["Limits", "SandboxLimits", "board_budgets", "check_limits", "limits_text", "scoring_limits"]


@dataclass(frozen=True)
class Limits:
    """Caps on one submission. Sizes in bytes: ``max_compressed_bytes`` (the upload as sent, gzip or plain) and
    ``max_uncompressed_bytes`` (after streamed decompression); ``None``, the default, takes the benchmark's
    (:meth:`for_benchmark`). ``max_depth`` counts nested JSON arrays/objects (a valid results file needs 3:
    list > detection > segmentation > counts); ``max_polygon_vertices`` is per detection (all its polygons
    together; every vertex must also lie inside the image, within 1 pixel). Per submitter over the last 24
    hours: ``per_day`` accepted submissions, ``attempts_per_day`` uploads that reached the file check, refused
    ones included. Streamed caps on what an upload is padded with: ``max_ratio``, its decompressed size over
    its compressed size (a real results file gzips 3-15x; past
    :data:`~hf_noisy.leaderboard.submission.RATIO_SLACK` bytes, a gzip that has given more than this many times
    the bytes it has read is refused as a bomb), and ``max_blank_run``, the longest run of JSON whitespace, in
    bytes (a real file has a few spaces in a row)."""

    max_compressed_bytes: int | None = None
    max_uncompressed_bytes: int | None = None
    max_depth: int = 8
    max_name_length: int = 100
    max_url_length: int = 300
    max_polygon_vertices: int = 4096
    per_day: int = 5
    attempts_per_day: int = 20
    max_ratio: float = 50.0
    max_blank_run: int = 4 * 2**20

    def for_benchmark(self, benchmark: str) -> Limits:
        """These limits with the size caps left ``None`` set to ``benchmark``'s (an explicit value, 0 included,
        stays)."""
        return replace(self, **_resolve(benchmark, max_compressed_bytes=self.max_compressed_bytes,
                                        max_uncompressed_bytes=self.max_uncompressed_bytes))


@dataclass(frozen=True)
class SandboxLimits:
    """Budgets for one upload, on top of the interpreter, libraries and ground truth: ``cpu_seconds`` of CPU
    time, ``memory_mb`` of data memory (heap and private mappings), ``wall_seconds`` of real time for the
    whole child (start-up and ground-truth loading included), and ``retries``: how many more times a child
    killed by an outside signal (not its CPU limit) is run before the upload fails with that signal. A
    benchmark's own: :func:`scoring_limits`, :func:`check_limits`."""

    cpu_seconds: float
    memory_mb: float
    wall_seconds: float = 7200.0
    retries: int = 2


def board_budgets(benchmark: str) -> BoardBudgets:
    """``benchmark``'s caps and budgets; :class:`HfNoisyError` for an unknown id or one no board holds."""
    budgets = benchmarks.get(benchmark).board
    if budgets is None:
        raise HfNoisyError(f"{benchmark} is not on the leaderboard; a board holds "
                           f"{', '.join(benchmarks.board_ids())}")
    return budgets


def _resolve(benchmark: str, **given: Any) -> dict[str, Any]:
    """``given`` with every ``None`` replaced by ``benchmark``'s value of that name: the one place where "None
    means the benchmark's" is decided."""
    budgets = board_budgets(benchmark)
    return {name: getattr(budgets, name) if value is None else value for name, value in given.items()}


def scoring_limits(benchmark: str, cpu_seconds: float | None = None, memory_mb: float | None = None,
                   wall_seconds: float | None = None) -> SandboxLimits:
    """The sandbox budgets for scoring a submission of ``benchmark``: ``cpu_seconds`` and ``memory_mb`` (the
    benchmark's where ``None``; each given one overrides only itself), and a wall-clock limit (default: twice
    the CPU time plus 10 minutes, for start-up and a busy machine)."""
    resolved = _resolve(benchmark, cpu_seconds=cpu_seconds, memory_mb=memory_mb)
    wall = 2 * resolved["cpu_seconds"] + 600 if wall_seconds is None else wall_seconds
    return SandboxLimits(wall_seconds=wall, **resolved)


def check_limits(benchmark: str) -> SandboxLimits:
    """The budgets of the check a submit runs before it enqueues (whatever the file's size; a file it cannot
    check in full within them is checked in full when scored, on its submitter's scoring budget): the
    benchmark's check CPU time and memory, a wall-clock limit of three times the CPU time plus 60 s (start-up,
    ground truth, a busy machine), and no retry (an upload that gets its check killed costs one check)."""
    budgets = board_budgets(benchmark)
    return SandboxLimits(cpu_seconds=budgets.check_cpu_seconds, memory_mb=budgets.check_memory_mb,
                         wall_seconds=3 * budgets.check_cpu_seconds + 60, retries=0)


def limits_text(names: tuple[str, ...] | None = None) -> str:
    """The per-benchmark limits as a Markdown table (default: every benchmark a board holds), for the protocol
    page and the leaderboard guide (docs/guide/leaderboard.md)."""
    lines = ["| benchmark | rules | detections per image | upload (compressed) | uncompressed | CPU time | memory |",
             "|---|---|---|---|---|---|---|"]
    for name in benchmarks.board_ids() if names is None else names:
        record, b = benchmarks.get(name), board_budgets(name)
        lines.append(f"| {name} | {record.protocol.upper()} | {record.detections_per_image} | "
                     f"{b.max_compressed_bytes / 2**20:,.0f} MiB | {b.max_uncompressed_bytes / 2**20:,.0f} MiB | "
                     f"{b.cpu_seconds:,.0f} s | {b.memory_mb / 1024:g} GiB |")
    return "\n".join(lines)
