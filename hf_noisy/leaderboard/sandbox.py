"""Every byte of an upload is handled here, in a resource-limited child process: both to check a new submission
(:func:`check_upload`, called by :func:`~hf_noisy.leaderboard.board.submit`) and to score a stored one
(:func:`score_upload`, called by :func:`~hf_noisy.leaderboard.evaluate_pending`).

The parent only moves file descriptors: it opens the upload (a file, or an anonymous in-memory file, ``memfd``,
holding the bytes it was given) read-only, starts ``python -m hf_noisy.leaderboard.sandbox`` with it, waits at
most ``wall_seconds`` and reads the child's answer from a second anonymous file. A check also hands the child a
file to write the upload into as it is stored (gzip-compressed, if it came as plain JSON). The child asks the
kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), so it leaves no orphan; the files it writes
are unnamed (``O_TMPFILE``), so a killed child or parent leaves no temporary file either.

The child imports what it needs and loads the (trusted) ground truth first, then caps itself: CPU time (a
profiling timer, backed by ``RLIMIT_CPU``) and memory (``RLIMIT_DATA``: allocations beyond it fail). The limits
are budgets for the upload's own work on top of that baseline. All of it streams, so memory does not follow
the file's size: the upload is read a chunk at a time (:func:`~.submission.iter_upload`: caps, gzip, what the
bytes are, the ratio and whitespace caps) and checked a batch of detections at a time as it is decompressed
(:func:`~.submission.check_results_file`: a check writes nothing but a plain upload's stored gzip); to score,
a gzip upload is decompressed into an unnamed temporary file, checked again and evaluated image by image in
one process
(:func:`~.rules.score` on the file: ``RLIMIT_CPU`` is per process, so workers would each get the budget
again). It answers ``{"metrics": ...}`` (score), ``{"detections": n, "complete": bool}`` (check), or ``{"error":
kind, "reason": ...}``.

A child that ends on a signal other than its CPU limit (``SIGXCPU``, or the ``SIGPROF`` timer in front of it)
-- the out-of-memory killer's ``SIGKILL``, an administrator, a crash -- is run again, up to
:attr:`~.policy.SandboxLimits.retries` more times, then reported with that signal as the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from typing import BinaryIO, Iterator

from .. import benchmarks
from .policy import Limits, SandboxLimits, check_limits, scoring_limits
from .rules import score

__all__ = ["check_upload", "score_upload"]

#: A check stops between two batches once it has used this fraction of its CPU budget (the rest of the budget is
#: room for the batch in hand), and answers how many detections it checked.
CHECK_STOP = 0.75
#: ``prctl`` option: the signal this process gets when the thread that started it ends (Linux).
_PR_SET_PDEATHSIG = 1


class _Killed(Exception):
    """The child ended on an outside signal (retried)."""


def _memfd(name: str, data: bytes = b"") -> int:
    fd = os.memfd_create(name)  # close-on-exec; pass_fds hands it to the sandbox child alone
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _open_upload(upload: bytes | os.PathLike | str) -> int:
    """A read-only descriptor of the upload: its file, or a ``memfd`` holding the bytes."""
    if isinstance(upload, (bytes, bytearray, memoryview)):
        return _memfd("hf-noisy-upload", bytes(upload))
    return os.open(upload, os.O_RDONLY | os.O_CLOEXEC)


def _reason(returncode: int, limits: SandboxLimits, stderr: str) -> tuple[str, str]:
    """``(kind, reason)`` for a child that did not answer."""
    if returncode in (-signal.SIGPROF, -signal.SIGXCPU):
        return "time", f"CPU time limit exceeded ({limits.cpu_seconds:g} s for the upload)"
    if "MemoryError" in stderr:
        return "memory", f"memory limit exceeded ({limits.memory_mb:g} MB for the upload)"
    tail = stderr.strip().splitlines()[-1:]
    detail = f": {tail[0][:300]}" if tail else ""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = {signal.SIGKILL: " (from outside the sandbox, most likely the out-of-memory killer)",
                signal.SIGABRT: " (most likely the memory limit)",
                signal.SIGSEGV: " (most likely the memory limit)"}.get(signal.Signals(-returncode), "")
        return "crash", f"the sandbox was killed by {name}{hint}, {limits.retries + 1} times{detail}"
    return "crash", f"the sandbox exited with status {returncode}{detail}"


def _run(mode: str, upload: int, packed: BinaryIO | None, gt_path: os.PathLike | str, benchmark: str,
         limits: SandboxLimits, caps: Limits) -> dict:
    """One child run on the upload's descriptor: its answer. Raises :class:`_Killed`."""
    if packed is not None:
        packed.seek(0)
        packed.truncate()
        packed.flush()
    packed_fd = packed.fileno() if packed is not None else -1
    fds = [_memfd("hf-noisy-answer"), _memfd("hf-noisy-stderr")]
    answer, stderr = fds
    try:
        if os.path.isfile(f"/proc/self/fd/{upload}"):  # a file or memfd (a pipe is read once, as it comes)
            os.lseek(upload, 0, os.SEEK_SET)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-m", "hf_noisy.leaderboard.sandbox", mode, "--gt", os.fspath(gt_path),
                   "--benchmark", benchmark, "--input-fd", str(upload), "--output-fd", str(answer),
                   "--data-fd", str(packed_fd), "--parent-pid", str(os.getpid()),
                   "--cpu-seconds", str(limits.cpu_seconds), "--memory-mb", str(limits.memory_mb),
                   "--stop-after-cpu", str(CHECK_STOP * limits.cpu_seconds if mode == "check" else -1),
                   "--caps", json.dumps(asdict(caps))]
        passed = (upload, answer) if packed is None else (upload, answer, packed_fd)
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, pass_fds=passed)
        try:
            returncode = proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"error": "time", "reason": f"wall-clock limit exceeded ({limits.wall_seconds:g} s)"}
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        text = _read_fd(answer)
        if returncode == 0 and text:
            return json.loads(text)
        log = _read_fd(stderr).decode("utf-8", "replace")
        if returncode < 0 and returncode not in (-signal.SIGPROF, -signal.SIGXCPU) and "MemoryError" not in log:
            raise _Killed(_reason(returncode, limits, log)[1])
        kind, reason = _reason(returncode, limits, log)
        return {"error": kind, "reason": reason}
    finally:
        for fd in fds:
            os.close(fd)


def _run_with_retries(mode: str, upload: bytes | os.PathLike | str, packed: BinaryIO | None,
                      gt_path: os.PathLike | str, benchmark: str, limits: SandboxLimits | None,
                      caps: Limits) -> dict:
    limits = limits or scoring_limits(benchmark)
    caps = caps.for_benchmark(benchmark)
    fd = _open_upload(upload)
    try:
        for attempt in range(limits.retries + 1):
            try:
                return _run(mode, fd, packed, gt_path, benchmark, limits, caps)
            except _Killed as killed:
                if attempt == limits.retries:
                    return {"error": "crash", "reason": str(killed)}
    finally:
        os.close(fd)
    raise AssertionError("unreachable")


def check_upload(upload: bytes | os.PathLike | str, gt_path: os.PathLike | str, benchmark: str,
                 limits: SandboxLimits | None = None, *, caps: Limits = Limits(),
                 packed: BinaryIO | None = None) -> dict:
    """Check an upload (its bytes or its file) in the sandbox against ``caps`` (size caps left ``None``: the
    benchmark's) and the ground truth at ``gt_path``: ``{"detections": n, "complete": bool}`` or ``{"error":
    kind, "reason": ...}``. ``limits``: the check's budgets (default: the benchmark's check budget,
    :func:`~.policy.check_limits`, whatever the file's size); once :data:`CHECK_STOP` of its CPU time is
    spent with no rule broken, the check stops and answers ``complete: False`` with the detections it
    checked (the evaluator checks the whole file again before it scores it). A plain-JSON upload is also
    written gzip-compressed (:func:`~.submission.gzip_bytes`) into ``packed``, a writable file, as it is
    stored (always whole: the stop comes after); a gzip upload leaves it empty."""
    limits = limits or check_limits(benchmark)
    return _run_with_retries("check", upload, packed, gt_path, benchmark, limits, caps)


def score_upload(upload: bytes | os.PathLike | str, gt_path: os.PathLike | str, benchmark: str,
                 limits: SandboxLimits | None = None, *, caps: Limits = Limits()) -> dict:
    """Check and score a stored submission (its bytes or its file) in the sandbox: ``{"metrics": ...}`` or
    ``{"error", "reason"}``; ``limits``: default :func:`~.policy.scoring_limits`."""
    return _run_with_retries("score", upload, None, gt_path, benchmark, limits, caps)


def _die_with_parent(parent_pid: int) -> None:
    """Ask for ``SIGKILL`` when the parent ends; if it already has (we were re-parented), end now."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os._exit(1)


def _data_size() -> int:
    """This process's data segment (``VmData``: heap and private writable mappings), in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmData line")


def _cap(cpu_seconds: float, memory_bytes: int) -> None:
    """CPU: ``ITIMER_PROF`` counts this process's CPU time up to the budget, then ``SIGPROF`` ends it (its
    default action; nothing here handles it); ``RLIMIT_CPU`` (whole seconds, ``SIGXCPU``) backs it up.
    Memory: ``RLIMIT_DATA`` (heap and private writable mappings, Linux >= 4.7). ``RLIMIT_AS`` is not used: it
    counts address space that allocators and thread pools reserve without using, so it fails at random."""
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + cpu_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    limit = _data_size() + memory_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _write_fd(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb", closefd=False) as handle:
        handle.write(data)


def _check_source(upload: BinaryIO, packed: BinaryIO | None, caps: Limits) -> tuple[str, Iterator[bytes] | None]:
    """What a check reads: the upload's name (for messages) and its JSON text streamed through
    :func:`~.submission.iter_upload` (decompressed, capped and checked as it is read: nothing is written
    anywhere; the upload may be a pipe); except for a plain upload to be stored (``packed``): ``None``, after
    one pass through ``iter_upload`` that compresses it into ``packed`` (the upload is then checked from its
    own file)."""
    from .submission import gzip_chunks, iter_upload

    name = f"/proc/self/fd/{upload.fileno()}"
    if packed is None or upload.peek(2)[:2] == b"\x1f\x8b":
        return name, iter_upload(upload, caps)
    gzip_chunks(iter_upload(upload, caps), packed)
    return name, None


def _scored_path(upload: BinaryIO, caps: Limits) -> tuple[str, BinaryIO | None]:
    """Read the upload once through :func:`~.submission.iter_upload` (the streamed caps) and return a path of
    its JSON text, and the file to close when done with it (``None``): the upload itself if it is plain, else
    an unnamed temporary file it is decompressed into (scoring reads the text twice: check, then score)."""
    import tempfile

    from .submission import iter_upload

    gzipped = upload.read(2) == b"\x1f\x8b"
    upload.seek(0)
    if not gzipped:
        for _ in iter_upload(upload, caps):
            pass
        return f"/proc/self/fd/{upload.fileno()}", None
    plain = tempfile.TemporaryFile()  # O_TMPFILE: no name, gone when this process is
    for chunk in iter_upload(upload, caps):
        plain.write(chunk)
    plain.flush()
    return f"/proc/self/fd/{plain.fileno()}", plain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_noisy.leaderboard.sandbox")
    parser.add_argument("mode", choices=("check", "score"))
    parser.add_argument("--gt", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--input-fd", type=int, required=True)
    parser.add_argument("--output-fd", type=int, required=True)
    parser.add_argument("--data-fd", type=int, default=-1, help="check: where the stored (gzip) upload goes")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=float, required=True)
    parser.add_argument("--memory-mb", type=float, required=True)
    parser.add_argument("--stop-after-cpu", type=float, default=-1,
                        help="check: stop between batches after this much CPU time (s) of the upload's work")
    parser.add_argument("--caps", type=json.loads, default={})
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid)

    import pycocotools.mask  # noqa: F401  (import the stack before the caps, so the budget is the upload's own)

    from ..coco import load_coco
    from ..metrics import PredictionError, stream  # noqa: F401
    from .submission import CheckBudgetSpent, SubmissionError, check_results_file, refusal_of

    record = benchmarks.get(args.benchmark)
    if args.mode == "score":
        import cv2
        import faster_coco_eval  # noqa: F401

        from ..metrics import coco_eval  # noqa: F401

        if record.protocol == "lvis":
            from ..metrics import evaluate_lvis  # noqa: F401
        cv2.setNumThreads(1)
    gt = load_coco(args.gt, allow_empty_masks=True)
    caps = Limits(**args.caps)
    if args.mode == "score":  # the ratio cap guards the check of an upload; a stored file is the board's own gzip
        caps = replace(caps, max_ratio=math.inf)
    upload = os.fdopen(args.input_fd, "rb", closefd=False)  # buffered: peek() sniffs a pipe too
    packed = os.fdopen(args.data_fd, "wb", closefd=False) if args.data_fd >= 0 else None
    _cap(args.cpu_seconds, int(args.memory_mb * 2**20))
    stop_at = time.process_time() + args.stop_after_cpu if args.stop_after_cpu >= 0 else None
    plain = blocks = None
    try:
        if args.mode == "check":
            path, blocks = _check_source(upload, packed, caps)
        else:
            path, plain = _scored_path(upload, caps)
        count = check_results_file(path, gt, max_per_image=record.detections_per_image, limits=caps,
                                   masks=args.mode == "check", stop_at_cpu=stop_at, blocks=blocks)
        if args.mode == "score":
            try:
                record = {"metrics": score(args.benchmark, gt, path, num_proc=1)}
            except PredictionError as err:
                raise refusal_of(str(err), path) from None
        else:
            record = {"detections": count, "complete": True}
    except CheckBudgetSpent as spent:
        record = {"detections": spent.checked, "complete": False}
    except SubmissionError as err:
        record = {"error": err.kind, "reason": str(err)}
    except MemoryError:
        record = {"error": "memory", "reason": f"memory limit exceeded ({args.memory_mb:g} MB for the upload)"}
    finally:
        if plain is not None:
            plain.close()
    if packed is not None:
        packed.flush()
    _write_fd(args.output_fd, json.dumps(record).encode("utf-8"))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
