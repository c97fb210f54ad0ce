"""Who waits for what on a running board: the submit checks (:class:`CheckGate`) and the scoring
(:class:`EvaluatorLoop`), so that no upload can hold up another submitter's request.

A submit only checks its file (within the benchmark's check budget, :func:`~.policy.check_limits`) and
stores it; the scoring runs in the evaluator loop's own thread, never inside a request. The gate lets at most
``slots`` checks run at once, one per submitter, and serves the waiting ones in arrival order: a submitter
holds at most one place in the line, so the order is fair between submitters, and a hostile upload costs its
sender one check slot for at most the check's budget. Both objects belong to one app (no module state).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from typing import Callable, Iterator

from ..errors import HfNoisyError
from .identity import submitter_key
from .submission import SubmissionError

__all__ = ["CheckGate", "EvaluatorLoop"]

log = logging.getLogger(__name__)


class CheckGate:
    """At most ``slots`` checks at once, at most one per submitter (compared as :func:`~.identity.submitter_key`),
    the waiting ones served first come, first served; at most ``waiting`` may wait, each at most
    ``wait_seconds`` (seconds). A submitter over these limits is refused at once (kind ``"busy"``), never
    queued behind itself."""

    def __init__(self, slots: int = 2, waiting: int = 32, wait_seconds: float = 300.0) -> None:
        if slots < 1:
            raise HfNoisyError(f"slots must be >= 1, got {slots}")
        self.slots, self.waiting, self.wait_seconds = slots, waiting, wait_seconds
        self._changed = threading.Condition()
        self._running: set[str] = set()
        self._line: deque[str] = deque()

    def running(self) -> int:
        """Checks running now."""
        with self._changed:
            return len(self._running)

    @contextlib.contextmanager
    def slot(self, submitter: str) -> Iterator[None]:
        """Hold a check slot for ``submitter`` while the block runs; raises :class:`SubmissionError` (``"busy"``)
        when this submitter already has a check running or waiting, the line is full, or the wait runs out."""
        key = submitter_key(submitter)
        with self._changed:
            if key in self._running or key in self._line:
                raise SubmissionError("busy", f"{submitter} already has a file being checked; wait for its answer")
            if len(self._line) >= self.waiting:
                raise SubmissionError("busy", f"{len(self._line)} files are waiting to be checked; try again in a "
                                      "minute")
            self._line.append(key)
            served = self._changed.wait_for(lambda: self._line[0] == key and len(self._running) < self.slots,
                                            self.wait_seconds)
            self._line.remove(key)
            if served:
                self._running.add(key)
            self._changed.notify_all()
            if not served:
                raise SubmissionError("busy", f"no check slot came free within {self.wait_seconds:g} s; try again")
        try:
            yield
        finally:
            with self._changed:
                self._running.discard(key)
                self._changed.notify_all()


class EvaluatorLoop:
    """Scores a store's pending submissions in a thread of its own: one :func:`~.evaluator.evaluate_pending`
    pass when woken (:meth:`wake`, after an accepted submit) and every ``interval`` seconds (submissions
    stored by other replicas, or left by a restart), until :meth:`stop`. A pass that fails is logged and the
    loop goes on. ``evaluate``: the pass to run (a function of nothing, e.g. ``evaluate_pending`` bound to
    the store and its budgets)."""

    def __init__(self, evaluate: Callable[[], object], *, interval: float = 60.0) -> None:
        self.evaluate, self.interval = evaluate, interval
        self._woken, self._stopped = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="hf-noisy-evaluator", daemon=True)

    def start(self) -> EvaluatorLoop:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Run a pass soon (now if idle, else right after the one in hand)."""
        self._woken.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass in hand (``timeout``: seconds to wait for it; its sandbox child dies with this
        thread if the process ends)."""
        self._stopped.set()
        self._woken.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._woken.wait(self.interval)
            self._woken.clear()
            if self._stopped.is_set():
                break
            try:
                self.evaluate()
            except Exception:  # noqa: BLE001 -- the loop outlives one bad pass; the log has the traceback
                log.exception("leaderboard: an evaluator pass failed (pid %s)", os.getpid())
