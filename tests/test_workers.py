"""Worker processes die with the command that started them: SIGTERM, SIGINT or SIGKILL of ``noise`` or
``build`` with ``--num-proc 2`` leaves no worker behind, and the next build cleans the killed one's folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from hf_noisy.workers import WATCH_SECONDS, WorkerLost, worker_pool

REPO = Path(__file__).resolve().parents[1]


def replicated(source: Path, times: int, target: Path) -> Path:
    """``times`` copies of a COCO file's images and annotations (fresh ids, the same image files)."""
    data = orjson.loads(source.read_bytes())
    step_i = max(i["id"] for i in data["images"]) + 1
    step_a = max(a["id"] for a in data["annotations"]) + 1
    target.write_bytes(orjson.dumps({
        **data,
        "images": [{**i, "id": i["id"] + k * step_i} for k in range(times) for i in data["images"]],
        "annotations": [{**a, "id": a["id"] + k * step_a, "image_id": a["image_id"] + k * step_i}
                        for k in range(times) for a in data["annotations"]],
    }))
    return target


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        try:
            children = Path(f"/proc/{todo.pop()}/task").glob("*/children")
            kids = {int(c) for path in children for c in path.read_text().split()}
        except OSError:
            kids = set()
        todo += kids - found
        found |= kids
    return found


def kill_with_workers_running(command: list[str], sig: int, workers: int = 2, ready=lambda: True) -> set[int]:
    """Start ``command``, wait until it has ``workers`` child processes and ``ready()`` holds, send it ``sig``;
    returns the workers."""
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        while (len(seen) < workers or not ready()) and parent.poll() is None and time.monotonic() < deadline:
            seen = descendants(parent.pid)
            time.sleep(0.02)
        assert len(seen) >= workers and ready(), \
            f"no pool of {workers} started: {parent.poll()} {parent.stderr.read()[-500:]}"
        parent.send_signal(sig)
        parent.wait(timeout=60)
    finally:
        parent.kill()
        parent.wait()
    return seen


def assert_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 5 + 2 * WATCH_SECONDS
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"}
        time.sleep(0.1)
    assert not alive, f"workers left behind: {sorted(alive)}"


@pytest.fixture(scope="module")
def big_coco(coco_tiny: Path, tmp_path_factory) -> Path:
    """A COCO root whose train split is coco-tiny's x20 (1,600 images, ~14k annotations): pools that live."""
    root = tmp_path_factory.mktemp("coco20")
    (root / "annotations").mkdir()
    for name in ("train2017", "val2017"):
        (root / name).symlink_to(coco_tiny / name)
    replicated(coco_tiny / "annotations/instances_train2017.json", 20, root / "annotations/instances_train2017.json")
    (root / "annotations/instances_val2017.json").write_bytes(
        (coco_tiny / "annotations/instances_val2017.json").read_bytes())
    return root


CLI = [sys.executable, "-m", "hf_noisy.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_noise_workers_die_with_it(big_coco: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "noisy.json"
    workers = kill_with_workers_running(CLI + ["noise", str(big_coco / "annotations/instances_train2017.json"), "-o",
                                               str(out), "--spec", "hard", "--num-proc", "2", "--no-progress"], sig)
    assert_gone(workers)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # the output's temporary file was unnamed


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_build_workers_die_with_it_and_the_next_build_cleans_up(big_coco: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "built"
    command = CLI + ["build", "coco-n", "--coco-root", str(big_coco), "--out", str(out), "--images", "none",
                     "--num-proc", "2", "--no-progress", "--no-verify-images", "--levels", "clean,hard"]
    # killed while the shard-writing pool works (a shard is written), not the image-size check's pool before it
    writing = lambda: any(tmp_path.glob(".built*.partial/data/*/*.parquet"))  # noqa: E731
    workers = kill_with_workers_running(command, sig, ready=writing)
    assert_gone(workers)
    assert not out.exists()
    done = subprocess.run(command[:-2] + ["--levels", "clean", "--max-images", "5"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]  # the killed build's .partial is gone


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _busy(marker: str) -> None:
    """A long task that says when it has started."""
    Path(marker).touch()
    time.sleep(60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_busy_workers_leave_when_their_parent_is_gone(tmp_path: Path, sig: int) -> None:
    """A worker in the middle of a long task when its parent is killed leaves at once (an idle one would leave
    anyway, reading the end of its task queue; a busy one, before, ran its task to the end)."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from test_workers import _busy; "
            "from hf_noisy.workers import worker_pool; pool = worker_pool(2); "
            "list(pool.imap(_busy, [sys.argv[2] + '/a', sys.argv[2] + '/b']))")
    parent = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)],
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not ((tmp_path / "a").exists() and (tmp_path / "b").exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = descendants(parent.pid)
        assert len(workers) == 2 and (tmp_path / "b").exists()
        parent.send_signal(sig)
        parent.wait(timeout=30)
    finally:
        parent.kill()
        parent.wait()
    assert_gone(workers)


def test_pool_runs_the_initializer() -> None:
    with worker_pool(1, _sleep, (0,)) as pool:
        assert pool.apply(_sleep, (0.0,)) == 0.0


class _Stop(Exception):
    """The consumer's error (a bad annotation found in a result)."""


def _big_task(task: tuple[str, int, bytes]) -> bytes:
    """Task 1 stays in the middle of its run; the others work a little (2 ms) and send a result larger than a
    pipe holds. Each says which worker runs it (marker files)."""
    folder, i, payload = task
    if i == 1:
        Path(folder, f"busy-{os.getpid()}").touch()
        time.sleep(600)
    if i < 10:
        Path(folder, f"sent-{i}-{os.getpid()}").touch()
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass
    return payload[:1] * 1_000_000


def _fail_while_busy(folder: str, rounds: int) -> None:
    """Leave a pool of 2 on an error raised while its results are consumed, ``rounds`` times: when the first
    result comes, the consumer waits until one worker is in the middle of a task and the other is sending a
    result nobody reads (tasks of 100 kB are waiting to be given out), then raises; prints the workers still
    alive once the ``with`` block is left (``[]``)."""
    left = []
    for r in range(rounds):
        here = Path(folder, str(r))
        here.mkdir()
        tasks = ((str(here), i, bytes([i % 256]) * 100_000) for i in range(1000))
        try:
            with worker_pool(2) as pool:
                for _ in pool.imap(_big_task, tasks):
                    while not (any(here.glob("busy-*")) and any(here.glob("sent-[2-9]-*"))):
                        time.sleep(0.01)
                    raise _Stop
        except _Stop:
            pass
        workers = {int(p.name.rsplit("-", 1)[1]) for p in here.iterdir()}
        assert len(workers) == 2
        left += [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # reaped: no entry, not even a zombie
    print("left", left, flush=True)


def test_an_error_while_results_are_consumed_leaves_no_worker(tmp_path: Path) -> None:
    """``multiprocessing.Pool.terminate`` could hang for ever here (its task handler or the parent waiting on
    the result queue's lock, held by a worker blocked sending a result, or killed while sending one): the
    scenario runs in a child process, so that a hang fails the test instead of blocking it."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_workers import _fail_while_busy; "
            "_fail_while_busy(sys.argv[2], 10)")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path)],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired as hung:
        raise AssertionError(f"leaving the pool hung: {hung.stderr}") from None
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "left []"


def _die(code: int) -> None:
    os._exit(code)


def test_a_worker_that_dies_during_a_task_is_an_error() -> None:
    """(``multiprocessing.Pool`` waited for ever for its result.)"""
    with worker_pool(2) as pool:
        with pytest.raises(WorkerLost, match="exit code 3 during a task"):
            list(pool.imap(_die, [3]))
