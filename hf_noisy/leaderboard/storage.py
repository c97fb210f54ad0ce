"""Where a leaderboard keeps its files: a local folder, or two Hub dataset repos. One small interface.

Paths are POSIX, relative, and made by :mod:`hf_noisy.leaderboard.board` from validated fields only. Files
under ``results/`` go to the results store, everything else to the submissions store:

* :class:`LocalBackend` -- one folder (``DIR/submissions/...``, ``DIR/results/...``, ``DIR/store.json``); every
  file is written atomically (temporary file + rename).
* :class:`HubBackend` -- ``ORG/leaderboard-submissions`` and ``ORG/leaderboard-results`` (dataset repos),
  through ``huggingface_hub.HfApi``; each :meth:`write` is one commit, so a submission's files land together.

:func:`open_backend` reads a ``--store`` value: ``hf://ORG`` is the Hub, anything else a local folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..errors import HfNoisyError

__all__ = ["Backend", "HubBackend", "LocalBackend", "open_backend"]

HUB_PREFIX = "hf://"


def _check_path(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")) or "\\" in path:
        raise ValueError(f"unsafe store path {path!r}")
    return path


class Backend(Protocol):
    """The storage a leaderboard needs: list, read and write (several files at once) by relative path."""

    description: str

    def create(self) -> None:
        """Make the storage if missing (folder or repos)."""

    def list(self, prefix: str) -> list[str]:
        """Every file path under ``prefix`` (a folder path ending in ``/``), sorted."""

    def read(self, path: str) -> bytes | None:
        """A file's bytes, or ``None`` if it does not exist."""

    def write(self, files: dict[str, bytes], message: str) -> None:
        """Write ``files`` (path -> bytes). Readers never see a half-written file; see the classes for order."""


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

    def write(self, files: dict[str, bytes], message: str) -> None:
        from ..fsutil import atomic_write_bytes

        for path, data in files.items():
            atomic_write_bytes(self.root / _check_path(path), data)


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

    def _repo(self, path: str) -> str:
        top = _check_path(path.rstrip("/")).split("/")[0]
        return self.results_repo if top == "results" else self.submissions_repo

    def create(self) -> None:
        for repo in (self.submissions_repo, self.results_repo):
            self.api.create_repo(repo, repo_type="dataset", private=self.private, exist_ok=True)

    def list(self, prefix: str) -> list[str]:
        files = self.api.list_repo_files(self._repo(prefix), repo_type="dataset")
        return sorted(path for path in files if path.startswith(prefix))

    def read(self, path: str) -> bytes | None:
        from huggingface_hub.errors import EntryNotFoundError

        try:
            local = self.api.hf_hub_download(self._repo(path), path, repo_type="dataset")
        except EntryNotFoundError:
            return None
        return Path(local).read_bytes()

    def write(self, files: dict[str, bytes], message: str) -> None:
        from huggingface_hub import CommitOperationAdd

        by_repo: dict[str, list] = {}
        for path, data in files.items():
            by_repo.setdefault(self._repo(path), []).append(CommitOperationAdd(path_in_repo=path, path_or_fileobj=data))
        for repo, operations in by_repo.items():
            self.api.create_commit(repo, operations=operations, commit_message=message, repo_type="dataset")


def open_backend(store: "str | os.PathLike | Backend", *, token: str | None = None) -> Backend:
    """``hf://ORG`` -> :class:`HubBackend`; a backend -> itself; any other value -> :class:`LocalBackend` on that
    folder."""
    if hasattr(store, "write"):
        return store
    text = os.fspath(store)
    if text.startswith(HUB_PREFIX):
        return HubBackend(text[len(HUB_PREFIX):], token=token)
    return LocalBackend(text)
