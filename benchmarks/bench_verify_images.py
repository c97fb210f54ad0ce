"""What checking the images costs a build: COCO-N built with and without the full decode, side by side.

    python benchmarks/bench_verify_images.py [COCO_ROOT] [--num-proc N] [--levels clean,easy,medium,hard] [--repeat R]

COCO_ROOT defaults to ../shared/data/coco-tiny. Each build goes to a temporary folder; the builds alternate
(off, on, off, on, ...) so that a loaded machine slows both alike. Prints one JSON line:

* ``seconds_without`` / ``seconds_with``: best wall time of a build with ``verify_images=False`` (each image's
  header size is still checked) and with ``verify_images=True`` (the default: every image fully decoded).
* ``ratio``: ``seconds_with / seconds_without``, the build's slowdown from the decode.
* ``decode_seconds_per_1000_images``: the decode pass alone (:meth:`SourceSplit.check_images`), per 1,000 images.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hf_noisy.hub import build_benchmark
from hf_noisy.sources import read_coco_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("coco_root", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/coco-tiny"))
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--levels", default="clean,easy,medium,hard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    levels = args.levels.split(",")
    best = {False: float("inf"), True: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for verify in (False, True):
                out = Path(tmp) / f"{verify}-{r}"
                start = time.perf_counter()
                build_benchmark("coco-n", out, coco_root=args.coco_root, configs=levels, num_proc=args.num_proc,
                                verify_images=verify)
                best[verify] = min(best[verify], time.perf_counter() - start)
    splits = [read_coco_split(args.coco_root, split) for split in ("train", "validation")]
    images = sum(len(split.image_paths) for split in splits)
    start = time.perf_counter()
    for split in splits:
        split.check_images(decode=True, num_proc=args.num_proc)
    decode = time.perf_counter() - start
    print(json.dumps({"images": images, "num_proc": args.num_proc, "levels": levels,
                      "seconds_without": round(best[False], 3), "seconds_with": round(best[True], 3),
                      "ratio": round(best[True] / best[False], 3),
                      "decode_seconds_per_1000_images": round(1000 * decode / images, 3)}))


if __name__ == "__main__":
    main()
