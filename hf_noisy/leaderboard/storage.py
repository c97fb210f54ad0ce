"""Where a leaderboard keeps its files: a local folder, or two Hub dataset repos. One small interface.

Paths are POSIX, relative, and made by :mod:`hf_noisy.leaderboard.board` from validated fields only. Files
under ``results/`` go to the results store, everything else to the submissions store:

* :class:`LocalBackend` -- one folder (``DIR/submissions/...``, ``DIR/results/...``, ``DIR/store.json``); every
  file is written atomically (temporary file + rename).
* :class:`HubBackend` -- ``ORG/leaderboard-submissions`` and ``ORG/leaderboard-results`` (dataset repos),
  through ``huggingface_hub.HfApi``; each :meth:`write` is one commit, so a submission's files land together.

Rules that read the store and then write to it (at most 5 submissions a day, one claim per submission) go
through :meth:`Backend.transact`, the one place that makes check-then-write atomic across processes and
machines: the local folder holds an exclusive ``fcntl.flock`` on ``DIR/.lock-<area>`` around the check and the
write; the Hub reads the repo at its head commit, and commits with that commit as ``parent_commit``, so a
writer that lost the race gets HTTP 412 and runs its check again on the new head. Each such commit also
rewrites ``.transaction.json`` (repo root) with a token of its own: ``HfApi.create_commit`` drops the files
that the branch already holds with the same bytes, and when none is left it sends no commit at all (so no
``parent_commit`` check) and returns as if it had committed -- without the token, a writer whose files
another writer had just committed byte for byte (the same submission in the same second) would pass its
check on a stale head and be told it had written. An *area* is one repo's worth of paths: ``"results"``
(``results/``, ``claims/``) or ``"submissions"`` (everything else).

:func:`open_backend` reads a ``--store`` value: ``hf://ORG`` is the Hub, anything else a local folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Protocol, TypeVar

from ..errors import HfNoisyError

__all__ = ["Backend", "HubBackend", "LocalBackend", "Snapshot", "area_of", "open_backend"]

HUB_PREFIX = "hf://"
AREAS = ("submissions", "results")
#: Rewritten by every Hub transaction's commit (both repos): see :meth:`HubBackend.transact`.
TRANSACTION_FILE = ".transaction.json"
#: Top-level folders that live with the results (the results repo on the Hub).
_RESULTS_TOPS = ("results", "claims")
T = TypeVar("T")


def area_of(path: str) -> str:
    """``"results"`` for paths under ``results/`` or ``claims/``, else ``"submissions"``."""
    return "results" if _check_path(path.rstrip("/")).split("/")[0] in _RESULTS_TOPS else "submissions"


def _check_path(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")) or "\\" in path:
        raise HfNoisyError(f"unsafe store path {path!r}")
    return path


class Snapshot(Protocol):
    """A consistent view of one area of a store, as a :meth:`Backend.transact` check sees it."""

    def list(self, prefix: str) -> list[str]:
        """Every file path under ``prefix``, sorted."""

    def read(self, path: str) -> bytes | None:
        """A file's bytes, or ``None``."""


#: A file's content to write: its bytes, or a local file holding them (copied, never read whole into memory).
Blob = "bytes | Path"
#: What a transaction's check returns: the files to write (none: write nothing) and a value for the caller.
Decision = tuple[dict[str, Blob], T]


class Backend(Protocol):
    """The storage a leaderboard needs: list, read and write (several files at once) by relative path, and
    :meth:`transact` for rules that must hold across processes."""

    description: str

    def create(self) -> None:
        """Make the storage if missing (folder or repos)."""

    def list(self, prefix: str) -> list[str]:
        """Every file path under ``prefix`` (a folder path ending in ``/``), sorted."""

    def read(self, path: str) -> bytes | None:
        """A file's bytes, or ``None`` if it does not exist."""

    def opened(self, path: str) -> contextlib.AbstractContextManager[Path | None]:
        """A local file holding ``path``'s content while the block runs (the store's own file, or an unnamed
        temporary download that no exit path leaves behind), or ``None``: for files too large to read into
        memory."""

    def write(self, files: dict[str, Blob], message: str) -> None:
        """Write ``files`` (path -> bytes or local file). Readers never see a half-written file; see the
        classes for order."""

    def transact(self, area: str, decide: Callable[[Snapshot], Decision], message: str) -> T:
        """Run ``decide`` on a consistent view of ``area`` and write the files it returns (all in ``area``)
        so that no other writer's transaction on ``area`` came in between; return its value. ``decide`` may
        run more than once (the Hub retries it after a conflict) and raises to write nothing."""


def _check_area(area: str, files: dict[str, Blob]) -> None:
    if area not in AREAS:
        raise HfNoisyError(f"unknown store area {area!r}")
    stray = [path for path in files if area_of(path) != area]
    if stray:
        raise HfNoisyError(f"a transaction on {area!r} cannot write {stray[0]!r}")


class LocalBackend:
    """A local folder. :meth:`write` writes the files in the given order, each atomically, so a caller that
    puts its marker file last never leaves a marker without its data."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.description = str(self.root)

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / _check_path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def read(self, path: str) -> bytes | None:
        file = self.root / _check_path(path)
        return file.read_bytes() if file.is_file() else None

    @contextlib.contextmanager
    def opened(self, path: str) -> Iterator[Path | None]:
        file = self.root / _check_path(path)
        yield file if file.is_file() else None

    def write(self, files: dict[str, Blob], message: str) -> None:
        from ..fsutil import atomic_write_bytes

        for path, data in files.items():
            if isinstance(data, bytes):
                atomic_write_bytes(self.root / _check_path(path), data)
            else:
                with open(data, "rb") as source:
                    atomic_write_bytes(self.root / _check_path(path), source)

    @contextlib.contextmanager
    def _locked(self, area: str) -> Iterator[None]:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".lock-{area}", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            yield

    def transact(self, area: str, decide: Callable[[Snapshot], Decision], message: str) -> T:
        with self._locked(area):
            files, value = decide(self)
            _check_area(area, files)
            self.write(files, message)
        return value


class HubBackend:
    """Two Hub dataset repos of ``org``: ``leaderboard-submissions`` (``store.json`` and ``submissions/``)
    and ``leaderboard-results`` (``results/``). Each :meth:`write` is one ``create_commit`` per repo touched."""

    def __init__(self, org: str, *, token: str | None = None, private: bool = False) -> None:
        from huggingface_hub import HfApi

        if not org or "/" in org:
            raise HfNoisyError(f"a Hub store is a user or organisation name (hf://ORG), got {org!r}")
        self.org = org
        self.private = private
        self.api = HfApi(token=token)
        self.submissions_repo = f"{org}/leaderboard-submissions"
        self.results_repo = f"{org}/leaderboard-results"
        self.description = f"{HUB_PREFIX}{org}"

    #: How many times a transaction is retried after losing a race, and the longest wait between tries (s).
    conflict_retries = 20
    max_backoff = 2.0

    def _repo(self, path: str) -> str:
        return self.results_repo if area_of(path) == "results" else self.submissions_repo

    def create(self) -> None:
        for repo in (self.submissions_repo, self.results_repo):
            self.api.create_repo(repo, repo_type="dataset", private=self.private, exist_ok=True)

    def list(self, prefix: str, *, revision: str | None = None) -> list[str]:
        files = self.api.list_repo_files(self._repo(prefix), repo_type="dataset", revision=revision)
        return sorted(path for path in files if path.startswith(prefix))

    def _chunks(self, path: str, revision: str | None) -> Iterator[bytes] | None:
        """``path``'s bytes streamed from the Hub (never through the Hugging Face cache: a store's files would
        pile up there), or ``None`` if it does not exist."""
        from huggingface_hub import constants, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(self._repo(path), _check_path(path), repo_type="dataset", revision=revision,
                         endpoint=constants.ENDPOINT)
        stack = contextlib.ExitStack()
        answer = stack.enter_context(get_session().stream("GET", url, headers=build_hf_headers(token=self.api.token),
                                                          follow_redirects=True))
        if answer.status_code != 200:
            with stack:
                answer.read()  # the (short) error body: unread, it would cost the connection (a reset, a new one)
                if answer.headers.get("X-Error-Code") == "EntryNotFound":
                    return None
                hf_raise_for_status(answer)

        def chunks() -> Iterator[bytes]:
            with stack:
                yield from answer.iter_bytes(1 << 20)

        return chunks()

    def read(self, path: str, *, revision: str | None = None) -> bytes | None:
        chunks = self._chunks(path, revision)
        return None if chunks is None else b"".join(chunks)

    @contextlib.contextmanager
    def opened(self, path: str, *, revision: str | None = None) -> Iterator[Path | None]:
        import tempfile

        chunks = self._chunks(path, revision)
        if chunks is None:
            yield None
            return
        with tempfile.TemporaryFile() as local:  # unnamed (O_TMPFILE): gone on every exit path, a kill included
            for chunk in chunks:
                local.write(chunk)
            local.flush()
            yield Path(f"/proc/self/fd/{local.fileno()}")

    def transact(self, area: str, decide: Callable[[Snapshot], Decision], message: str) -> T:
        """Read ``area``'s repo at its head commit, ``decide``, and commit the files with that head as
        ``parent_commit`` (HTTP 412 when another commit came first: decide again on the new head), together
        with :data:`TRANSACTION_FILE` holding a token of this attempt alone, so the commit is never empty and
        always sent: ``create_commit`` skips files the branch already holds byte for byte, and sends nothing
        (no ``parent_commit`` check) when it skips them all. A decision that writes nothing commits nothing."""
        from huggingface_hub import CommitOperationAdd
        from huggingface_hub.errors import HfHubHTTPError

        repo = self.results_repo if area == "results" else self.submissions_repo
        backoff = random.Random(os.getpid())  # spreads out writers that collided; no effect on what is written
        for attempt in range(self.conflict_retries + 1):
            head = self.api.repo_info(repo, repo_type="dataset").sha
            files, value = decide(_HubSnapshot(self, head))
            _check_area(area, files)
            if not files:
                return value
            operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=_content(data))
                          for path, data in {**files, TRANSACTION_FILE: _transaction_token(head)}.items()]
            try:
                self.api.create_commit(repo, operations=operations, commit_message=message, repo_type="dataset",
                                       parent_commit=head)
                return value
            except HfHubHTTPError as err:
                status = getattr(getattr(err, "response", None), "status_code", None)
                if status not in (409, 412) or attempt == self.conflict_retries:
                    raise
            time.sleep(backoff.uniform(0, min(self.max_backoff, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")

    def write(self, files: dict[str, Blob], message: str) -> None:
        from huggingface_hub import CommitOperationAdd

        by_repo: dict[str, list] = {}
        for path, data in files.items():
            by_repo.setdefault(self._repo(path), []).append(
                CommitOperationAdd(path_in_repo=path, path_or_fileobj=_content(data)))
        for repo, operations in by_repo.items():
            self.api.create_commit(repo, operations=operations, commit_message=message, repo_type="dataset")


def _transaction_token(head: str) -> bytes:
    """:data:`TRANSACTION_FILE`'s content for one commit attempt on ``head``: unique to this machine, process,
    thread and moment (hashed: no host name is published), without a random draw."""
    origin = f"{socket.gethostname()}/{os.getpid()}/{threading.get_ident()}/{time.time_ns()}/{head}"
    return (json.dumps({"token": hashlib.sha256(origin.encode()).hexdigest()[:32]}) + "\n").encode()


def _content(data: Blob) -> bytes | str:
    """What ``CommitOperationAdd`` takes: the bytes, or the local file's path (it streams the file)."""
    return data if isinstance(data, bytes) else os.fspath(data)


class _HubSnapshot:
    """A Hub store area read at one commit."""

    def __init__(self, backend: HubBackend, revision: str) -> None:
        self.backend, self.revision = backend, revision

    def list(self, prefix: str) -> list[str]:
        return self.backend.list(prefix, revision=self.revision)

    def read(self, path: str) -> bytes | None:
        return self.backend.read(path, revision=self.revision)


def open_backend(store: "str | os.PathLike | Backend", *, token: str | None = None) -> Backend:
    """``hf://ORG`` -> :class:`HubBackend`; a backend -> itself; any other value -> :class:`LocalBackend` on that
    folder."""
    if hasattr(store, "write"):
        return store
    text = os.fspath(store)
    if text.startswith(HUB_PREFIX):
        return HubBackend(text[len(HUB_PREFIX):], token=token)
    return LocalBackend(text)
