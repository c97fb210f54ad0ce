"""Stress the shutdown of a :func:`hf_noisy.workers.worker_pool` left on an error while results are consumed.

Each round opens a pool of 2 workers, gives it work, raises in the consumer after a few results, and leaves the
``with`` block (or ``finally``) the way hf-noisy's commands do; a round that does not give back control within
``--hang-after`` seconds is a hang: the child dumps every thread's stack (faulthandler) and exits, and the
parent counts it and starts a new child. Run it under load, e.g.::

    nice -n 10 python benchmarks/stress_pool_shutdown.py --rounds 200 --scenario imap --hog 2

Scenarios: ``imap`` (every task given out at once: the task handler blocks on the full task pipe, results are
larger than a pipe's buffer), ``window`` (tasks given out a window at a time, as noise/stream.py does),
``idle`` (the error comes while the workers wait for tasks). Prints ``hung H of N rounds`` per scenario.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

TASK_BYTES = 100_000  # a task's payload: a few fill the 64 KiB task pipe
RESULT_BYTES = 300_000  # a result: larger than the result pipe's buffer


class Stop(Exception):
    """The consumer's error (an annotation problem found in a result)."""


def _work(payload: bytes) -> bytes:
    end = time.perf_counter() + 0.002  # a short task: workers are busy when the error comes
    while time.perf_counter() < end:
        pass
    return payload[:1] * RESULT_BYTES


def _round(scenario: str, after: int) -> None:
    from hf_noisy.workers import worker_pool

    tasks = [bytes([k % 256]) * TASK_BYTES for k in range(200)]
    try:
        with worker_pool(2) as pool:
            if scenario == "imap":
                for k, _ in enumerate(pool.imap(_work, tasks)):
                    if k == after:
                        raise Stop
            elif scenario == "window" and not hasattr(pool, "apply_async"):  # hf-noisy's own pool since 0.x
                for k, _ in enumerate(pool.imap(_work, tasks, window=8)):
                    if k == after:
                        raise Stop
            elif scenario == "window":  # multiprocessing.Pool: windowed as noise/stream.py did
                pending: deque = deque()
                for k, task in enumerate(tasks):
                    pending.append(pool.apply_async(_work, (task,)))
                    if len(pending) >= 8:
                        pending.popleft().get()
                    if k == after + 8:
                        raise Stop
            else:  # idle
                pool.apply(_work, (b"x",))
                raise Stop
    except Stop:
        pass


def child(args: argparse.Namespace) -> None:
    for k in range(args.rounds):
        faulthandler.dump_traceback_later(args.hang_after, exit=True)
        _round(args.scenario, k % 5)
        faulthandler.cancel_dump_traceback_later()
        print("ok", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--scenario", default="imap,window,idle")
    parser.add_argument("--hang-after", type=float, default=20.0, help="seconds a round may take before it is a hang")
    parser.add_argument("--hog", type=int, default=0, help="busy processes competing for the CPU meanwhile")
    parser.add_argument("--dumps", type=Path, default=None, help="folder for the stack dumps of hung rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hog)]
    try:
        for scenario in args.scenario.split(","):
            done = hung = 0
            while done + hung < args.rounds:
                run = subprocess.run([sys.executable, __file__, "--child", "--scenario", scenario, "--rounds",
                                      str(args.rounds - done - hung), "--hang-after", str(args.hang_after)],
                                     capture_output=True, text=True)
                done += run.stdout.count("ok\n")
                if run.returncode != 0:
                    hung += 1
                    if args.dumps is not None:
                        args.dumps.mkdir(parents=True, exist_ok=True)
                        (args.dumps / f"{scenario}-{hung}.txt").write_text(run.stderr)
            print(f"{scenario}: hung {hung} of {done + hung} rounds", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


if __name__ == "__main__":
    main()
