"""Benchmark the leaderboard's work per upload: the depth scan against the backtracking one it replaced, and what
``submit`` costs the submitting process (the server) for the red team's worst uploads.

    python benchmarks/bench_upload_budget.py [--quotes 2000,4000,8000]

Prints one JSON line per measurement:

* ``depth_scan``: CPU seconds of :func:`hf_noisy.leaderboard.submission._max_depth` and of the replaced scan
  (``re.sub`` of a backtracking string pattern, then numpy int32 steps and an int64 cumsum), on ``[{"a": "``
  followed by N escaped quotes, measured in this run; ``ratio`` = replaced / linear. The replaced scan is
  quadratic: its time grows 4x per doubling of N, the linear one 2x.
* ``server``: CPU seconds (``RUSAGE_SELF``) and extra peak RSS (``VmHWM`` after a reset, over ``VmRSS``
  before) of one ``submit()`` in this process, the sandbox child not included, for each upload of
  ``tests/test_leaderboard_budget.py``; the budget is 1 s and 64 MB.

Numbers from a shared, loaded machine vary; the ratios and the growth per doubling are what to compare.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

_BACKTRACKING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _replaced_depth(data: bytes) -> int:
    """The scan the leaderboard used before (for comparison only)."""
    import numpy as np

    skeleton = np.frombuffer(_BACKTRACKING.sub(b'""', data), dtype=np.uint8)
    steps = np.zeros(skeleton.shape, dtype=np.int32)
    steps[(skeleton == ord("[")) | (skeleton == ord("{"))] = 1
    steps[(skeleton == ord("]")) | (skeleton == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def _cpu(function, *args) -> float:
    start = time.process_time()
    try:
        function(*args)
    except Exception:  # noqa: BLE001 - the linear scan refuses the unterminated string; the time is what counts
        pass
    return time.process_time() - start


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", default="2000,4000,8000")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _leaderboard import dumps, predictions, shapes_gt, write_gt
    from test_leaderboard_budget import _escapes, _polygons, _spaces

    from hf_noisy.leaderboard import Limits, SubmissionError, SubmissionMeta, init_store, parse_benchmark_sources
    from hf_noisy.leaderboard import submit
    from hf_noisy.leaderboard.submission import _max_depth

    for quotes in map(int, args.quotes.split(",")):
        data = b'[{"a": "' + b'\\"' * quotes
        linear, replaced = _cpu(_max_depth, data, 8), _cpu(_replaced_depth, data)
        print(json.dumps({"depth_scan": quotes, "linear_cpu_s": round(linear, 5), "replaced_cpu_s": round(replaced, 3),
                          "ratio": round(replaced / max(linear, 1e-6), 1)}))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gt = shapes_gt(root / "shapes", num_val=2)
        init_store(root / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, root / 'val.json')}"]))
        uploads = {"escapes": _escapes(), "spaces": _spaces(), "polygons": _polygons(gt),
                   "valid": gzip.compress(dumps(predictions(gt)), mtime=0)}
        for name, raw in uploads.items():
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
            rss, before = _status("VmRSS"), resource.getrusage(resource.RUSAGE_SELF)
            try:
                submit(root / "board", raw, SubmissionMeta(f"M {name}", "coco-n", "hard", "alice"),
                       limits=Limits(attempts_per_day=100))
                outcome = "accepted"
            except SubmissionError as err:
                outcome = err.kind
            after = resource.getrusage(resource.RUSAGE_SELF)
            print(json.dumps({"server": name, "upload_bytes": len(raw), "outcome": outcome,
                              "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
                              "extra_rss_mb": round((_status("VmHWM") - rss) / 1024, 1)}))


if __name__ == "__main__":
    main()
