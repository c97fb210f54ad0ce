"""The --scale sweep both metric benchmarks share: submissions at submission density, replicated, each tool run in
its own child process (wall time with start-up, peak RSS of the process and of its largest worker), side by side,
numbers checked against one another, and a least-squares fit of time and memory per detection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: Child runner: ``python _sweep.py TOOL_MODULE TOOL_FUNCTION GT DT OUT`` calls ``function(gt, dt)`` and writes
#: ``{"numbers": ..., "rss_kb": ..., "workers_rss_kb": ...}`` to ``OUT``: its own peak RSS (``VmHWM``; Linux's
#: ``ru_maxrss`` of a process carries over the RSS its parent had when it forked it, here the benchmark's) and
#: its largest worker's (``RUSAGE_CHILDREN``).
RUNNER = r"""
import importlib, json, resource, sys
sys.path.insert(0, sys.argv[1])
module = importlib.import_module(sys.argv[2])
numbers = getattr(module, sys.argv[3])(*sys.argv[4:-1])
with open("/proc/self/status") as status:  # VmHWM: this process's own peak (ru_maxrss also counts the RSS of
    own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))  # the parent that forked it)
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[-1], "w") as f:
    json.dump({"numbers": numbers, "rss_kb": own, "workers_rss_kb": workers}, f)
"""


def shifted(crop, image: dict, dx: int, dy: int):
    """``crop`` moved by ``(dx, dy)`` pixels, clipped to the image; ``None`` when nothing is left."""
    from hf_noisy.masks import Crop

    mask, x0, y0 = crop.mask, crop.x0 + dx, crop.y0 + dy
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + mask.shape[1] - image["width"]), max(0, y0 + mask.shape[0] - image["height"])
    mask = mask[top:max(top, mask.shape[0] - bottom), left:max(left, mask.shape[1] - right)]
    if mask.size == 0:
        return None
    return Crop(np.ascontiguousarray(mask), x0 + left, y0 + top, crop.image_size)


def submission(gt: dict, per_image: int, seed: int, categories_of: Callable[[dict, list], list] | None = None) -> list:
    """Detections at submission density: per image, a jittered copy of every ground-truth mask, then false
    positives up to ``per_image`` (ground-truth masks moved far, with their own or another category of
    ``categories_of(image, anns)``, default: the image's categories); scores in [0, 1), two decimals (ties)."""
    from hf_noisy.masks import Crop

    rng = np.random.default_rng(seed)
    by_image: dict = {image["id"]: [] for image in gt["images"]}
    for ann in gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    out = []
    for image in gt["images"]:
        anns = by_image[image["id"]]
        if not anns:
            continue
        crops = [Crop.from_segmentation(a["segmentation"], image["height"], image["width"]) for a in anns]
        choices = categories_of(image, anns) if categories_of else sorted({a["category_id"] for a in anns})
        for k in range(per_image):
            j = k % len(anns)
            spread = max(1, int(0.1 * np.sqrt(max(crops[j].area, 1)))) * (1 if k < len(anns) else 6)
            dx, dy = (int(v) for v in rng.integers(-spread, spread + 1, 2))
            moved = shifted(crops[j], image, dx, dy) if crops[j].mask.size else None
            encoded = moved.encode() if moved is not None else None
            if encoded is None or not encoded.area:
                continue
            category = anns[j]["category_id"] if k < len(anns) or rng.random() < 0.5 else int(rng.choice(choices))
            out.append({"image_id": image["id"], "category_id": category, "segmentation": encoded.rle,
                        "bbox": encoded.bbox, "score": round(float(rng.random()), 2)})
    return out


def write_replicated(gt: dict, detections: list, times: int, folder: Path) -> tuple[Path, Path, int, int]:
    """``times`` copies of the images, annotations and detections (fresh ids), written as ``gt.json`` and
    ``dt.json`` in ``folder`` without holding the copies in memory. Returns the paths, images and detections."""
    import orjson

    image_step = max(image["id"] for image in gt["images"]) + 1
    ann_step = max(ann["id"] for ann in gt["annotations"]) + 1
    big = {**gt, "images": [{**image, "id": image["id"] + r * image_step} for r in range(times) for image in gt["images"]],
           "annotations": [{**ann, "id": ann["id"] + r * ann_step, "image_id": ann["image_id"] + r * image_step}
                           for r in range(times) for ann in gt["annotations"]]}
    gt_path, dt_path = folder / "gt.json", folder / "dt.json"
    gt_path.write_bytes(orjson.dumps(big))
    with open(dt_path, "wb") as f:
        f.write(b"[")
        for r in range(times):
            chunk = b",".join(orjson.dumps({**d, "image_id": d["image_id"] + r * image_step}) for d in detections)
            f.write((b"," if r else b"") + chunk)
        f.write(b"]")
    return gt_path, dt_path, len(big["images"]), len(detections) * times


def run_child(module_dir: Path, module: str, function: str, args: list[str], timeout: float) -> dict:
    """One tool in its own process: ``{"seconds", "rss_mb", "workers_rss_mb", "numbers"}`` or ``{"error"}``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", RUNNER, str(module_dir), module, function, *args, str(out)],
                                  capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"over {timeout:.0f} s"}
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:120]}
        result = json.loads(out.read_text())
    return {"seconds": seconds, "rss_mb": result["rss_kb"] / 1024, "workers_rss_mb": result["workers_rss_kb"] / 1024,
            "numbers": result["numbers"]}


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``y = a + b * n`` over ``(n, y)``: ``(a, b)``."""
    n = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    if len(points) < 2 or np.ptp(n) == 0:
        return float(y.mean()) if len(y) else 0.0, 0.0
    b, a = np.polyfit(n, y, 1)
    return float(a), float(b)


def max_diff(a: dict, b: dict, types: list[str]) -> float:
    return max(max(abs(x - y) for x, y in zip(a[t], b[t])) for t in types)


def header(ours: str, single: str) -> None:
    print(f"| scale | images | detections | tool | time (s) | peak RSS (MB) | largest worker (MB) | detections/s | "
          f"time / {ours} | time / {single} | max diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)


def print_row(row: dict, tools: list[str], ours: str, single: str, types: list[str], tolerance: float) -> bool:
    """The table lines of one scale (time ratios: the tool's time over ``ours``' and over ``single``'s);
    ``False`` on a numbers mismatch (against ``ours``)."""
    ok = True
    base, one = row["tools"].get(ours, {}), row["tools"].get(single, {})
    for tool in tools:
        r = row["tools"].get(tool)
        if r is None:
            continue
        if "error" in r:
            print(f"| x{row['times']} | {row['images']} | {row['detections']} | {tool} | {r['error']} | | | | | | |")
            continue
        ratio = f"{r['seconds'] / base['seconds']:.1f}x" if "seconds" in base and tool != ours else ""
        ratio_one = f"{r['seconds'] / one['seconds']:.1f}x" if "seconds" in one and tool not in (ours, single) else ""
        reference = base if "numbers" in base else one
        diff = max_diff(r["numbers"], reference["numbers"], types) if "numbers" in reference else 0.0
        ok &= diff <= tolerance
        print(f"| x{row['times']} | {row['images']} | {row['detections']} | {tool} | {r['seconds']:.1f} | "
              f"{r['rss_mb']:.0f} | {r['workers_rss_mb']:.0f} | {row['detections'] / r['seconds']:,.0f} | "
              f"{ratio} | {ratio_one} | {diff:.1e}{'' if diff <= tolerance else ' MISMATCH'} |", flush=True)
    return ok


def print_fits(rows: list[dict], tools: list[str]) -> None:
    """Least-squares time and peak RSS per detection of each tool measured at two scales or more."""
    print()
    for tool in tools:
        done = [(row["detections"], row["tools"][tool]) for row in rows if "seconds" in row["tools"].get(tool, {})]
        if len(done) >= 2:
            a, b = fit([(n, r["seconds"]) for n, r in done])
            c, d = fit([(n, r["rss_mb"]) for n, r in done])
            print(f"fit {tool:<30} time = {a:6.2f} s + {b * 1e6:7.1f} us/detection; "
                  f"peak RSS = {c:6.0f} MB + {d * 1024:6.3f} KB/detection")


def sweep(gt: dict, detections: list, scales: list[int], reference: tuple[str, str], maxima: tuple[int, int],
          only: list[str] | None, module: str, types: list[str], tolerance: float, timeout: float) -> bool:
    """Each scale: replicate, run every tool in its own process -- hf-noisy with 2 and 1 processes
    (``run_cli_2``, ``run_cli_1`` of ``module``), faster-coco-eval (``run_faster``) and ``reference`` (its table
    name and function), those two skipped above ``maxima`` detections; ``only``: just these tools -- and print
    its table lines as soon as they are measured; then the fits."""
    name, function = reference
    tools = {"hf-noisy --num-proc 2": "run_cli_2", "hf-noisy --num-proc 1": "run_cli_1",
             "faster-coco-eval": "run_faster", name: function}
    tools = {tool: run for tool, run in tools.items() if not only or tool in only}
    limits = {"faster-coco-eval": maxima[0], name: maxima[1]}
    here = Path(__file__).resolve().parent
    ours, single = "hf-noisy --num-proc 2", "hf-noisy --num-proc 1"
    header(ours, single)
    rows, ok = [], True
    for times in scales:
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, dt_path, images, count = write_replicated(gt, detections, times, Path(tmp))
            row = {"times": times, "images": images, "detections": count, "tools": {}}
            for name, function in tools.items():
                if count <= limits.get(name, count):
                    row["tools"][name] = run_child(here, module, function, [str(gt_path), str(dt_path)], timeout)
            rows.append(row)
            ok &= print_row(row, list(tools), ours, single, types, tolerance)
    print_fits(rows, list(tools))
    return ok
