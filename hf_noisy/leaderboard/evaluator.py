"""Score pending submissions, each in a resource-limited child process (:mod:`.sandbox`).

A submission is pending while ``results/<id>.json`` does not exist. Each result is written (atomically) as
soon as its submission is scored, so re-running scores only what is still pending (never twice) and a crash
loses at most the submission being scored. Submissions trained on ``clean`` go first, so the others' retention
can be computed in the same run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .board import list_results, list_submissions, load_ground_truth, retention, store_benchmarks
from .storage import Backend, LocalBackend, open_backend

__all__ = ["SandboxLimits", "evaluate_pending"]


@dataclass(frozen=True)
class SandboxLimits:
    """Budgets for scoring one submission, on top of the interpreter, libraries and ground truth:
    ``cpu_seconds`` of CPU time, ``memory_mb`` of data memory (heap and private mappings), and
    ``wall_seconds`` of real time for the whole child (start-up and ground-truth loading included)."""

    cpu_seconds: float = 1800.0
    memory_mb: float = 8192.0
    wall_seconds: float = 7200.0


def _limits_reason(returncode: int, limits: SandboxLimits) -> str:
    if returncode in (-signal.SIGPROF, -signal.SIGXCPU, -signal.SIGKILL):
        return f"CPU time limit exceeded ({limits.cpu_seconds:g} s for the submission)"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (most likely the memory limit)" if returncode in (-signal.SIGABRT, -signal.SIGSEGV) else ""
        return f"the evaluator was killed by {name}{hint}"
    return f"the evaluator exited with status {returncode}"


def _run_one(gt_path: Path, data: bytes, benchmark: str, limits: SandboxLimits) -> dict:
    """``{"metrics": ...}`` or ``{"error": kind, "reason": ...}`` from one sandboxed run."""
    with tempfile.TemporaryDirectory(prefix="hf-noisy-eval-") as tmp:
        predictions, out = Path(tmp) / "results.json.gz", Path(tmp) / "out.json"
        predictions.write_bytes(data)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-m", "hf_noisy.leaderboard.sandbox", "--gt", str(gt_path),
                   "--predictions", str(predictions), "--benchmark", benchmark, "--out", str(out),
                   "--cpu-seconds", str(limits.cpu_seconds), "--memory-mb", str(limits.memory_mb)]
        try:
            proc = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            return {"error": "time", "reason": f"wall-clock limit exceeded ({limits.wall_seconds:g} s)"}
        if proc.returncode == 0 and out.is_file():
            return json.loads(out.read_text(encoding="utf-8"))
        reason = _limits_reason(proc.returncode, limits)
        kind = "time" if reason.startswith("CPU") else "crash"
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        if tail and "MemoryError" in tail[0]:
            kind, reason = "memory", f"memory limit exceeded ({limits.memory_mb:g} MB for the submission)"
        return {"error": kind, "reason": reason + (f": {tail[0][:300]}" if tail and kind == "crash" else "")}


def evaluate_pending(
    store: str | os.PathLike | Backend,
    *,
    limits: SandboxLimits = SandboxLimits(),
    cache_dir: str | os.PathLike | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Score every pending submission of ``store``; return the result records written, in order.

    A record is ``{"submission", "meta", "status": "done" | "failed", "metrics" (done: per IoU type, as
    ``hf-noisy evaluate --json``), "retention" (done, or ``None``), "error"/"reason" (failed),
    "evaluated_at", "limits"}``. ``on_result`` is called after each one is stored (progress reporting).
    """
    backend = open_backend(store)
    if isinstance(backend, LocalBackend) and not backend.root.is_dir():  # an error, not "nothing pending"
        store_benchmarks(backend)
    done = list_results(backend)
    pending = [s for s in list_submissions(backend) if s.id not in done]
    pending.sort(key=lambda s: (s.meta.trained_on != "clean", s.id))
    written = []
    gt_paths: dict[str, Path] = {}
    for submission in pending:
        benchmark = submission.meta.benchmark
        if benchmark not in gt_paths:
            gt_paths[benchmark] = Path(load_ground_truth(backend, benchmark, cache_dir)[1])
        outcome = _run_one(gt_paths[benchmark], backend.read(submission.results_path), benchmark, limits)
        record = {"submission": submission.id, "meta": submission.meta.to_dict(), "sha256": submission.sha256,
                  "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "limits": {"cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb}}
        if "metrics" in outcome:
            record.update(status="done", metrics=outcome["metrics"])
            record["retention"] = retention(record, done)
        else:
            record.update(status="failed", error=outcome["error"], reason=outcome["reason"])
        backend.write({submission.result_path: (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()},
                      f"Result of {submission.id}: {record['status']}")
        done[submission.id] = record
        written.append(record)
        if on_result is not None:
            on_result(record)
    return written
