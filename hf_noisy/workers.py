"""Worker process pools whose workers die with the process that made them.

A ``multiprocessing`` pool's workers outlive their parent when it is killed (SIGTERM, SIGKILL, or a SIGINT it
does not handle): each holds the task pipe that the others also hold open, so none of them sees it close, and
a worker in the middle of a task runs it to the end. :func:`worker_pool` makes pools whose workers leave
instead: on Linux the kernel sends them SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), and on
every platform a watchdog thread in each worker exits it within :data:`WATCH_SECONDS` of its parent's
end (its parent process id changes). Every pool in hf-noisy is made here.

Linux's death signal follows the *thread* that forked the worker: make pools from a thread that outlives
them (as every hf-noisy command does, from its main thread).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Callable

__all__ = ["WATCH_SECONDS", "die_with_parent", "start_method", "worker_pool"]

#: how often (seconds) a worker's watchdog checks that its parent still lives
WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def start_method() -> str:
    """``fork`` where the platform has it (workers inherit the parent's read-only state), else ``spawn``."""
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def worker_pool(processes: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()):
    """A ``multiprocessing.Pool`` of ``processes`` workers (:func:`start_method`) that die with this process;
    ``initializer(*initargs)`` runs in each worker after its death watch is set."""
    import multiprocessing

    return multiprocessing.get_context(start_method()).Pool(
        processes, _start_worker, (os.getpid(), initializer, initargs))


def _start_worker(parent: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """Make this process leave when process ``parent`` (its parent) ends: a kernel death signal where there is
    one, and a watchdog thread everywhere; leave at once if ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="hf-noisy-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
