"""Score pending submissions, each in a resource-limited child process (:mod:`.sandbox`).

A submission is pending while ``results/<id>.json`` does not exist. Before scoring one, an evaluator claims it:
it writes ``claims/<id>.json`` (who, until when) in a :meth:`~.storage.Backend.transact` that also checks there
is neither a result nor a live claim, so any number of evaluators, in any processes or replicas, score each
submission once. A claim is dead once it expires (the sandbox's wall-clock budget, times its tries, plus
:data:`CLAIM_MARGIN`), or at once when its evaluator ran on this machine and is gone; the submission is then
scored again by the next run. Results are written atomically (first result wins), so a crash loses at most
the submission being scored. The order is fair between submitters (:func:`fair_order`: one of each per round,
each one's ``clean`` submissions first, so the others' retention can be computed in the same run).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timedelta, timezone
from typing import Callable

from .board import Submission, list_results, list_submissions, retention, store_benchmarks
from .ground_truth import ground_truth_file
from .sandbox import SandboxLimits, score_upload
from .storage import Backend, Decision, LocalBackend, Snapshot, open_backend

__all__ = ["CLAIM_MARGIN", "SandboxLimits", "evaluate_pending", "fair_order"]

#: Seconds a claim outlives the longest its sandbox can run (start-up of the next try, writing the result).
CLAIM_MARGIN = 300.0


def _dumps(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _machine() -> str:
    """This machine: host name and boot id (a process id means something only on the same boot)."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        return f"{socket.gethostname()}/{handle.read().strip()}"


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or ``None`` if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _claim_is_live(claim: dict, now: datetime) -> bool:
    if datetime.fromisoformat(claim["expires_at"]) <= now:
        return False
    if claim.get("machine") == _machine():
        return _started(claim["pid"]) == claim["started"]
    return True


def _claim(view: Backend | Snapshot, submission: Submission, owner: dict, now: datetime, ttl: float) -> Decision:
    """Claim ``submission`` unless it has a result or a live claim; the value says whether it was claimed."""
    if view.read(submission.result_path) is not None:
        return {}, False
    raw = view.read(_claim_path(submission))
    if raw is not None and _claim_is_live(json.loads(raw), now):
        return {}, False
    claim = dict(owner, claimed_at=now.isoformat(timespec="seconds"),
                 expires_at=(now + timedelta(seconds=ttl)).isoformat(timespec="seconds"))
    return {_claim_path(submission): _dumps(claim)}, True


def _release(view: Backend | Snapshot, submission: Submission, owner: dict) -> Decision:
    """Expire our own claim on ``submission`` (if it is still ours and unscored)."""
    raw = view.read(_claim_path(submission))
    if raw is None or view.read(submission.result_path) is not None:
        return {}, None
    claim = json.loads(raw)
    if {key: claim.get(key) for key in owner} != owner:
        return {}, None
    released = dict(claim, expires_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return {_claim_path(submission): _dumps(released)}, None


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


def _claim_path(submission: Submission) -> str:
    return f"claims/{submission.id}.json"


def evaluate_pending(
    store: str | os.PathLike | Backend,
    *,
    limits: SandboxLimits | Callable[[str], SandboxLimits] | None = None,
    cache_dir: str | os.PathLike | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Score every pending submission of ``store`` that no other evaluator has claimed; return the result
    records this call wrote, in order.

    A record is ``{"submission", "meta", "status": "done" | "failed", "metrics" (done: per IoU type, as
    ``hf-noisy evaluate --json``), "retention" (done, or ``None``), "error"/"reason" (failed),
    "evaluated_at", "limits"}``. ``limits``: the sandbox's budgets for every submission, or a function of the
    benchmark giving them (default: each benchmark's, :meth:`~.rules.Rules.sandbox`). ``on_result`` is called
    after each one is stored (progress reporting).
    """
    from .rules import rules_for

    backend = open_backend(store)
    if isinstance(backend, LocalBackend) and not backend.root.is_dir():  # an error, not "nothing pending"
        store_benchmarks(backend)
    done = list_results(backend)
    pending = fair_order([s for s in list_submissions(backend) if s.id not in done])
    owner = {"machine": _machine(), "pid": os.getpid(), "started": _started(os.getpid())}
    written = []
    gt_paths: dict[str, os.PathLike] = {}
    for submission in pending:
        now = datetime.now(timezone.utc)
        benchmark = submission.meta.benchmark
        budget = (rules_for(benchmark).sandbox() if limits is None else limits(benchmark) if callable(limits)
                  else limits)
        ttl = budget.wall_seconds * (budget.retries + 1) + CLAIM_MARGIN
        if not backend.transact("results", lambda view: _claim(view, submission, owner, now, ttl),
                                f"Claim {submission.id}"):
            continue
        try:
            if benchmark not in gt_paths:  # the child loads it: this process only finds the (trusted) file
                gt_paths[benchmark] = ground_truth_file(store_benchmarks(backend)[benchmark], cache_dir)
            stored = backend.fetch(submission.results_path)
            if stored is None:
                raise FileNotFoundError(f"{backend.description}: {submission.results_path} is missing")
            outcome = score_upload(stored, gt_paths[benchmark], benchmark, budget)
        except BaseException:
            # This process lives on (an error, an interrupt): give the claim up now rather than at its expiry.
            backend.transact("results", lambda view: _release(view, submission, owner), f"Release {submission.id}")
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
                return {}, False  # an evaluator whose claim had expired finished first: one result each
            return {submission.result_path: _dumps(record)}, True

        if backend.transact("results", store_result, f"Result of {submission.id}: {record['status']}"):
            done[submission.id] = record
            written.append(record)
            if on_result is not None:
                on_result(record)
    return written
