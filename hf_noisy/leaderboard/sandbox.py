"""Score one submission inside resource limits: ``python -m hf_noisy.leaderboard.sandbox ...``.

Run by :func:`hf_noisy.leaderboard.evaluate_pending` in a child process. The child imports the evaluation
stack and loads the (trusted) ground truth first, then caps itself: CPU time (a profiling timer, backed by
``RLIMIT_CPU``) and memory (``RLIMIT_DATA``: allocations beyond it fail). The limits are budgets for the
submission's own work on top of that baseline: reading, checking and scoring the detections. Only then does it read the submitted file (parsed as JSON with the
caps of :func:`~hf_noisy.leaderboard.submission.parse_results`; nothing in it can execute).

It writes ``{"metrics": {...}}`` or ``{"error": kind, "reason": ...}`` to ``--out`` atomically; exit status 0
means ``--out`` was written. The parent also limits wall-clock time (a sleeping child uses no CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
from pathlib import Path

EXIT_MEMORY = 3


def _data_size() -> int:
    """This process's data segment (``VmData``: heap and private writable mappings), in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmData line")


def _cap(cpu_seconds: float, memory_bytes: int) -> None:
    """CPU: ``ITIMER_PROF`` counts this process's CPU time up to the budget, then ``SIGPROF`` ends it (its
    default action; nothing here handles it); ``RLIMIT_CPU`` (whole seconds) backs it up. Memory:
    ``RLIMIT_DATA`` (heap and private writable mappings, Linux >= 4.7). ``RLIMIT_AS`` is not used: it counts
    address space that allocators and thread pools reserve without using, so it fails at random."""
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + cpu_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    limit = _data_size() + memory_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_noisy.leaderboard.sandbox")
    parser.add_argument("--gt", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cpu-seconds", type=float, required=True)
    parser.add_argument("--memory-mb", type=float, required=True)
    args = parser.parse_args(argv)

    import cv2  # noqa: F401  (import the whole stack before the caps, so the budget is the submission's own)
    import faster_coco_eval  # noqa: F401
    import pycocotools.mask  # noqa: F401

    from ..coco import load_coco
    from ..fsutil import atomic_write_text
    from ..metrics import coco_eval  # noqa: F401
    from .rules import rules_for, score
    from .submission import SubmissionError, check_results, parse_results

    if rules_for(args.benchmark).protocol == "lvis":
        from ..metrics import evaluate_lvis  # noqa: F401
    cv2.setNumThreads(1)
    gt = load_coco(args.gt, allow_empty_masks=True)
    out = Path(args.out)
    _cap(args.cpu_seconds, int(args.memory_mb * 2**20))
    try:
        raw = Path(args.predictions).read_bytes()
        results = parse_results(raw)
        check_results(results, gt, max_per_image=rules_for(args.benchmark).max_per_image)
        record = {"metrics": score(args.benchmark, gt, results)}
    except SubmissionError as err:
        record = {"error": err.kind, "reason": str(err)}
    except MemoryError:
        # Free what we can before writing: the limit still holds.
        raw = results = None
        record = {"error": "memory", "reason": f"memory limit exceeded ({args.memory_mb:g} MB for the submission)"}
    atomic_write_text(out, json.dumps(record))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
