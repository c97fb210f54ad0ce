"""Benchmark the leaderboard's work per upload: the depth scan against the backtracking one it replaced, and what
``submit`` costs the submitting process (the server) for the red team's worst uploads.

    python benchmarks/bench_upload_budget.py [--quotes 2000,4000,8000] [--check-only]

Prints one JSON line per measurement:

* ``depth_scan``: CPU seconds of :func:`hf_noisy.leaderboard.submission._max_depth` and of the replaced scan
  (``re.sub`` of a backtracking string pattern, then numpy int32 steps and an int64 cumsum), on ``[{"a": "``
  followed by N escaped quotes, measured in this run; ``ratio`` = replaced / linear. The replaced scan is
  quadratic: its time grows 4x per doubling of N, the linear one 2x.
* ``server``: CPU seconds (``RUSAGE_SELF``) and extra peak RSS (``VmHWM`` after a reset, over ``VmRSS``
  before) of one ``submit()`` in this process, the sandbox child not included, for each upload of
  ``tests/test_leaderboard_budget.py``; the budget is 1 s and 64 MB.
* ``check``: the sandbox child of one check (``check_upload``, the benchmark's check budget) on the issue 23
  uploads (20 detections padded with 3.8 GiB of spaces as a 4 MB gzip, 255 MiB of spaces, 300 zigzag
  polygons, a valid gzip of 36k detections): its CPU
  seconds (``RUSAGE_CHILDREN``), peak RSS (its ``VmHWM``, polled every 20 ms) and peak temporary disk (the
  sizes of the deleted or unnamed files it holds open, polled likewise); the goals are 30 CPU-s, 256 MB and
  256 MB.

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


def _sandbox_child() -> int | None:
    """The pid of this process's sandbox child, if one is running."""
    import os

    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == os.getpid() and b"hf_noisy.leaderboard.sandbox" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def _poll_child(pid: int) -> tuple[int, int]:
    """``(VmHWM in kB, bytes of the deleted or unnamed files it holds open)`` of process ``pid`` now."""
    import os

    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    temporary = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            if target.endswith("(deleted)") and not target.startswith("/memfd:"):
                temporary += os.stat(fd).st_size
        except OSError:
            continue
    return hwm, temporary


def _check_cost(upload: bytes, gt_path: Path) -> dict:
    """One sandboxed check of ``upload``: its answer, the child's CPU seconds, peak RSS and temporary disk."""
    import threading

    from hf_noisy.leaderboard.sandbox import check_upload

    answer: dict = {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = threading.Thread(target=lambda: answer.update(check_upload(upload, gt_path, "coco-n")))
    worker.start()
    peak_kb = peak_disk = 0
    while worker.is_alive():
        pid = _sandbox_child()
        if pid is not None:
            try:
                hwm, disk = _poll_child(pid)
                peak_kb, peak_disk = max(peak_kb, hwm), max(peak_disk, disk)
            except OSError:
                pass
        time.sleep(0.02)
    worker.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"answer": answer.get("error") or ("complete" if answer.get("complete") else "partial"),
            "detections": answer.get("detections"),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1), "peak_temp_disk_mb": round(peak_disk / 2**20, 1)}


def _check_uploads(gt: dict) -> dict[str, bytes]:
    """The issue 23 uploads: 20 valid detections padded with 3.8 GiB of spaces (gzip), the 255 MiB of spaces,
    300 zigzag polygons (gzip), and a valid gzip of every image's masks, repeated up to 100 per image."""
    import zlib

    from _leaderboard import dumps, predictions
    from test_leaderboard_budget import _spaces
    from test_leaderboard_queue import _zigzag

    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    padded = b"".join([packer.compress(dumps(predictions(gt, limit=20))[:-1]),
                       *(packer.compress(block) for _ in range(3891)), packer.compress(b"]"), packer.flush()])
    valid = predictions(gt)
    per_image = max(sum(d["image_id"] == i["id"] for d in valid) for i in gt["images"])
    big = valid * max(1, 100 // max(per_image, 1))
    return {"padded": padded, "spaces": _spaces(), "zigzag": gzip.compress(dumps(_zigzag(300)), mtime=0),
            "valid-large": gzip.compress(dumps(big), mtime=0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", default="2000,4000,8000")
    parser.add_argument("--check-only", action="store_true", help="only the check section")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _leaderboard import dumps, predictions, shapes_gt, write_gt
    from test_leaderboard_budget import _escapes, _polygons, _spaces

    from hf_noisy.leaderboard import Limits, SubmissionError, SubmissionMeta, init_store, parse_benchmark_sources
    from hf_noisy.leaderboard import submit
    from hf_noisy.leaderboard.submission import _max_depth

    if args.check_only:
        _check_section()
        return
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
    _check_section()


def _check_section() -> None:
    from test_leaderboard_queue import BIG, BIG_IMAGES

    from _leaderboard import shapes_gt, write_gt

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gt = shapes_gt(root / "shapes", num_val=400)  # 400 images: the valid upload is 36k detections
        gt["images"] += [{"id": i, "file_name": f"big{i}.png", "height": BIG, "width": BIG}
                         for i in range(1, BIG_IMAGES + 1)]
        gt_path = write_gt(gt, root / "val.json")
        for name, raw in _check_uploads(gt).items():
            print(json.dumps({"check": name, "upload_bytes": len(raw), **_check_cost(raw, gt_path)}), flush=True)


if __name__ == "__main__":
    main()
