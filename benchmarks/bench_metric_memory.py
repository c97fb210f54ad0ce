"""Memory of a streaming mask-AP metric at 100k detections: hf-noisy's InstanceSegmentationAP against torchmetrics'
MeanAveragePrecision(iou_type="segm"), same inputs, same run.

A seeded synthetic validation set is fed batch by batch as a training loop would feed it: ``--num-images`` images of
``--size`` x ``--size`` pixels, ``--detections`` predicted masks per image (bool tensors, N x H x W) and 20 ground
truths, 10 categories; boxes and ellipses of random size, the predictions jittered copies of the ground truths
plus false positives. Each contender runs in its own child process (so that each peak is its own), from the
same generator, and reports:

* ``state``: the bytes it holds once every batch is in (hf-noisy: its arrays' nbytes; torchmetrics: the RLE
  counts and tensors of its list states, Python object overhead excluded, so a lower bound);
* ``held``: resident memory after the last update minus before the first, both after ``malloc_trim`` (what the
  state costs the process, Python objects included);
* ``peak``: the child's peak RSS (the generator's own peak included: the ``data only`` row is that baseline);
* the time to update and to compute, and mask AP (the two agree: torchmetrics is given pycocotools'
  thresholds, see tests/test_metric_torchmetrics.py).

    nice -n 10 python benchmarks/bench_metric_memory.py            # 1,000 images x 100 detections = 100k

torchmetrics refuses MeanAveragePrecision without torchvision, which this project never installs; its segm
path only imports ``torchvision.ops.box_convert`` and never calls it, so that import gets a stand-in here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from hf_noisy.cli import add_option


def batches(images: int, size: int, detections: int, batch: int, seed: int = 0):
    """``(preds, target)`` per batch of ``batch`` images, torchmetrics' segm format (torch tensors)."""
    import torch

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for start in range(0, images, batch):
        preds, target = [], []
        for _ in range(min(batch, images - start)):
            def shapes(n):
                cy, cx = rng.uniform(0, size, n), rng.uniform(0, size, n)
                ry, rx = rng.uniform(4, size / 4, n), rng.uniform(4, size / 4, n)
                ellipse = rng.random(n) < 0.5
                masks = np.empty((n, size, size), bool)
                for k in range(n):
                    dy, dx = (yy - cy[k]) / ry[k], (xx - cx[k]) / rx[k]
                    masks[k] = dy**2 + dx**2 <= 1 if ellipse[k] else (abs(dy) <= 1) & (abs(dx) <= 1)
                return masks, (cy, cx, ry, rx, ellipse)

            truth, (cy, cx, ry, rx, ellipse) = shapes(20)
            labels = rng.integers(1, 11, 20)
            copies = min(20, detections)
            jitter = rng.normal(0, 0.08, (copies, 4))
            pred = np.empty((detections, size, size), bool)
            for k in range(copies):
                dy = (yy - cy[k] * (1 + jitter[k, 0])) / (ry[k] * (1 + jitter[k, 2]))
                dx = (xx - cx[k] * (1 + jitter[k, 1])) / (rx[k] * (1 + jitter[k, 3]))
                pred[k] = dy**2 + dx**2 <= 1 if ellipse[k] else (abs(dy) <= 1) & (abs(dx) <= 1)
            pred[copies:] = shapes(detections - copies)[0]
            pred_labels = np.concatenate([labels[:copies], rng.integers(1, 11, detections - copies)])
            preds.append({"masks": torch.from_numpy(pred), "scores": torch.from_numpy(rng.random(detections)).float(),
                          "labels": torch.from_numpy(pred_labels)})
            target.append({"masks": torch.from_numpy(truth), "labels": torch.from_numpy(labels)})
        yield preds, target


def _rss() -> int:
    """Resident bytes now, after a garbage collection and handing freed heap back to the system (glibc's
    ``malloc_trim``), so that what is counted is what is held, not the allocator's free pages."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _torchmetrics_map():
    import importlib.util
    import types

    from torchmetrics.detection import mean_ap

    if importlib.util.find_spec("torchvision") is None:
        def box_convert(*args, **kwargs):
            raise RuntimeError("segm evaluation converted boxes")

        ops = types.ModuleType("torchvision.ops")
        ops.box_convert = box_convert
        package = types.ModuleType("torchvision")
        package.ops = ops
        sys.modules.update({"torchvision": package, "torchvision.ops": ops})
        mean_ap._TORCHVISION_AVAILABLE = True
    thresholds = {"iou_thresholds": np.linspace(0.5, 0.95, 10).tolist(),
                  "rec_thresholds": np.linspace(0.0, 1.0, 101).tolist()}
    return mean_ap.MeanAveragePrecision(iou_type="segm", backend="pycocotools", **thresholds)


def child(contender: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    if contender == "hf-noisy":
        from hf_noisy.metrics import InstanceSegmentationAP

        metric = InstanceSegmentationAP(iou_types=("segm",))
    elif contender == "torchmetrics":
        metric = _torchmetrics_map()
    else:
        metric = None
    import pycocotools.mask  # noqa: F401  (the libraries every contender loads on its first update: not state)

    if contender == "hf-noisy":
        import faster_coco_eval.core.mask  # noqa: F401

        import hf_noisy._rle  # noqa: F401
        import hf_noisy.metrics.engine  # noqa: F401
    before, n = _rss(), 0
    start = time.perf_counter()
    for preds, target in batches(args.num_images, args.size, args.detections, args.batch):
        n += sum(len(p["scores"]) for p in preds)
        if metric is not None:
            metric.update(preds, target)
        del preds, target
    updated = time.perf_counter()
    held = _rss() - before
    out = {"contender": contender, "detections": n, "update_s": updated - start, "held": held}
    if contender == "hf-noisy":
        out["state"] = metric.state_nbytes()
        out["AP"] = metric.compute()["segm"].stats["AP"]
    elif contender == "torchmetrics":
        out["state"] = sum(len(counts) for image in metric.detection_mask for _, counts in image) + sum(
            len(counts) for image in metric.groundtruth_mask for _, counts in image) + sum(
            t.numel() * t.element_size() for name in ("detection_scores", "detection_labels", "groundtruth_labels",
                                                      "groundtruth_crowds", "groundtruth_area")
            for t in getattr(metric, name))
        out["AP"] = float(metric.compute()["map"])
    out["compute_s"] = time.perf_counter() - updated
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_option(parser, "--num-images", aliases=("--images",), type=int, default=1000)
    parser.add_argument("--detections", type=int, default=100, help="predicted masks per image")
    parser.add_argument("--size", type=int, default=320, help="image height and width")
    parser.add_argument("--batch", type=int, default=8, help="images per update")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    rows = []
    for contender in ("data only", "hf-noisy", "torchmetrics"):
        run = subprocess.run([sys.executable, __file__, "--child", contender, *(argv or sys.argv[1:])],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    mb = 2**20
    print(f"{rows[0]['detections']:,} detections, {args.num_images} images of {args.size}x{args.size}, "
          f"{args.batch} images per update")
    print(f"{'':>14}{'state MB':>10}{'B/det':>8}{'held MB':>9}{'peak MB':>9}{'update s':>10}{'compute s':>11}"
          f"{'mask AP':>9}")
    for row in rows:
        state = row.get("state")
        print(f"{row['contender']:>14}" + (f"{state / mb:>10.1f}{state / row['detections']:>8.0f}" if state else
                                           f"{'-':>10}{'-':>8}")
              + f"{row['held'] / mb:>9.1f}{row['peak'] / mb:>9.0f}{row['update_s']:>10.1f}{row['compute_s']:>11.1f}"
              + (f"{row['AP']:>9.4f}" if "AP" in row else f"{'-':>9}"))


if __name__ == "__main__":
    main()
