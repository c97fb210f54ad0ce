"""Leases: which evaluator is scoring a submission, for as long as it keeps saying so.

An evaluator takes a lease (``claims/<id>.json``: who, ``renewed_at``, ``expires_at`` = renewed + ``seconds``)
in a :meth:`~.storage.Backend.transact` that also checks there is neither a result nor a live lease, and renews
it every ``seconds / 4`` while it scores (:class:`Heartbeat`). A lease is free once it has not been renewed for
``seconds`` (default :data:`LEASE_SECONDS`), whatever machine, boot or process took it -- a restarted Space,
with a new host name, picks the work up within minutes -- or at once when its evaluator ran on this machine and
is gone. Both stores: a local folder's lock, or a Hub commit with ``parent_commit`` (each renewal is a commit).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone

from .storage import Backend, Decision, Snapshot

__all__ = ["HEARTBEAT_FRACTION", "LEASE_SECONDS", "Heartbeat", "lease_is_live", "owner", "release", "take"]

#: Seconds a lease lives without a renewal.
LEASE_SECONDS = 120.0
#: A holder renews every this fraction of the lease.
HEARTBEAT_FRACTION = 0.25


def _dumps(data: dict) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")


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


def owner() -> dict:
    """Who this process is, as a lease records it."""
    return {"machine": _machine(), "pid": os.getpid(), "started": _started(os.getpid())}


def lease_is_live(lease: dict, now: datetime, seconds: float = LEASE_SECONDS) -> bool:
    """Whether ``lease`` still holds at ``now``: renewed within ``seconds`` (whatever it says its expiry is), not
    expired, and, when taken on this machine, its process still running."""
    renewed = lease.get("renewed_at") or lease.get("claimed_at")
    if renewed is None or datetime.fromisoformat(renewed) + timedelta(seconds=seconds) <= now:
        return False
    if datetime.fromisoformat(lease["expires_at"]) <= now:
        return False
    if lease.get("machine") == _machine():
        return _started(lease["pid"]) == lease["started"]
    return True


def _path(submission_id: str) -> str:
    return f"claims/{submission_id}.json"


def _result(submission_id: str) -> str:
    return f"results/{submission_id}.json"


def _record(holder: dict, now: datetime, seconds: float, taken: str | None = None) -> bytes:
    return _dumps(dict(holder, claimed_at=taken or _stamp(now), renewed_at=_stamp(now),
                       expires_at=_stamp(now + timedelta(seconds=seconds))))


def take(backend: Backend, submission_id: str, holder: dict, seconds: float = LEASE_SECONDS) -> bool:
    """Take the lease on ``submission_id`` unless it has a result or a live lease; whether it was taken."""
    def decide(view: Backend | Snapshot) -> Decision:
        now = datetime.now(timezone.utc)
        if view.read(_result(submission_id)) is not None:
            return {}, False
        raw = view.read(_path(submission_id))
        if raw is not None and lease_is_live(json.loads(raw), now, seconds):
            return {}, False
        return {_path(submission_id): _record(holder, now, seconds)}, True

    return backend.transact("results", decide, f"Lease {submission_id}")


def _ours(view: Backend | Snapshot, submission_id: str, holder: dict) -> dict | None:
    """The lease on ``submission_id`` if it is ``holder``'s and the submission has no result yet."""
    raw = view.read(_path(submission_id))
    if raw is None or view.read(_result(submission_id)) is not None:
        return None
    lease = json.loads(raw)
    return lease if {key: lease.get(key) for key in holder} == holder else None


def renew(backend: Backend, submission_id: str, holder: dict, seconds: float = LEASE_SECONDS) -> bool:
    """Renew ``holder``'s lease on ``submission_id``; ``False`` when it is no longer theirs (or scored)."""
    def decide(view: Backend | Snapshot) -> Decision:
        lease = _ours(view, submission_id, holder)
        if lease is None:
            return {}, False
        now = datetime.now(timezone.utc)
        return {_path(submission_id): _record(holder, now, seconds, lease.get("claimed_at"))}, True

    return backend.transact("results", decide, f"Renew lease {submission_id}")


def release(backend: Backend, submission_id: str, holder: dict) -> None:
    """Give ``holder``'s lease on ``submission_id`` up now (if it is still theirs and unscored)."""
    def decide(view: Backend | Snapshot) -> Decision:
        lease = _ours(view, submission_id, holder)
        if lease is None:
            return {}, None
        now = _stamp(datetime.now(timezone.utc))
        return {_path(submission_id): _dumps(dict(lease, expires_at=now, renewed_at=now))}, None

    backend.transact("results", decide, f"Release lease {submission_id}")


class Heartbeat:
    """Renews a lease every ``seconds * HEARTBEAT_FRACTION`` in a thread while the ``with`` block runs. A
    renewal that fails (the store unreachable for a moment) is tried again at the next beat; ``lost`` is set
    when the lease turned out to be someone else's."""

    def __init__(self, backend: Backend, submission_id: str, holder: dict, seconds: float = LEASE_SECONDS) -> None:
        self.backend, self.submission_id, self.holder, self.seconds = backend, submission_id, holder, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {submission_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds * HEARTBEAT_FRACTION):
            try:
                if not renew(self.backend, self.submission_id, self.holder, self.seconds):
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 -- the next beat tries again; the lease outlives one missed beat
                continue
