"""The resumable per-chunk cache of a ``hf-noisy wan`` run.

A run's images are cut into chunks of ``image_batch_size`` images (fixed by the input and options, never by
the number of processes). Each process appends one line per finished chunk to its own file, so a killed run
restarts at the first unfinished chunk, and chunks are computed the same way whichever process takes them.

Layout: ``<cache_dir>/<key[:16]>/`` holds ``key.json`` (everything the results depend on: input SHA-256,
model fingerprint, prompt kind, options, library versions; its SHA-256 is the key, so a stale cache is
never reused) and ``part-<rank>.jsonl``. A line is ``<chunk index>\\t<JSON list of annotation results>\\n``
(one ``write`` + ``fsync``); a line without its newline (a kill mid-write) is ignored and cut off when its
process appends again. While a process computes, it holds an exclusive lock on ``part-<rank>.lock``, so a
second run with the same key and rank (e.g. ``hard`` started while ``medium`` is still running) stops with a
clear error instead of writing the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import orjson

from ..fsutil import atomic_write_bytes
from .errors import WanError

__all__ = ["ChunkCache", "cache_key"]


def cache_key(fields: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``fields`` (keys sorted)."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ChunkCache:
    """The cache of one run (see the module docstring); ``rank`` names the file this process appends to."""

    def __init__(self, root: str | os.PathLike, fields: dict[str, Any], rank: int = 0) -> None:
        self.key = cache_key(fields)
        self.directory = Path(root) / self.key[:16]
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = orjson.dumps({"key": self.key, **fields}, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        key_file = self.directory / "key.json"
        if not key_file.is_file() or key_file.read_bytes() != meta:
            atomic_write_bytes(key_file, meta)
        self.path = self.directory / f"part-{rank:05d}.jsonl"

    def _parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.jsonl"))

    @staticmethod
    def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
        """``(chunk index, JSON bytes)`` of every complete line of one part file."""
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            index, _, payload = line.partition(b"\t")
            yield int(index), payload

    def done(self) -> set[int]:
        """Indices of the chunks finished by any process of any run with this key."""
        return {index for part in self._parts() for index, _ in self._lines(part)}

    def results(self) -> dict[int, list]:
        """Every finished chunk's results (the first line wins if a chunk was written twice)."""
        out: dict[int, list] = {}
        for part in self._parts():
            for index, payload in self._lines(part):
                if index not in out:
                    out[index] = orjson.loads(payload)
        return out

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this process's part file for the length of the block (POSIX ``flock``; a no-op elsewhere)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        with open(self.path.with_suffix(".lock"), "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WanError(f"another run is writing {self.path} (same input, model and options); "
                               "wait for it to finish, then run again to reuse its results") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, index: int, results: list) -> None:
        """Record a finished chunk durably (a torn last line left by a killed run is cut off first)."""
        line = str(index).encode() + b"\t" + orjson.dumps(results) + b"\n"
        with open(self.path, "ab+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(max(size - 1, 0))
                if handle.read(1) != b"\n":
                    handle.seek(0)
                    handle.truncate(handle.read().rfind(b"\n") + 1)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
