"""Score one submission inside resource limits: ``python -m hf_noisy.leaderboard.sandbox ...``.

Run by :func:`hf_noisy.leaderboard.evaluate_pending` in a child process. The child imports the evaluation
stack and loads the (trusted) ground truth first, then caps itself with ``setrlimit``: CPU time
(``RLIMIT_CPU``: ``SIGXCPU``, then ``SIGKILL`` one second later) and address space (``RLIMIT_AS``: allocations
beyond it fail). The limits are budgets for the submission's own work on top of that baseline: reading,
checking and scoring the detections. Only then does it read the submitted file (parsed as JSON with the
caps of :func:`~hf_noisy.leaderboard.submission.parse_results`; nothing in it can execute).

It writes ``{"metrics": {...}}`` or ``{"error": kind, "reason": ...}`` to ``--out`` atomically; exit status 0
means ``--out`` was written. The parent also limits wall-clock time (a sleeping child uses no CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

EXIT_MEMORY = 3


def _address_space() -> int:
    """Current virtual memory size of this process, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def _cap(cpu_seconds: float, memory_bytes: int) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + cpu_seconds + 0.999)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


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
