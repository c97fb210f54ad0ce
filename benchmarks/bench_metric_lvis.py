"""LVIS mask AP, box AP and Boundary AP: the lvis package + boundary-iou-api vs hf-noisy, same inputs, same numbers.

Each contender starts from the ground-truth path and the detections list and ends with the LVIS summary numbers
of ``segm``, ``bbox`` and ``boundary``:

(a) the ``lvis`` package's ``LVISEval`` (segm, bbox) + boundary-iou-api's ``lvis_instance_api`` ``LVISEval``
    (boundary; its boundaries use a process pool over all cores); ``np.float = float`` shim for both;
(b) ``hf_noisy.metrics.evaluate_lvis(gt, detections)`` (the ground truth read with ``load_coco``).

Timings are in-process wall clock, best of ``--repeat`` runs, imports excluded. The input is lvis-tiny (LVIS v0.5
val, 100 images) with the deterministic detections of the parity tests (``tests/lvis_reference.py``: perturbed
ground truth, wrong, negative, unlisted and not-exhaustive categories, one image over 300 detections),
replicated ``--replicate`` times with fresh image and annotation ids.

    python benchmarks/bench_metric_lvis.py --replicate 1 5

``--scale`` sweep under LVIS rules: lvis-tiny at LVIS submission density (300 detections per image: a jittered
copy of every ground truth, then false positives of positive, negative, not-exhaustive and unlisted categories),
replicated (default x1, x8, x34: 3,400 images, ~1M detections), segm + bbox + boundary, each tool in its own
child process from the file paths to the numbers: ``hf-noisy evaluate --num-proc 1`` and ``2``, faster-coco-eval
(``lvis_style``) and the lvis package + boundary-iou-api (skipped above ``--reference-max`` / ``--faster-max``
detections); time, peak RSS, detections/s, ratios and a fit per detection.

    nice python benchmarks/bench_metric_lvis.py --scale 1 8 34

Target: an LVIS-val-size submission (20k images, 6M detections) in <= 4 GB peak RSS (the fit's slope times 6M
plus its intercept; run it with ``--scale 200``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))
GT = SHARED / "data" / "lvis-tiny" / "lvis_val_100.json"
TOLERANCE = {"segm": 1e-9, "bbox": 1e-9, "boundary": 1e-6}

sys.path.insert(0, str(REPO / "tests"))
from lvis_reference import boundary_iou_api_path, make_detections, reference_numbers  # noqa: E402


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


def run_reference(gt_path: str, detections: list) -> dict[str, list[float]]:
    return {name: list(values.values()) for name, values in reference_numbers(gt_path, detections).items()}


def run_ours(gt_path: str, detections: list) -> dict[str, list[float]]:
    from hf_noisy.coco import load_coco
    from hf_noisy.metrics import evaluate_lvis

    results = evaluate_lvis(load_coco(gt_path, allow_empty_masks=True), detections)
    return {name: list(result.stats.values()) for name, result in results.items()}


def run_cli(gt_path: str, dt_path: str, num_proc: str) -> dict[str, list[float]]:
    """``hf-noisy evaluate --json`` (LVIS rules, detected from the file): its numbers."""
    import contextlib
    import io

    from hf_noisy.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["evaluate", "--annotations", gt_path, "--predictions", dt_path, "--num-proc", num_proc, "--json"])
    return {name: list(stats.values()) for name, stats in json.loads(out.getvalue()).items()}


def run_cli_1(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    return run_cli(gt_path, dt_path, "1")


def run_cli_2(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    return run_cli(gt_path, dt_path, "2")


def run_reference_files(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    return run_reference(gt_path, json.loads(Path(dt_path).read_text()))


def run_faster(gt_path: str, dt_path: str) -> dict[str, list[float]]:
    """faster-coco-eval's ``COCOeval_faster(lvis_style=True)`` at 300 detections per image; the LVIS summary
    numbers computed from its precision and recall as hf-noisy does."""
    import numpy as np
    from faster_coco_eval import COCO, COCOeval_faster

    from hf_noisy.metrics import LVIS

    out = {}
    for iou_type in ("segm", "bbox", "boundary"):
        gt = COCO(gt_path)
        ev = COCOeval_faster(gt, gt.loadRes(dt_path), iou_type, print_function=lambda *_: None, lvis_style=True)
        ev.params.maxDets = [300]
        ev.evaluate(); ev.accumulate()
        frequency = {c["id"]: c.get("frequency") for c in gt.dataset["categories"]}
        stats = LVIS.summarize(np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"]),
                               np.asarray(ev.params.iouThrs), [frequency[c] for c in ev.params.catIds])
        out[iou_type] = list(stats.values())
    return out


def lvis_submission() -> tuple[dict, list]:
    """lvis-tiny (validated) and detections at LVIS submission density: 300 per image, a jittered copy of every
    ground truth, then false positives of positive, negative, not-exhaustive and unlisted categories."""
    from _sweep import submission

    from hf_noisy.coco import load_coco

    gt = load_coco(GT, allow_empty_masks=True)
    categories = sorted(c["id"] for c in gt["categories"])

    def categories_of(image: dict, anns: list) -> list:
        listed = {a["category_id"] for a in anns} | set(image.get("neg_category_ids", ()))
        return sorted(listed | set(image.get("not_exhaustive_category_ids", ())) | set(categories[:5]))

    return gt, submission(gt, 300, seed=0, categories_of=categories_of)


def sweep(scales: list[int], reference_max: int, faster_max: int, timeout: float, only: list[str]) -> bool:
    """The ``--scale`` sweep (module docstring)."""
    from _sweep import sweep as run_sweep

    gt, detections = lvis_submission()
    return run_sweep(gt, detections, scales, ("lvis + boundary-iou-api", "run_reference_files"),
                     (faster_max, reference_max), only, Path(__file__).stem, list(TOLERANCE), max(TOLERANCE.values()),
                     timeout)


def best_time(fn, gt_path: str, detections: list, repeat: int) -> tuple[float, dict]:
    best, numbers = float("inf"), {}
    for _ in range(repeat):
        start = time.perf_counter()
        numbers = fn(gt_path, detections)
        best = min(best, time.perf_counter() - start)
    return best, numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicate", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="+", help="the sweep: replication factors (e.g. 1 8 34)")
    parser.add_argument("--reference-max", type=int, default=40_000,
                        help="sweep: skip the lvis package + boundary-iou-api above this many detections")
    parser.add_argument("--faster-max", type=int, default=300_000,
                        help="sweep: skip faster-coco-eval above this many detections")
    parser.add_argument("--timeout", type=float, default=3600, help="sweep: seconds per tool and scale")
    parser.add_argument("--tools", nargs="+", help="sweep: only these tools (names as in the table)")
    args = parser.parse_args()
    if not GT.is_file() or not boundary_iou_api_path().is_dir():
        print(f"shared data not found under {SHARED} (set HF_NOISY_SHARED)", file=sys.stderr)
        return 2
    if args.scale:
        return 0 if sweep(args.scale, args.reference_max, args.faster_max, args.timeout, args.tools) else 1
    from hf_noisy.coco import load_coco

    gt = json.loads(GT.read_text())
    detections = make_detections(load_coco(GT))
    ok = True
    for times in args.replicate:
        big_gt, big_dets = replicate(gt, detections, times)
        with tempfile.TemporaryDirectory() as tmp:
            gt_path = str(Path(tmp) / "gt.json")
            Path(gt_path).write_text(json.dumps(big_gt))
            repeat = 1 if times > 2 else args.repeat
            timings = {name: best_time(fn, gt_path, big_dets, repeat)
                       for name, fn in (("lvis + boundary-iou-api", run_reference), ("hf-noisy", run_ours))}
        reference = timings["lvis + boundary-iou-api"][1]
        print(f"\nx{times}: {len(big_gt['images'])} images, {len(big_gt['annotations'])} GT, "
              f"{len(big_dets)} detections (segm + bbox + boundary, best of {repeat})")
        ours = timings["hf-noisy"][0]
        for name, (seconds, numbers) in timings.items():
            diffs = {t: max(abs(a - b) for a, b in zip(numbers[t], reference[t])) for t in TOLERANCE}
            same = all(diffs[t] <= tol for t, tol in TOLERANCE.items())
            ok &= same
            print(f"  {name:<26}{seconds:8.3f} s   hf-noisy is {seconds / ours:5.1f}x faster   max |diff| vs (a) "
                  + ", ".join(f"{t} {d:.1e}" for t, d in diffs.items()) + f"   {'ok' if same else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
