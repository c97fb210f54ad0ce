"""Noise-engine throughput: the paper's released generator vs hf-noisy, whole processes, same input and level.

Both sides are timed as complete processes (interpreter start-up, imports, JSON read and write included).
The reference is called as its SOURCE.md says (its CLI benchmark path crashes): ``change_boundaries_for_file``
with the level dict from its ``__main__``. The input is coco-tiny train, replicated ``--replicate`` times
(fresh image and annotation ids) so that start-up does not dominate.

    python benchmarks/bench_noise.py --level hard --replicate 10 --num-proc 1 2
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", choices=LEVELS, default="hard")
    parser.add_argument("--input", type=Path, default=SHARED / "data/coco-tiny/annotations/instances_train2017.json")
    parser.add_argument("--replicate", type=int, default=10, help="copies of the input (default 10)")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command; the median is reported")
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        sys.exit(f"reference generator not found at {REFERENCE} (set HF_NOISY_SHARED)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "input.json"
        n = replicate(args.input, args.replicate, data)
        runner = tmp / "reference_runner.py"
        runner.write_text(REFERENCE_RUNNER.format(ref=str(REFERENCE), level=LEVELS[args.level]))
        env_note = "one process, OMP/OpenCV threads left at their defaults"
        print(f"input: {args.input.name} x{args.replicate} = {n} annotations; level {args.level}; median of {args.repeats}; {env_note}")
        ref = timed([sys.executable, str(runner), str(data), str(tmp / "ref.json")], args.repeats)
        print(f"{'reference (eden500 generator)':<34}{ref:8.2f} s {n / ref:10.0f} ann/s")
        ours_1 = None
        for num_proc in args.num_proc:
            command = [sys.executable, "-m", "hf_noisy.cli", "noise", str(data), "-o", str(tmp / f"ours{num_proc}.json"),
                       "--spec", args.level, "--num-proc", str(num_proc), "--no-progress"]
            ours = timed(command, args.repeats)
            ours_1 = ours if num_proc == 1 else ours_1
            extra = f"  x{ours_1 / ours:.2f} vs --num-proc 1" if ours_1 and num_proc > 1 else ""
            print(f"{'hf-noisy --num-proc ' + str(num_proc):<34}{ours:8.2f} s {n / ours:10.0f} ann/s  ratio {ref / ours:6.2f}x{extra}")
        same = len({(tmp / f"ours{p}.json").read_bytes() for p in args.num_proc}) == 1
        print(f"outputs byte-identical across --num-proc {args.num_proc}: {same}")


if __name__ == "__main__":
    main()
