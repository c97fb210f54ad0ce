"""Noise-engine throughput: the paper's released generator vs hf-noisy, whole processes, same input and level.

Both sides are timed as complete processes (interpreter start-up, imports, JSON read and write included):
wall seconds, and CPU seconds (user + system of the process and its workers; the CPU ratio is the speed-up per
core, and the steadier figure on a shared machine).
The reference is called as its SOURCE.md says (its CLI benchmark path crashes): ``change_boundaries_for_file``
with the level dict from its ``__main__``. The input is coco-tiny train, replicated ``--replicate`` times
(fresh image and annotation ids) so that start-up does not dominate.

    python benchmarks/bench_noise.py --level hard --replicate 10 --num-proc 1 2 --cpus 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference" / "noisy-labels-instance-segmentation"
LEVELS = {  # the reference's own Benchmarks table
    "easy": {"approximation": [0.2, 5], "localization": [0.2, 2], "rand": [0.2, 3], "flip_class": 0.2},
    "medium": {"approximation": [0.25, 10], "localization": [0.25, 3], "rand": [0.25, 5], "flip_class": 0.3},
    "hard": {"approximation": [0.3, 15], "localization": [0.3, 4], "rand": [0.3, 7], "flip_class": 0.4},
}
REFERENCE_RUNNER = """
import json, sys
sys.path.insert(0, {ref!r})
from pycocotools.coco import COCO
import noise_annotations
path, out = sys.argv[1], sys.argv[2]
with open(path) as f:
    ann = json.load(f)
noise_annotations.change_boundaries_for_file(ann, COCO(path), {level!r}, seed=1)
with open(out, "w") as f:
    json.dump(ann, f)
"""


def replicate(source: Path, times: int, target: Path) -> int:
    data = json.loads(source.read_text())
    images, annotations = [], []
    image_step = max(i["id"] for i in data["images"]) + 1
    ann_step = max(a["id"] for a in data["annotations"]) + 1
    for k in range(times):
        images += [{**i, "id": i["id"] + k * image_step} for i in data["images"]]
        annotations += [
            {**a, "id": a["id"] + k * ann_step, "image_id": a["image_id"] + k * image_step} for a in data["annotations"]
        ]
    target.write_text(json.dumps({**data, "images": images, "annotations": annotations}))
    return len(annotations)


def timed(commands: dict[str, tuple[list[str], set[int] | None]], repeats: int,
          env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Median wall seconds and median CPU seconds (user + system, the process and its workers) per command; one
    untimed warm-up each (it writes the byte-code caches), then the commands take turns so that a drift of the
    machine's speed hits them alike. A command with a CPU set runs pinned to it. On a shared machine the CPU
    seconds are the steadier figure (other work slows wall time more than it adds CPU time)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for round_ in range(repeats + 1):
        for name, (command, cpus) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                           preexec_fn=(lambda cpus=cpus: os.sched_setaffinity(0, cpus)) if cpus else None)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if round_:
                times[name].append((time.perf_counter() - start, cpu))
    return {name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", choices=LEVELS, default="hard")
    parser.add_argument("--input", type=Path, default=SHARED / "data/coco-tiny/annotations/instances_train2017.json")
    parser.add_argument("--replicate", type=int, default=10, help="copies of the input (default 10)")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command; the median is reported")
    parser.add_argument("--cpus", type=int, nargs="+", default=None,
                        help="pin: one-process runs (and the reference) to the first CPU given, --num-proc N to the "
                             "first N (default: not pinned)")
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        sys.exit(f"reference generator not found at {REFERENCE} (set HF_NOISY_SHARED)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "input.json"
        n = replicate(args.input, args.replicate, data)
        runner = tmp / "reference_runner.py"
        runner.write_text(REFERENCE_RUNNER.format(ref=str(REFERENCE), level=LEVELS[args.level]))
        # Both sides run as users run them: with byte-code caches (kept in the temporary folder).
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])  # this checkout's hf-noisy
        pins = (lambda count: set(args.cpus[:count])) if args.cpus else (lambda count: None)
        commands = {"reference": ([sys.executable, str(runner), str(data), str(tmp / "ref.json")], pins(1))}
        for num_proc in args.num_proc:
            commands[f"--num-proc {num_proc}"] = (
                [sys.executable, "-m", "hf_noisy.cli", "noise", str(data), "-o", str(tmp / f"ours{num_proc}.json"),
                 "--spec", args.level, "--num-proc", str(num_proc), "--no-progress", "--overwrite"],
                pins(num_proc),
            )
        pinned = f"pinned to CPUs {args.cpus}" if args.cpus else "not pinned"
        print(f"input: {args.input.name} x{args.replicate} = {n} annotations; level {args.level}; "
              f"median of {args.repeats} interleaved runs after a warm-up; whole processes; {pinned}")
        medians = timed(commands, args.repeats, env)
        ref, ref_cpu = medians["reference"]
        print(f"{'':<34}{'wall':>8}   {'ann/s':>10}  {'ratio':>7}  {'CPU':>8}   {'ann/CPU-s':>10}  {'ratio':>7}")
        print(f"{'reference (eden500 generator)':<34}{ref:8.2f} s {n / ref:10.0f}  {'':>7}  {ref_cpu:8.2f} s "
              f"{n / ref_cpu:10.0f}")
        for num_proc in args.num_proc:
            ours, ours_cpu = medians[f"--num-proc {num_proc}"]
            print(f"{'hf-noisy --num-proc ' + str(num_proc):<34}{ours:8.2f} s {n / ours:10.0f}  {ref / ours:6.2f}x  "
                  f"{ours_cpu:8.2f} s {n / ours_cpu:10.0f}  {ref_cpu / ours_cpu:6.2f}x")
        same = len({(tmp / f"ours{p}.json").read_bytes() for p in args.num_proc}) == 1
        print(f"outputs byte-identical across --num-proc {args.num_proc}: {same}")


if __name__ == "__main__":
    main()
