"""Worker process pools that cannot hang and whose workers die with the process that made them.

:class:`WorkerPool` (made by :func:`worker_pool`) gives each worker its own pipe to the parent and runs no
helper thread: the parent hands a task to an idle worker and reads the results itself, in task order, at most
a window of tasks out at a time. Nothing is shared between processes but those pipes, so leaving the pool
(:meth:`WorkerPool.terminate`, the ``with`` block) kills its workers (SIGKILL) and reaps them, whatever they
were doing, and cannot block: ``multiprocessing.Pool.terminate`` can hang for ever when a worker holds the
result queue's lock (blocked sending a result nobody reads any more, or killed while sending one), e.g. after
an error raised while its results were consumed (CPython issues 96995, 78178; ``benchmarks/stress_pool_shutdown.py``).

Workers die with their parent too: on Linux the kernel sends them SIGKILL when it dies
(``prctl(PR_SET_PDEATHSIG)``), and on every platform a watchdog thread in each worker exits it within
:data:`WATCH_SECONDS` of its parent's end (its parent process id changes); a worker in the middle of a task
does not run it to the end. Every pool in hf-noisy is made here.

Linux's death signal follows the *thread* that forked the worker: make pools from a thread that outlives
them (as every hf-noisy command does, from its main thread).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, Iterable, Iterator

__all__ = ["WATCH_SECONDS", "RemoteTraceback", "WorkerLost", "WorkerPool", "die_with_parent", "start_method",
           "worker_pool"]

#: how often (seconds) a worker's watchdog checks that its parent still lives
WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


class WorkerLost(RuntimeError):
    """A worker process ended (killed, out of memory, crashed) while it had a task; its exit code is in the
    message."""


class RemoteTraceback(Exception):
    """The traceback, in the worker, of an exception a task raised (the ``__cause__`` of the one re-raised)."""

    def __str__(self) -> str:
        return self.args[0]


def start_method() -> str:
    """``fork`` where the platform has it (workers inherit the parent's read-only state), else ``spawn``."""
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def worker_pool(processes: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> WorkerPool:
    """A :class:`WorkerPool` of ``processes`` workers (:func:`start_method`) that die with this process;
    ``initializer(*initargs)`` runs in each worker after its death watch is set."""
    return WorkerPool(processes, initializer, initargs)


class WorkerPool:
    """``processes`` worker processes, each with its own pipe to this one; used from the thread that made it.

    Results come back in task order; a task's exception is raised again here (its worker's traceback as the
    ``__cause__``) when its result's turn comes. The functions and arguments cross to the workers pickled (by
    reference for functions), as with ``multiprocessing.Pool``. Leave it with :meth:`terminate` or a ``with``
    block: that kills the workers at once.
    """

    def __init__(self, processes: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> None:
        import multiprocessing

        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        context = multiprocessing.get_context(start_method())
        self._workers: list = []  # (process, connection) pairs
        self._idle: deque = deque()  # connections of workers without a task
        self._stale: list = []  # connections of workers still running a task whose result nobody wants
        try:
            for _ in range(processes):
                ours, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(theirs, ours, os.getpid(), initializer, initargs),
                                          daemon=True, name="hf-noisy-worker")
                process.start()
                theirs.close()  # the worker holds the only other end: its death ends the pipe
                self._workers.append((process, ours))
                self._idle.append(ours)
        except BaseException:
            self.terminate()
            raise

    def imap(self, func: Callable[[Any], Any], iterable: Iterable, chunksize: int = 1,
             window: int | None = None) -> Iterator:
        """``func(item)`` for each item, in order; ``chunksize`` items go to a worker at a time, and at most
        ``window`` tasks (chunks) are out or waiting to be read (twice the workers by default). Items are
        drawn from ``iterable`` as tasks are given out."""
        if chunksize == 1:
            return self.istarmap(func, ((item,) for item in iterable), window)
        chunks = iter(lambda it=iter(iterable): tuple(itertools.islice(it, chunksize)), ())
        return itertools.chain.from_iterable(self.istarmap(_run_chunk, ((func, chunk) for chunk in chunks), window))

    def istarmap(self, func: Callable[..., Any], iterable: Iterable[tuple], window: int | None = None) -> Iterator:
        """``func(*args)`` for each ``args``, in order, as :meth:`imap` gives them."""
        from multiprocessing.connection import wait

        if not self._workers:
            raise ValueError("the pool was terminated")
        window = window or 2 * len(self._workers)
        calls = iter(iterable)
        self._reclaim()
        busy: dict = {}  # connection -> task number
        done: dict = {}  # task number -> reply
        given = wanted = 0
        try:
            while True:
                while self._idle and given < wanted + window and calls is not None:
                    args = next(calls, None)
                    if args is None:
                        calls = None
                        break
                    connection = self._idle.popleft()
                    self._send(connection, (func, tuple(args)))
                    busy[connection] = given
                    given += 1
                if wanted in done:
                    yield _value(done.pop(wanted))
                    wanted += 1
                elif not busy:
                    return
                else:
                    for connection in wait(list(busy)):
                        done[busy.pop(connection)] = self._receive(connection)
                        self._idle.append(connection)
        finally:
            self._stale += busy  # left early: their results are read (and dropped) before the next tasks

    def starmap(self, func: Callable[..., Any], iterable: Iterable[tuple]) -> list:
        """``[func(*args) for args in iterable]``, computed by the workers."""
        return list(self.istarmap(func, iterable))

    def apply(self, func: Callable[..., Any], args: tuple = ()) -> Any:
        """``func(*args)``, computed by a worker."""
        return self.starmap(func, [args])[0]

    def terminate(self) -> None:
        """Kill every worker (SIGKILL: whatever it was doing) and wait for it to end; the pool is then closed."""
        for process, _ in self._workers:
            process.kill()
        for process, connection in self._workers:
            process.join()
            connection.close()
        self._workers, self._stale = [], []
        self._idle.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def _reclaim(self) -> None:
        """Wait for the tasks that an earlier call left running, and drop their results."""
        while self._stale:
            connection = self._stale.pop()
            self._receive(connection)
            self._idle.append(connection)

    def _send(self, connection, message: tuple) -> None:
        try:
            connection.send(message)  # the worker is reading: this returns once it has the task
        except OSError:
            raise self._lost(connection) from None

    def _receive(self, connection) -> tuple:
        try:
            return connection.recv()
        except (EOFError, OSError):
            raise self._lost(connection) from None

    def _lost(self, connection) -> WorkerLost:
        process = next(process for process, ours in self._workers if ours is connection)
        process.join()
        return WorkerLost(f"worker process {process.pid} ended with exit code {process.exitcode} during a task")


def _value(reply: tuple) -> Any:
    """The value of a worker's reply, or its exception raised."""
    if reply[0]:
        return reply[1]
    raise reply[1] from RemoteTraceback(reply[2])


def _run_chunk(func: Callable[[Any], Any], chunk: tuple) -> list:
    return [func(item) for item in chunk]


def _serve(connection, parents_end, parent: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """A worker: run the tasks that come on ``connection`` and send back each one's reply, until the pool
    closes its end (``parents_end``, which a forked worker holds a copy of: closed here)."""
    parents_end.close()
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            func, args = connection.recv()
        except EOFError:  # the pool was left
            return
        try:
            reply: tuple = (True, func(*args))
        except Exception as err:
            reply = (False, err, traceback.format_exc())
        try:
            connection.send(reply)
        except Exception as err:  # a value or exception that does not pickle (nothing was sent)
            message = f"a task's {'result' if reply[0] else 'exception'} could not be sent back: {err!r}"
            connection.send((False, RuntimeError(message), traceback.format_exc()))
        del reply


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
