"""The LVIS-N leaderboard takes a complete LVIS-size submission: larger than the old 1 GiB cap, checked and scored
in its sandbox within the benchmark's limits.

lvis-tiny replicated ``--scale`` times (x200: 20,000 images, the size of LVIS v1 val) at LVIS submission density
(300 detections per image, as ``bench_metric_lvis.py --scale``), written as JSON and gzip-compressed as a
submitter uploads it. Then, each in its own process, as the board runs them:

* ``submit``: ``hf_noisy.leaderboard.submit`` of the ``.json.gz`` file (the server's part, and the sandbox child
  that streams, checks and stores it);
* ``evaluate``: ``evaluate_pending`` (the sandbox child that scores it, in one process);
* the reference, measured in the same run: ``hf-noisy evaluate --num-proc 1`` on the same files.

It prints the file's size against the old caps and LVIS-N's, and per step the wall time, the sandbox child's CPU
time and peak RSS (``ru_maxrss``: an upper bound, it counts the server's RSS when it started the child), the
server process's own peak RSS (``VmHWM``), and the board's scoring time over the reference's. The board's
numbers must equal the reference's.

    nice python benchmarks/bench_board_scale.py --scale 200

Needs about 2.6 GB of disk per x100 in the temporary folder (``TMPDIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
OLD_CAPS = {"compressed": 256 * 2**20, "uncompressed": 1024 * 2**20}

#: One board step in its own process: ``python -c STEP STORE UPLOAD submit|evaluate`` prints a JSON line.
STEP = r"""
import json, resource, sys, time
from pathlib import Path
from hf_noisy.leaderboard import SubmissionMeta, evaluate_pending, submit
store, upload, step = sys.argv[1:4]
start = time.perf_counter()
if step == "submit":
    out = {"detections": submit(store, Path(upload), SubmissionMeta("LVIS-size", "lvis-n", "clean", "bench")).detections}
else:
    out = {"record": evaluate_pending(store)[0]}
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:  # this process's own peak (ru_maxrss counts its parent's RSS at fork)
    server = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
child = resource.getrusage(resource.RUSAGE_CHILDREN)
out.update(seconds=seconds, server_rss_mb=server / 1024, sandbox_rss_mb=child.ru_maxrss / 1024,
           sandbox_cpu_seconds=child.ru_utime + child.ru_stime)
print(json.dumps(out))
"""


def step(store: Path, upload: Path, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", STEP, str(store), str(upload), name], capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compress(plain: Path, packed: Path) -> None:
    """The upload, as a submitter makes it (deterministic gzip, level 6, a chunk at a time)."""
    from hf_noisy.leaderboard.submission import gzip_chunks

    with open(plain, "rb") as source, open(packed, "wb") as out:
        gzip_chunks(iter(lambda: source.read(1 << 20), b""), out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=200, help="replication of lvis-tiny (default 200: 20k images)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _sweep import max_diff, run_child, write_replicated
    from bench_metric_lvis import GT, TOLERANCE, lvis_submission

    from hf_noisy.leaderboard import init_store, parse_benchmark_sources
    from hf_noisy.leaderboard.policy import Limits, scoring_limits

    if not GT.is_file():
        print(f"shared data not found: {GT} (set HF_NOISY_SHARED)", file=sys.stderr)
        return 2
    gt, detections = lvis_submission()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        gt_path, dt_path, images, count = write_replicated(gt, detections, args.scale, folder)
        upload = folder / "results.json.gz"
        compress(dt_path, upload)
        plain, packed = dt_path.stat().st_size, upload.stat().st_size
        caps, budget = Limits().for_benchmark("lvis-n"), scoring_limits("lvis-n")
        print(f"x{args.scale}: {images:,} images, {count:,} detections (made in {time.perf_counter() - start:.0f} s)")
        print(f"upload: {plain / 2**20:,.0f} MiB of JSON, {packed / 2**20:,.0f} MiB gzipped; old caps "
              f"{OLD_CAPS['uncompressed'] / 2**20:,.0f} / {OLD_CAPS['compressed'] / 2**20:,.0f} MiB "
              f"({'over' if plain > OLD_CAPS['uncompressed'] else 'within'}), LVIS-N caps "
              f"{caps.max_uncompressed_bytes / 2**20:,.0f} / {caps.max_compressed_bytes / 2**20:,.0f} MiB; "
              f"sandbox budget {budget.cpu_seconds:,.0f} CPU s, {budget.memory_mb:,.0f} MB", flush=True)
        store = folder / "board"
        init_store(store, parse_benchmark_sources([f"lvis-n={gt_path}"]))
        submitted = step(store, upload, "submit")
        assert submitted["detections"] == count, submitted
        evaluated = step(store, upload, "evaluate")
        record = evaluated["record"]
        if record["status"] != "done":
            print(f"evaluation failed: {record['reason']}")
            return 1
        reference = run_child(HERE, "bench_metric_lvis", "run_cli_1", [str(gt_path), str(dt_path)], 7200)
    print("\n| step | wall (s) | sandbox CPU (s) | sandbox peak RSS (MB) | server peak RSS (MB) | detections/s |")
    print("|---|---|---|---|---|---|")
    for name, r in (("submit (check + store)", submitted), ("evaluate (score)", evaluated)):
        print(f"| {name} | {r['seconds']:.1f} | {r['sandbox_cpu_seconds']:.1f} | {r['sandbox_rss_mb']:,.0f} | "
              f"{r['server_rss_mb']:,.0f} | {count / r['seconds']:,.0f} |")
    print(f"| reference: hf-noisy evaluate --num-proc 1 | {reference['seconds']:.1f} | | {reference['rss_mb']:,.0f} "
          f"(process) | | {count / reference['seconds']:,.0f} |")
    board = {name: list(stats.values()) for name, stats in record["metrics"].items()}
    diff = max_diff(board, reference["numbers"], list(TOLERANCE))
    same = diff <= max(TOLERANCE.values())
    print(f"\nboard scoring / reference: {evaluated['seconds'] / reference['seconds']:.2f}x time; board "
          f"(submit + evaluate) / reference: {(submitted['seconds'] + evaluated['seconds']) / reference['seconds']:.2f}x;"
          f" max |diff| of the numbers {diff:.1e} {'ok' if same else 'MISMATCH'}")
    print(f"mask AP {record['metrics']['segm']['AP']:.4f}, boundary AP {record['metrics']['boundary']['AP']:.4f}, "
          f"box AP {record['metrics']['bbox']['AP']:.4f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
