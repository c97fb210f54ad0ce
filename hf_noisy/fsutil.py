"""The one place that writes users' files: atomic files and folders, with the user's umask, never over an input.

* :func:`check_output`: refuse an output path that is an input (by file identity, not by spelling), an output
  folder that holds an input, and an existing output without ``overwrite``. Every command calls it first.
* :func:`atomic_write_bytes` / :func:`atomic_write_text`: a file appears complete or not at all.
* :func:`atomic_directory`: a folder is built in a hidden sibling and appears complete or not at all.

Modes: files are created ``0o666`` and folders ``0o777``, minus the umask (``0644`` / ``0755`` under umask
``022``), as any other program would make them; ``tempfile.mkstemp`` would make them private.

**Temporary siblings of a folder** ``OUT`` are named ``.OUT.<token>.<kind>``: ``partial`` (the folder being
built), ``lock`` (held with ``flock`` by the process that builds it, for as long as it runs), ``old`` and
``swap`` (the previous folder and the journal of a rename-aside swap, below). A token whose lock file can be
locked (or is gone) belongs to no live process: :func:`recover` removes its leftovers, and every
:func:`atomic_directory` call on ``OUT`` runs it first, so killed builds do not leave their ``.partial``
folders behind, while a concurrent live build's folder is never touched.

**Replacing an existing folder** (``overwrite=True``) never leaves ``OUT`` absent or unrecoverable:

* Linux: ``renameat2(RENAME_EXCHANGE)`` swaps the new folder and the old one in one step; the old one, now at
  the ``partial`` name, is then deleted (a kill before that leaves it to the next :func:`recover`).
* elsewhere, or where the file system refuses the exchange: a journal (``.OUT.<token>.swap``) is written, the
  old folder is renamed aside (``.old``), the new one into place, the old one deleted, the journal removed. A
  kill in between leaves the journal; the next :func:`recover` completes the swap (the new folder was complete
  before the journal was written).

Test hooks (environment variables; kill tests of the swap use them): ``HF_NOISY_FAULT_POINT=STEP`` kills the
process with SIGKILL right after ``STEP`` (``ready``: the new folder complete, nothing moved; ``exchanged``;
``journaled``, ``moved-aside``, ``moved-in``: the rename-aside steps; ``old-removed``: the old folder deleted,
the lock still held). ``HF_NOISY_SWAP=rename`` uses the rename-aside swap even where the exchange works.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from .errors import HfNoisyError, OutputExistsError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock can be taken, so no leftover is ever removed
    fcntl = None

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_directory", "check_output", "recover",
           "replace_folder", "sweep_temporary_files"]

_KINDS = ("partial", "lock", "old", "swap")
#: seconds before an unlocked staging lock file (``.OUT.<token>.locking``), or an unlocked temporary file
#: (``.NAME.<token>.tmp``), counts as left by a killed run
_STAGING_GRACE_S = 60.0


def check_output(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *,
                 overwrite: bool = False) -> Path:
    """Refuse to write ``output`` where that could destroy a user's file; returns ``output`` as a Path.

    Raises :class:`~hf_noisy.errors.HfNoisyError` when ``output`` is one of ``inputs`` (the same file or
    folder: ``os.path.samefile``, or the same real path through symlinks), when an input lies inside an
    ``output`` folder (replacing the folder would delete it), or when ``output`` is an existing file inside an
    input folder (it may be read as input); all of these even with ``overwrite``. Raises
    :class:`~hf_noisy.errors.OutputExistsError` (a ``FileExistsError``) when ``output`` exists and ``overwrite``
    is false. ``None`` inputs are skipped
    (optional arguments); inputs that do not exist on disk (e.g. Hub ids) cannot be destroyed and are skipped.
    """
    output = Path(output)
    outs = _spellings(output)
    exists = os.path.lexists(output)
    for item in inputs:
        if item is None or not os.path.exists(item):
            continue
        ins = _spellings(item)
        if (os.path.exists(output) and os.path.samefile(item, output)) or any(i == o for i, o in zip(ins, outs)):
            raise HfNoisyError(f"{output} is the input {item}: writing it would destroy the input; "
                               "choose another output path")
        if any(_inside(i, o) for i, o in zip(ins, outs)):
            raise HfNoisyError(f"{output} holds the input {item}: replacing it would destroy the input; "
                               "choose another output path")
        if exists and os.path.isdir(item) and any(_inside(o, i) for i, o in zip(ins, outs)):
            raise HfNoisyError(f"{output} already exists inside the input folder {item}; "
                               "choose another output path")
    if exists and not overwrite:
        raise OutputExistsError(output)
    return output


def _spellings(path: str | os.PathLike) -> tuple[str, str]:
    """The absolute path as written (symlinks kept) and the real one (symlinks resolved)."""
    return os.path.abspath(path), os.path.realpath(path)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | BinaryIO, *, overwrite: bool = True) -> None:
    """Write ``data`` (bytes, or a binary file read to its end a chunk at a time) to ``path`` through a
    temporary file in the same directory, then rename it into place.

    The file gets mode ``0o666`` minus the umask. With ``overwrite=False`` an existing ``path`` (even one
    that appeared while writing) is never replaced: :class:`FileExistsError`, and nothing is left behind.
    The temporary file ``.NAME.<token>.tmp`` is held with ``flock`` until it is renamed; a write first
    removes the folder's temporary files that a killed write left (:func:`sweep_temporary_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporary_files(path.parent)
    tmp, fd = _create(path.parent, path.name, "tmp", lambda name: os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the rename: proof that this file is alive
        with os.fdopen(fd, "wb", closefd=False) as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                shutil.copyfileobj(data, handle, 1 << 20)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_noreplace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


#: A temporary file of :func:`atomic_write_bytes`: ``.NAME.<12 hex digits>.tmp``.
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def sweep_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write_bytes` in ``folder`` that belong to no live write:
    their ``flock`` can be taken (a writer holds it from just after creating the file to its rename, so a
    killed writer's is free) and they are older than a minute (the moment between creating and locking).
    Returns what it removed."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        if not _TEMPORARY.match(name):
            continue
        candidate = folder / name
        try:
            fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime >= _STAGING_GRACE_S and _try_lock(fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(candidate)
                    removed.append(candidate)
        finally:
            os.close(fd)
    return removed


def replace_folder(built: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the complete folder ``built`` to ``path`` (a sibling), replacing an existing one with no moment
    where neither exists: an atomic exchange where the file system has it, else the journaled rename-aside
    swap that :func:`recover` completes after a crash; the old folder is then deleted."""
    path = Path(path)
    recover(path)
    lock_fd, token = _take_ownership(path)
    try:
        _install(Path(built), path, token, overwrite=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_sibling(path, token, "lock"))
        os.close(lock_fd)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a hidden temporary sibling and move it to ``path`` only if the block succeeds.

    First the leftovers of earlier killed runs on ``path`` are recovered (:func:`recover`). On any exception
    the temporary directory is removed and ``path`` is left as it was. With ``overwrite=True`` an existing
    ``path`` is swapped for the new folder once that is complete (see the module docstring: there is no
    moment at which ``path`` is absent or unrecoverable), otherwise :class:`FileExistsError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(path)
    lock_fd, token = _take_ownership(path)
    tmp = _sibling(path, token, "partial")
    try:
        os.mkdir(tmp, 0o777)
        try:
            yield tmp
            _fault_point("ready")
            _install(tmp, path, token, overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_sibling(path, token, "lock"))
        os.close(lock_fd)


def recover(path: str | os.PathLike) -> list[Path]:
    """Finish what killed runs left beside ``path``; returns the leftovers it removed or moved into place.

    For each token whose lock no live process holds: an interrupted rename-aside swap is completed (or, if its
    new folder is gone, rolled back) so that ``path`` holds a complete folder; then the token's ``partial``
    and ``old`` folders, journal and lock file are deleted. Folders of live processes are never touched.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.([A-Za-z0-9_]+)\.({'|'.join(_KINDS)}|locking)$")
    tokens: dict[str, set[str]] = {}
    done: list[Path] = []
    for entry in os.listdir(parent):
        match = pattern.match(entry)
        if match and match[2] == "locking":
            done += _remove_stale_staging(parent / entry)
        elif match:
            tokens.setdefault(match[1], set()).add(match[2])
    for token, kinds in sorted(tokens.items()):
        lock = _sibling(path, token, "lock")
        try:
            fd = os.open(lock, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            fd = None  # the lock file is removed last, after the token's folders: nobody owns these
        try:
            if fd is not None and not _try_lock(fd):
                continue  # a live process owns this token (or this platform cannot tell)
            done += _clean_token(path, token, kinds)
            if fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
        finally:
            if fd is not None:
                os.close(fd)
    return done


def _remove_stale_staging(staging: Path) -> list[Path]:
    """A lock file killed before it was renamed into place (see :func:`_take_ownership`): removed once it is
    unlocked and a minute old (younger ones may not be locked yet)."""
    try:
        fd = os.open(staging, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return []
    try:
        if time.time() - os.fstat(fd).st_mtime < _STAGING_GRACE_S:
            return []
        if not _try_lock(fd):
            return []
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        return [staging]
    finally:
        os.close(fd)


def _clean_token(path: Path, token: str, kinds: set[str]) -> list[Path]:
    partial, old, journal = (_sibling(path, token, kind) for kind in ("partial", "old", "swap"))
    done = []
    if "swap" in kinds and not os.path.lexists(path):
        # killed between moving the old folder aside and the new one in: the new one is complete (the journal
        # is written only then), so finish the swap; if it is gone too, put the old one back
        for source in (partial, old):
            if source.is_dir():
                os.rename(source, path)
                done.append(source)
                break
    elif not os.path.lexists(path) and (old / "previous").is_dir():
        os.rename(old / "previous", path)  # the layout of hf-noisy <= 0.1's swap, killed half-way
        done.append(old / "previous")
    for leftover in (partial, old):
        if os.path.lexists(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
            done.append(leftover)
    if os.path.lexists(journal):
        os.unlink(journal)
        done.append(journal)
    return done


def _try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` of ``fd`` without waiting; False if another open file holds it."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _sibling(path: Path, token: str, kind: str) -> Path:
    return path.parent / f".{path.name}.{token}.{kind}"


def _create(parent: Path, name: str, kind: str, make):
    """A fresh ``parent/.name.<token>.kind`` made by ``make(path)`` (which must fail if it exists)."""
    for _ in range(100):
        candidate = parent / f".{name}.{os.urandom(6).hex()}.{kind}"
        try:
            return candidate, make(candidate)
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: could not create a temporary file for {name}")


def _take_ownership(path: Path) -> tuple[int, str]:
    """A new token for ``path`` and its lock file, created under a private name, locked, then renamed into
    place, so that a lock file is never seen unlocked while its owner lives."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    staging, fd = _create(path.parent, path.name, "locking", lambda name: os.open(name, flags, 0o666))
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        while True:
            token = os.urandom(6).hex()
            if not any(os.path.lexists(_sibling(path, token, kind)) for kind in _KINDS):
                break
        os.rename(staging, _sibling(path, token, "lock"))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        os.close(fd)
        raise
    return fd, token


def _install(tmp: Path, path: Path, token: str, overwrite: bool) -> None:
    """Move the complete folder ``tmp`` to ``path``, swapping it with an existing one when ``overwrite``."""
    if not os.path.lexists(path):
        try:
            _rename_noreplace(tmp, path)
            return
        except FileExistsError:
            if not overwrite:
                raise OutputExistsError(path) from None
    if not overwrite:
        raise OutputExistsError(path)
    if os.environ.get("HF_NOISY_SWAP") != "rename" and _renameat2(tmp, path, _RENAME_EXCHANGE):
        _fault_point("exchanged")
    else:
        old, journal = _sibling(path, token, "old"), _sibling(path, token, "swap")
        atomic_write_text(journal, json.dumps({"path": path.name, "new": tmp.name, "old": old.name}) + "\n")
        _fault_point("journaled")
        os.rename(path, old)
        try:
            _fault_point("moved-aside")
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)  # put the old folder back at once rather than on the next run
            os.unlink(journal)
            raise
        _fault_point("moved-in")
        tmp = old
    shutil.rmtree(tmp, ignore_errors=True)
    _fault_point("old-removed")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_sibling(path, token, "swap"))


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(2)`` through libc; False where the call or the flag is not supported (then nothing moved)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(source), None, str(target))


def _rename_noreplace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists (then :class:`FileExistsError`)."""
    if _renameat2(source, target, _RENAME_NOREPLACE):
        return
    if os.path.lexists(target):  # no atomic no-replace rename here: the best a plain rename allows
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def _fault_point(step: str) -> None:
    """Test hook: SIGKILL this process right after ``step`` when ``HF_NOISY_FAULT_POINT`` names it."""
    if os.environ.get("HF_NOISY_FAULT_POINT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
