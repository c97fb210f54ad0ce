"""Score pending submissions, each in a resource-limited child process (:mod:`.sandbox`).

A submission is pending while ``results/<id>.json`` does not exist. Before scoring one, an evaluator takes its
lease (:mod:`.leases`) and renews it while it scores, so any number of evaluators, in any processes or
replicas, score each submission once; a lease not renewed for two minutes is free, whatever machine took it,
and the submission is scored again by the next run. Results are written atomically (first result wins), so a
crash loses at most the submission being scored. The order is fair between submitters (:func:`fair_order`:
one of each per round, each one's ``clean`` submissions first, so the others' retention can be computed in the
same run).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from . import leases
from .board import Submission, list_results, list_submissions, retention, store_benchmarks
from .ground_truth import ground_truth_file
from .policy import Limits, SandboxLimits, scoring_limits
from .sandbox import score_upload
from .storage import Backend, Decision, LocalBackend, Snapshot, open_backend

__all__ = ["evaluate_pending", "fair_order"]


def _dumps(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def _submitted_file(backend: Backend, submission: Submission) -> Iterator[Path | dict]:
    """A local file holding the submission's results while the block runs -- the store's own file, or a
    download into an unnamed temporary file (never the Hugging Face cache: nothing stays once scored) -- or
    the failure record of a Hub-hosted file that is gone, too large or not the bytes that were checked."""
    import tempfile

    from .hosted import fetch_hosted, parse_hosted
    from .submission import SubmissionError

    if submission.hosted is None:
        with backend.opened(submission.results_path) as stored:
            if stored is None:
                raise FileNotFoundError(f"{backend.description}: {submission.results_path} is missing")
            yield stored
        return
    with tempfile.TemporaryFile() as local:
        try:
            sha = fetch_hosted(parse_hosted(submission.hosted), local,
                               Limits().for_benchmark(submission.meta.benchmark).max_compressed_bytes)
        except SubmissionError as err:
            yield {"error": err.kind, "reason": str(err)}
            return
        if sha != submission.sha256:
            yield {"error": "changed", "reason": f"{submission.hosted} is not the file that was checked (sha256 "
                   f"{sha[:16]}..., checked {submission.sha256[:16]}...)"}
            return
        yield Path(f"/proc/self/fd/{local.fileno()}")


def fair_order(pending: list[Submission]) -> list[Submission]:
    """``pending`` in the order to score them: one submission per submitter per round (submitters in the order
    of their oldest pending one), each submitter's own ``clean`` ones first (so the others' retention can be
    computed in the same run), then oldest first. A submitter with many (or slow) submissions delays only
    their own."""
    from .identity import submitter_key

    mine: dict[str, list[Submission]] = {}
    for submission in sorted(pending, key=lambda s: (s.meta.trained_on != "clean", s.submitted_at, s.id)):
        mine.setdefault(submitter_key(submission.meta.submitter), []).append(submission)
    by_age = sorted(mine.values(), key=lambda own: min(s.submitted_at for s in own))
    return [own[turn] for turn in range(max(map(len, by_age), default=0)) for own in by_age if turn < len(own)]


def evaluate_pending(
    store: str | os.PathLike | Backend,
    *,
    limits: SandboxLimits | Callable[[str], SandboxLimits] | None = None,
    cache_dir: str | os.PathLike | None = None,
    on_result: Callable[[dict], None] | None = None,
    lease_seconds: float = leases.LEASE_SECONDS,
    progress: bool = False,
) -> list[dict]:
    """Score every pending submission of ``store`` that no other evaluator has claimed; return the result
    records this call wrote, in order.

    A record is ``{"submission", "meta", "status": "done" | "failed", "metrics" (done: per IoU type, as
    ``hf-noisy evaluate --json``), "retention" (done, or ``None``), "error"/"reason" (failed),
    "evaluated_at", "limits"}``. ``limits``: the sandbox's budgets for every submission, or a function of the
    benchmark giving them (default: each benchmark's, :func:`~.policy.scoring_limits`). ``on_result`` is called
    after each one is stored (progress reporting). ``lease_seconds``: how long a lease lives without a
    renewal (:mod:`.leases`; this evaluator renews its own every quarter of it). ``progress``: a progress bar on
    stderr of the pending submissions handled (scored here, or held by another evaluator), naming the one at
    hand (submitter: model name); each is scored whole in its sandboxed child.
    """
    backend = open_backend(store)
    if isinstance(backend, LocalBackend) and not backend.root.is_dir():  # an error, not "nothing pending"
        store_benchmarks(backend)
    done = list_results(backend)
    pending = fair_order([s for s in list_submissions(backend) if s.id not in done])
    holder = leases.owner()
    written = []
    gt_paths: dict[str, os.PathLike] = {}
    for submission in _counted(pending, progress):
        benchmark = submission.meta.benchmark
        budget = (scoring_limits(benchmark) if limits is None else limits(benchmark) if callable(limits)
                  else limits)
        if not leases.take(backend, submission.id, holder, lease_seconds):
            continue
        try:
            with leases.Heartbeat(backend, submission.id, holder, lease_seconds):
                if benchmark not in gt_paths:  # the child loads it: this process only finds the (trusted) file
                    gt_paths[benchmark] = ground_truth_file(store_benchmarks(backend)[benchmark], cache_dir)
                with _submitted_file(backend, submission) as stored:
                    outcome = (score_upload(stored, gt_paths[benchmark], benchmark, budget)
                               if isinstance(stored, Path) else stored)
        except BaseException:
            # This process lives on (an error, an interrupt): give the lease up now rather than in minutes.
            leases.release(backend, submission.id, holder)
            raise
        record = {"submission": submission.id, "meta": submission.meta.to_dict(), "sha256": submission.sha256,
                  "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "limits": {"cpu_seconds": budget.cpu_seconds, "memory_mb": budget.memory_mb}}
        if "metrics" in outcome:
            done = {**list_results(backend), **done}
            record.update(status="done", metrics=outcome["metrics"])
            record["retention"] = retention(record, done)
        else:
            record.update(status="failed", error=outcome["error"], reason=outcome["reason"])

        def store_result(view: Backend | Snapshot, record: dict = record) -> Decision:
            if view.read(submission.result_path) is not None:
                return {}, False  # an evaluator whose lease had lapsed finished first: one result each
            return {submission.result_path: _dumps(record)}, True

        if backend.transact("results", store_result, f"Result of {submission.id}: {record['status']}"):
            done[submission.id] = record
            written.append(record)
            if on_result is not None:
                on_result(record)
    return written


def _counted(pending: list[Submission], progress: bool) -> Iterator[Submission]:
    """``pending``, one at a time, counted by a progress bar (when ``progress``) as each one is handled."""
    from ..progress import progress_bar

    with progress_bar(progress, total=len(pending), desc="scoring submissions", unit="sub") as bar:
        for submission in pending:
            bar.set_postfix_str(f"{submission.meta.submitter}: {submission.meta.model_name}"[:40])
            yield submission
            bar.update(1)
