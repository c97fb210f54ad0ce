"""Noise and build at the size users run: COCO-train-size and LVIS-train-size annotation files.

The files are made by replicating a real one with fresh image and annotation ids and the same image files:
coco-tiny train (80 images, 705 annotations) to COCO train's 118,287 images (about 1.04M annotations), and
lvis-tiny (100 images, 977 annotations; LVIS's own polygons) to about 100k images, topped up with second copies
of annotations on the same images to LVIS v1 train's 1.27M annotations. Each file is written a copy at a time.

``build`` runs ``build coco-n`` on a COCO root whose train file is the COCO-size file, and ``build lvis-n``
on an LVIS root whose train file is the LVIS-size one (lvis-tiny as val; stand-in image files of the right
sizes, since ``--image-storage none`` reads only their headers), both with ``--image-storage none --no-verify-images``.

Each command runs as users run it, a whole ``python -m hf_noisy.cli`` process, and is measured from outside:
wall seconds; CPU seconds (user + system, the process and its workers, ``RUSAGE_CHILDREN``: less sensitive than
wall time to other work on a shared machine); peak RSS as the largest sum, over the processes alive at the
same time, of each one's own ``VmHWM`` (the tool's and its live workers', read from ``/proc`` every
:data:`POLL_SECONDS`; a worker's figure includes the pages it shares with the tool after a fork, so the sum is
an upper bound; a pool that has ended, such as the image-size check's before the build's, no longer counts);
throughput in annotations per second of wall
time. The released generator (pycocotools + OpenCV, one process) runs on a slice of about 10k annotations of
the same file in the same run, with hf-noisy on the same slice beside it.

    python benchmarks/bench_scale_data.py --size coco lvis --num-proc 1 2 --commands noise build
    python benchmarks/bench_scale_data.py --size coco --num-images 10000 --commands noise   # a small replica
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from hf_noisy.cli import add_option

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_noise import LEVELS, REFERENCE, REFERENCE_RUNNER, SHARED  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: seconds between two reads of the processes' ``VmHWM``
POLL_SECONDS = 0.1
#: (source file under the shared data, images, annotations) of each size; ``None``: as many as the copies give
SIZES = {
    "coco": ("data/coco-tiny/annotations/instances_train2017.json", 118_287, None),
    "lvis": ("data/lvis-tiny/lvis_val_100.json", 100_170, 1_270_141),
}
SLICE_ANNOTATIONS = 10_000


def replicate(source: Path, images: int, annotations: int | None, target: Path) -> tuple[int, int]:
    """Write ``target``: ``source``'s images copied (fresh ids, same files) up to ``images``, their annotations
    copied with them (fresh ids), then, up to ``annotations``, second copies of annotations on the same images.
    Returns the images and annotations written."""
    data = orjson.loads(source.read_bytes())
    image_step = max(i["id"] for i in data["images"]) + 1
    ann_step = max(a["id"] for a in data["annotations"]) + 1
    n_images = len(data["images"])
    copies = -(-images // n_images)
    written_images = written_annotations = 0
    with open(target, "wb") as out:
        out.write(b"{")
        for key, value in data.items():
            if key not in ("images", "annotations"):
                out.write(orjson.dumps(key) + b":" + orjson.dumps(value) + b",")
        out.write(b'"images":[')
        for k in range(copies):
            part = data["images"][: images - k * n_images]
            copied = (orjson.dumps({**i, "id": i["id"] + k * image_step}) for i in part)
            out.write((b"," if k else b"") + b",".join(copied))
            written_images += len(part)
        out.write(b'],"annotations":[')
        extra_round = copies  # id offset of the top-up copies
        for k in range(copies):
            kept = {i["id"] for i in data["images"][: images - k * n_images]}
            part = [a for a in data["annotations"] if a["image_id"] in kept]
            out.write((b"," if k else b"") + b",".join(
                orjson.dumps({**a, "id": a["id"] + k * ann_step, "image_id": a["image_id"] + k * image_step})
                for a in part))
            written_annotations += len(part)
        k = 0
        while annotations is not None and written_annotations < annotations:
            part = data["annotations"][: annotations - written_annotations]
            round_ = extra_round + k
            out.write(b"," + b",".join(
                orjson.dumps({**a, "id": a["id"] + round_ * ann_step, "image_id": a["image_id"] + k * image_step})
                for a in part))
            written_annotations += len(part)
            k += 1
        out.write(b"]}")
    return written_images, written_annotations


def slice_file(source: Path, count: int, target: Path) -> int:
    """The first images of ``source`` holding about ``count`` annotations, as a COCO file; returns how many.
    ``source`` is read as a stream (hf-noisy's own scanner), never whole."""
    from hf_noisy.coco_stream import parse_value, scan_coco
    from hf_noisy.noise.engine import chunk_ranges

    layout = scan_coco(source)
    head = {key: parse_value(raw) for key, raw in layout.head.items()}
    per_image: dict[int, int] = {}
    annotations = []
    with open(source, "rb") as handle:
        for start, stop in chunk_ranges(len(layout), 1):
            for ann in layout.read_annotations(start, stop, handle):
                per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
    kept, total = set(), 0
    for image in head["images"]:
        if total >= count:
            break
        kept.add(image["id"])
        total += per_image.get(image["id"], 0)
    with open(source, "rb") as handle:
        for start, stop in chunk_ranges(len(layout), 1):
            annotations += [a for a in layout.read_annotations(start, stop, handle) if a["image_id"] in kept]
    target.write_bytes(orjson.dumps({**head, "images": [i for i in head["images"] if i["id"] in kept],
                                     "annotations": annotations}))
    return total


def _hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def measure(command: list[str], env: dict[str, str], stop_after: float | None = None) -> dict:
    """Run ``command``; its wall and CPU seconds, and the summed peak RSS (MB) of it and its descendants.
    With ``stop_after`` (seconds) a command still running then is stopped with SIGTERM (``"stopped": True``:
    a partial run, whose peak RSS is that of the part that ran)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak_kb, seen, most = 0, set(), 0
    stopped = False
    while process.poll() is None:
        if stop_after is not None and not stopped and time.perf_counter() - start > stop_after:
            process.terminate()
            stopped = True
        todo, live = [process.pid], {}
        while todo:
            pid = todo.pop()
            hwm = _hwm_kb(pid)
            if hwm is not None:
                live[pid] = hwm
            todo += _children(pid)
        peak_kb = max(peak_kb, sum(live.values()))
        seen |= set(live)
        most = max(most, len(live))
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = process.returncode and not stopped
    error = process.stderr.read().decode(errors="replace").strip().splitlines()[-1:] if failed else []
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_kb / 1024, "processes": len(seen), "at_once": most,
            "stopped": stopped, "error": error[0] if error else None}


def coco_root(folder: Path, annotations: Path) -> Path:
    """A COCO root for ``build coco-n``: the replicated file as train, coco-tiny's val, the same image folders."""
    root = folder / "coco-root"
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    tiny = SHARED / "data/coco-tiny"
    for name in ("train2017", "val2017"):
        if not (root / name).exists():
            (root / name).symlink_to(tiny / name)
    shutil.copyfile(annotations, root / "annotations/instances_train2017.json")
    shutil.copyfile(tiny / "annotations/instances_val2017.json", root / "annotations/instances_val2017.json")
    return root


def lvis_roots(folder: Path, annotations: Path) -> tuple[Path, Path]:
    """An LVIS root for ``build lvis-n`` (the replicated file as train, lvis-tiny as val) and a COCO root holding
    a stand-in image file of the right size for each distinct image of lvis-tiny (whose own images are not in
    the shared data): ``--image-storage none --no-verify-images`` reads only their headers."""
    from PIL import Image

    lvis, coco = folder / "lvis-root", folder / "lvis-images"
    lvis.mkdir(exist_ok=True)
    (coco / "val2017").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(annotations, lvis / "lvis_v1_train.json")
    tiny = SHARED / SIZES["lvis"][0]
    shutil.copyfile(tiny, lvis / "lvis_v1_val.json")
    for image in orjson.loads(tiny.read_bytes())["images"]:
        Image.new("L", (image["width"], image["height"])).save(coco / "val2017" / Path(image["coco_url"]).name)
    return lvis, coco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", nargs="+", choices=SIZES, default=list(SIZES))
    add_option(parser, "--num-images", aliases=("--images",), type=int, default=None, help="fewer images than the full size (a small replica)")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--commands", nargs="+", choices=["noise", "build"], default=["noise", "build"])
    parser.add_argument("--level", choices=LEVELS, default="hard")
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (made if missing; default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--stop-after", type=float, default=None,
                        help="stop a full-size command after this many seconds (a partial run: its peak RSS so far)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    rows = []
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        runner = tmp / "reference_runner.py"
        runner.write_text(REFERENCE_RUNNER.format(ref=str(REFERENCE), level=LEVELS[args.level]))
        print("| size | images | annotations | MB | command | --num-proc | wall (s) | CPU (s) | peak RSS, all "
              "processes (MB) | ann/s (wall) | ann/CPU-s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for size in args.size:
            source, images, annotations = SIZES[size]
            if args.num_images:
                annotations = None if annotations is None else annotations * args.num_images // images
                images = args.num_images
            data = tmp / f"{size}.json"
            n_images, n_annotations = replicate(SHARED / source, images, annotations, data)
            megabytes = data.stat().st_size / 1e6

            def row(command: str, num_proc: str, result: dict, n: int, label: str = size) -> None:
                rows.append({"size": label, "images": n_images, "annotations": n, "command": command,
                             "num_proc": num_proc, **result})
                if result["error"]:
                    print(f"| {label} | | {n} | | {command} | {num_proc} | failed: {result['error']} |", flush=True)
                    return
                if result["stopped"]:  # the part that ran: no throughput
                    print(f"| {label} | {n_images:,} | {n:,} | {megabytes:.0f} | {command} | {num_proc} | stopped "
                          f"after {result['wall_s']:.0f} | {result['cpu_s']:.1f} | {result['peak_mb']:.0f} | | |")
                    return
                print(f"| {label} | {n_images:,} | {n:,} | {megabytes:.0f} | {command} | {num_proc} | "
                      f"{result['wall_s']:.1f} | {result['cpu_s']:.1f} | {result['peak_mb']:.0f} | "
                      f"{n / result['wall_s']:,.0f} | {n / result['cpu_s']:,.0f} |", flush=True)

            cli = [sys.executable, "-m", "hf_noisy.cli"]
            if "noise" in args.commands:
                piece = tmp / f"{size}-slice.json"
                n_slice = slice_file(data, SLICE_ANNOTATIONS, piece)
                row("released generator", "1", measure([sys.executable, str(runner), str(piece), str(tmp / "ref.json")],
                                                       env), n_slice, f"{size} slice")
                row("hf-noisy noise", "1", measure(cli + ["noise", str(piece), "-o", str(tmp / "slice-out.json"),
                                                          "--spec", args.level, "--no-progress", "--overwrite"], env),
                    n_slice, f"{size} slice")
                for num_proc in args.num_proc:
                    out = tmp / "noisy.json"
                    row("hf-noisy noise", str(num_proc), measure(cli + [
                        "noise", str(data), "-o", str(out), "--spec", args.level, "--num-proc", str(num_proc),
                        "--no-progress", "--overwrite"], env, args.stop_after), n_annotations)
                    out.unlink(missing_ok=True)
                piece.unlink()
            if "build" in args.commands:
                if size == "coco":
                    roots = [coco_root(tmp, data)]
                    where = ["coco-n", "--coco-root", str(roots[0])]
                else:
                    roots = list(lvis_roots(tmp, data))
                    where = ["lvis-n", "--lvis-root", str(roots[0]), "--coco-root", str(roots[1])]
                for num_proc in args.num_proc:
                    row(f"hf-noisy build {where[0]} --image-storage none", str(num_proc), measure(cli + [
                        "build", *where, "--out", str(tmp / "built"), "--image-storage", "none",
                        "--num-proc", str(num_proc), "--no-progress", "--no-verify-images", "--overwrite"], env,
                        args.stop_after), n_annotations)
                    shutil.rmtree(tmp / "built", ignore_errors=True)
                for root in roots:
                    shutil.rmtree(root)
            data.unlink()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
