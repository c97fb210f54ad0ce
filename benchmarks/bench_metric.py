"""Mask AP + Boundary AP: pycocotools + boundary-iou-api vs faster-coco-eval vs hf-noisy, same inputs, same numbers.

Each contender starts from the two file paths (ground truth, COCO results) and ends with the 12 summary numbers
of ``segm`` and ``boundary``, the way a user runs it today:

(a) pycocotools ``COCOeval(segm)`` + boundary-iou-api ``COCOeval(boundary)`` (its ``COCO(get_boundary=True)``,
    a process pool over all cores; ``np.float = float`` shim as its SOURCE.md says);
(b) faster-coco-eval ``COCOeval_faster`` for ``segm`` and ``boundary``;
(c) ``hf_noisy.metrics.evaluate_coco(..., ("segm", "boundary"))``.

Timings are in-process wall clock, best of ``--repeat`` runs, imports excluded. The input is coco-tiny val and
its detection vectors, replicated ``--replicate`` times with fresh image and annotation ids.

    python benchmarks/bench_metric.py --replicate 1 20

``--scale`` sweep: coco-tiny val at submission density (a jittered copy of every ground truth plus false
positives, 100 detections per image), replicated x1, x21, x63 (x63: 5,040 images, ~500k detections, the size
of COCO val), each tool in its own child process from the file paths to the numbers (start-up and imports
included): ``hf-noisy evaluate --iou-types segm,boundary --num-proc 1`` and ``2``, faster-coco-eval and
pycocotools + boundary-iou-api (skipped above ``--reference-max`` / ``--faster-max`` detections, by default
past x63). It prints time, peak RSS (the process; its largest worker apart), detections/s, the ratios and a fit
of time and memory per detection. Run it with ``nice`` on a shared machine, and say so with the numbers.

    nice python benchmarks/bench_metric.py --scale 1 21 63

Targets (2 cores): >= 10x pycocotools + boundary-iou-api and >= 5x faster-coco-eval at x1 and x63 with
``--num-proc 2``, >= 3x with one process; the COCO-val-size run (x63) in <= 600 MB peak RSS, <= 1 KB per
detection.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))
GT = SHARED / "data" / "coco-tiny" / "annotations" / "instances_val2017.json"
DETECTIONS = SHARED / "data" / "vectors" / "eval_val2017_detections.json"
BOUNDARY_IOU_API = SHARED / "reference" / "boundary-iou-api"
TOLERANCE = {"segm": 1e-9, "boundary": 1e-6}


def replicate(gt: dict, detections: list, times: int) -> tuple[dict, list]:
    """``times`` copies of every image, its annotations and its detections, with fresh ids."""
    image_step = max(image["id"] for image in gt["images"]) + 1
    ann_step = max(ann["id"] for ann in gt["annotations"]) + 1
    images, anns, dets = [], [], []
    for r in range(times):
        images += [{**image, "id": image["id"] + r * image_step} for image in gt["images"]]
        anns += [{**ann, "id": ann["id"] + r * ann_step, "image_id": ann["image_id"] + r * image_step}
                 for ann in gt["annotations"]]
        dets += [{**det, "image_id": det["image_id"] + r * image_step} for det in detections]
    return {**gt, "images": images, "annotations": anns}, dets


def run_reference(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sys.path.insert(0, str(BOUNDARY_IOU_API))
    from boundary_iou.coco_instance_api.coco import COCO as BCOCO
    from boundary_iou.coco_instance_api.cocoeval import COCOeval as BCOCOeval

    from hf_noisy.metrics import DEFAULT_DILATION_RATIO

    np.float = float  # boundary-iou-api still uses the alias numpy 1.24 removed
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = COCOeval(gt, gt.loadRes(dt_path), "segm")
        ev.evaluate(); ev.accumulate(); ev.summarize()
        out["segm"] = list(ev.stats)
        gt = BCOCO(gt_path, get_boundary=True, dilation_ratio=DEFAULT_DILATION_RATIO)
        ev = BCOCOeval(gt, gt.loadRes(dt_path), iouType="boundary", dilation_ratio=DEFAULT_DILATION_RATIO)
        ev.evaluate(); ev.accumulate(); ev.summarize()
        out["boundary"] = list(ev.stats)
    return out


def run_faster(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    from faster_coco_eval import COCO, COCOeval_faster

    out = {}
    for iou_type in ("segm", "boundary"):
        gt = COCO(gt_path)
        ev = COCOeval_faster(gt, gt.loadRes(dt_path), iou_type, print_function=lambda *_: None)
        ev.evaluate(); ev.accumulate(); ev.summarize()
        out[iou_type] = list(ev.stats[:12])
    return out


def run_ours(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    from hf_noisy.coco import load_coco
    from hf_noisy.metrics import evaluate_coco, load_predictions

    results = evaluate_coco(load_coco(gt_path, allow_empty_masks=True), load_predictions(dt_path), ("segm", "boundary"))
    return {name: list(result.stats.values()) for name, result in results.items()}


def run_cli(gt_path: str, dt_path: str, num_proc: str) -> dict[str, list[float]]:
    """``hf-noisy evaluate --iou-types segm,boundary --json`` (the sweep's hf-noisy), its numbers."""
    from hf_noisy.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["evaluate", "--annotations", gt_path, "--predictions", dt_path, "--iou-types", "segm,boundary",
              "--num-proc", num_proc, "--json"])
    return {name: list(stats.values()) for name, stats in json.loads(out.getvalue()).items()}


def run_cli_1(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    return run_cli(gt_path, dt_path, "1")


def run_cli_2(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    return run_cli(gt_path, dt_path, "2")


def sweep(scales: list[int], reference_max: int, faster_max: int, timeout: float, only: list[str]) -> bool:
    """The ``--scale`` sweep (module docstring)."""
    from _sweep import submission
    from _sweep import sweep as run_sweep

    from hf_noisy.coco import load_coco

    gt = load_coco(GT, allow_empty_masks=True)
    detections = submission(gt, 100, seed=0)
    return run_sweep(gt, detections, scales, ("pycocotools+boundary-iou-api", "run_reference"),
                     (faster_max, reference_max), only, Path(__file__).stem, list(TOLERANCE), max(TOLERANCE.values()),
                     timeout)


def best_time(fn, gt_path: str, dt_path: str, repeat: int) -> tuple[float, dict]:
    best, numbers = float("inf"), {}
    for _ in range(repeat):
        start = time.perf_counter()
        numbers = fn(gt_path, dt_path)
        best = min(best, time.perf_counter() - start)
    return best, numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicate", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="+", help="the sweep: replication factors (e.g. 1 21 63)")
    parser.add_argument("--reference-max", type=int, default=600_000,
                        help="sweep: skip pycocotools + boundary-iou-api above this many detections "
                             "(x63, 504k: about 6 min)")
    parser.add_argument("--faster-max", type=int, default=600_000,
                        help="sweep: skip faster-coco-eval above this many detections")
    parser.add_argument("--timeout", type=float, default=3600, help="sweep: seconds per tool and scale")
    parser.add_argument("--tools", nargs="+", help="sweep: only these tools (names as in the table)")
    args = parser.parse_args()
    if not GT.is_file() or not BOUNDARY_IOU_API.is_dir():
        print(f"shared data not found under {SHARED} (set HF_NOISY_SHARED)", file=sys.stderr)
        return 2
    if args.scale:
        return 0 if sweep(args.scale, args.reference_max, args.faster_max, args.timeout, args.tools) else 1
    gt, detections = json.loads(GT.read_text()), json.loads(DETECTIONS.read_text())
    ok = True
    for times in args.replicate:
        big_gt, big_dets = replicate(gt, detections, times)
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, dt_path = str(Path(tmp) / "gt.json"), str(Path(tmp) / "dt.json")
            Path(gt_path).write_text(json.dumps(big_gt))
            Path(dt_path).write_text(json.dumps(big_dets))
            repeat = 1 if times > 5 else args.repeat
            timings = {name: best_time(fn, gt_path, dt_path, repeat)
                       for name, fn in (("pycocotools+boundary-iou-api", run_reference),
                                        ("faster-coco-eval", run_faster), ("hf-noisy", run_ours))}
        reference = timings["pycocotools+boundary-iou-api"][1]
        print(f"\nx{times}: {len(big_gt['images'])} images, {len(big_gt['annotations'])} GT, {len(big_dets)} detections "
              f"(segm + boundary, best of {repeat})")
        ours = timings["hf-noisy"][0]
        for name, (seconds, numbers) in timings.items():
            diff = max(max(abs(a - b) for a, b in zip(numbers[t], reference[t])) for t in TOLERANCE)
            same = all(max(abs(a - b) for a, b in zip(numbers[t], reference[t])) <= tol for t, tol in TOLERANCE.items())
            ok &= same
            print(f"  {name:<30}{seconds:8.3f} s   hf-noisy is {seconds / ours:5.1f}x faster   "
                  f"max |diff| vs (a) {diff:.1e} {'ok' if same else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
