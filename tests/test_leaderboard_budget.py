"""The server's work per upload is bounded: the red team's worst uploads of each kind cost the submitting
process (CLI or app) under 1 s of CPU and 64 MB of extra memory, are refused for what they are, and the
board keeps answering while they are checked (in the sandbox child, whose own cost is not the server's)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import Limits, SubmissionError, SubmissionMeta, init_store, list_submissions, submit
from hf_noisy.leaderboard import parse_benchmark_sources

META = SubmissionMeta("M2F R50", "coco-n", "hard", "alice")

#: The submitting process, alone: its own CPU time (RUSAGE_SELF, all its threads, not the sandbox child, which
#: has limits of its own) and its peak RSS during one submit() call over its RSS before it (the kernel's
#: high-water mark VmHWM, reset first through /proc/self/clear_refs, so import-time peaks cannot hide it).
SERVER = """
import json, resource, sys
from pathlib import Path
from hf_noisy.leaderboard import Limits, SubmissionError, SubmissionMeta, submit

def status(field):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))

store, upload = sys.argv[1], Path(sys.argv[2])
usage = lambda: resource.getrusage(resource.RUSAGE_SELF)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
rss_before = status("VmRSS")
before = usage()
try:
    submit(store, upload, SubmissionMeta("M2F R50", "coco-n", "hard", "alice"), limits=Limits(attempts_per_day=100))
    kind = reason = None
except SubmissionError as err:
    kind, reason = err.kind, str(err)
after = usage()
print(json.dumps({"kind": kind, "reason": reason,
                  "cpu_seconds": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "extra_rss_mb": (status("VmHWM") - rss_before) / 1024}))
"""


def _escapes() -> bytes:
    """Finding 1: gzip of ``[{"a": "`` and 64k escaped quotes (quadratic for a backtracking string regex)."""
    return gzip.compress(b'[{"a": "' + b'\\"' * 64_000, mtime=0)


def _spaces() -> bytes:
    """Finding 2: gzip of 255 MiB of spaces (about 260 KB), made in 1 MiB pieces."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(255)), packer.flush()])


def _polygons(gt: dict) -> bytes:
    """Finding 3: polygons with vertices at +-1e8 (expensive to rasterise), a bad RLE in the last detection."""
    image, category = gt["images"][0], gt["categories"][0]["id"]
    square = [[-1e8, -1e8, 1e8, -1e8, 1e8, 1e8, -1e8, 1e8]]
    detections = [{"image_id": image["id"], "category_id": category, "segmentation": square, "score": 0.5}
                  for _ in range(13)]
    detections.append({"image_id": image["id"], "category_id": category, "score": 0.5,
                       "segmentation": {"size": [image["height"], image["width"]], "counts": "!!bad"}})
    return dumps(detections)


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("budget")
    gt = shapes_gt(root / "shapes", num_val=2)
    init_store(root / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, root / 'val.json')}"]))
    return root / "board", gt


@pytest.fixture(scope="module")
def attacks(board, tmp_path_factory) -> dict[str, tuple[Path, str, str]]:
    """name -> (upload file, kind it is refused as, words of the reason)."""
    root = tmp_path_factory.mktemp("attacks")
    made = {"escapes": (_escapes(), "not-json", "not valid JSON"),
            "spaces": (_spaces(), "padding", "bytes of whitespace in a row"),  # refused after 4 MiB of it
            "polygons": (_polygons(board[1]), "polygon", "outside the image")}
    out = {}
    for name, (data, kind, words) in made.items():
        (root / name).write_bytes(data)
        out[name] = (root / name, kind, words)
    return out


@pytest.mark.slow
def test_the_uploads_are_the_red_teams(attacks):
    sizes = {name: path.stat().st_size for name, (path, *_) in attacks.items()}
    assert sizes["escapes"] < 400 and 200_000 < sizes["spaces"] < 300_000 and sizes["polygons"] < 3_000
    assert len(gzip.decompress(attacks["spaces"][0].read_bytes())) == 255 << 20


@pytest.mark.parametrize("name", ["escapes", "spaces", "polygons"])
def test_the_server_spends_under_1_cpu_second_and_64_mb_on_the_worst_uploads(board, attacks, name: str):
    store, _ = board
    path, kind, words = attacks[name]
    proc = subprocess.run([sys.executable, "-c", SERVER, str(store), str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (measured["kind"], words in measured["reason"]) == (kind, True), measured
    assert measured["cpu_seconds"] < 1.0, measured
    assert measured["extra_rss_mb"] < 64, measured
    assert list_submissions(store) == []


@pytest.mark.slow
def test_the_board_answers_while_each_upload_is_refused(board, attacks, free_port):
    pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
    from hf_noisy.leaderboard.app import build_app, submit_form

    store, _ = board
    port = free_port()
    demo = build_app(store, submitter="alice", evaluate=False)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        for name, (path, kind, _) in attacks.items():
            answer = {}
            worker = threading.Thread(target=lambda: answer.update(
                text=submit_form(store, "alice", str(path), "coco-n", "hard", f"M2F {name}",
                                 limits=Limits(attempts_per_day=100), evaluate=False)))
            worker.start()
            latencies = []
            while worker.is_alive() or not latencies:
                start = time.monotonic()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                    assert response.status == 200
                latencies.append(time.monotonic() - start)
                time.sleep(0.05)
            worker.join()
            assert answer["text"].startswith(f"**Rejected** ({kind})"), answer
            # Generous for a loaded 2-core CI; on main the page stalled for the whole check (31 s).
            assert max(latencies) < 5.0, (name, latencies)
    finally:
        demo.close()


@pytest.mark.slow
def test_refusals_count_toward_an_attempt_limit_of_their_own(board, attacks, tmp_path: Path):
    store, gt = board
    gt_file = write_gt(gt, tmp_path / "val.json")
    init_store(tmp_path / "own", parse_benchmark_sources([f"coco-n={gt_file}"]))
    store = tmp_path / "own"
    limits = Limits(per_day=5, attempts_per_day=3)
    for name in ("escapes", "polygons"):
        with pytest.raises(SubmissionError):
            submit(store, attacks[name][0].read_bytes(), replace(META, model_name=name), limits=limits)
    submit(store, dumps(predictions(gt)), META, limits=limits)  # the third upload, a good one
    with pytest.raises(SubmissionError, match="3 files in the last 24 hours, refused ones included; the "
                       "limit is 3") as caught:
        submit(store, dumps(predictions(gt)), replace(META, model_name="Another"), limits=limits)
    assert caught.value.kind == "attempt-limit"
    assert [s.meta.model_name for s in list_submissions(store)] == ["M2F R50"]  # accepted: 1 of its own 5
    # Another submitter has attempts of their own.
    submit(store, dumps(predictions(gt)), replace(META, submitter="bob"), limits=limits)


def test_polygon_vertices_are_capped_and_lie_inside_the_image(board):
    from hf_noisy.leaderboard import check_results

    _, gt = board
    image = gt["images"][0]
    h, w = image["height"], image["width"]
    det = {"image_id": image["id"], "category_id": gt["categories"][0]["id"], "score": 0.5}
    inside = [[-1, -1, w + 1, -1, w + 1, h + 1, -1, h + 1]]  # the COCO validator's 1-pixel margin
    assert len(check_results([dict(det, segmentation=inside)], gt, max_per_image=100)) == 1
    for polygon, words in (([[-1.5, 0, 5, 0, 5, 5]], "polygon x = -1.5"), ([[0, 0, 5, 0, 5, h + 2]], f"y = {h + 2}"),
                           ([[0, 0, 5, 0, 5, float("nan")]], "y = nan")):
        with pytest.raises(SubmissionError, match=words) as caught:
            check_results([dict(det, segmentation=polygon)], gt, max_per_image=100)
        assert caught.value.kind == "polygon"
    many = [[float(i % w), float(i % h)] for i in range(5000)]
    with pytest.raises(SubmissionError, match="more than 4096 polygon vertices"):
        check_results([dict(det, segmentation=[[c for xy in many for c in xy]])], gt, max_per_image=100)


#: The whole-file path the sandbox took before it streamed, under the sandbox's own memory cap: the upload read
#: into memory, parsed and checked as one list, then scored from the list.
_WHOLE_FILE = """
import os, sys
import cv2, faster_coco_eval, pycocotools.mask
from hf_noisy.coco import load_coco
from hf_noisy.leaderboard.rules import score
from hf_noisy.leaderboard.sandbox import _cap
from hf_noisy.leaderboard.submission import check_results, parse_results
from hf_noisy.metrics import coco_eval
gt = load_coco(sys.argv[1], allow_empty_masks=True)
raw = open(sys.argv[2], "rb").read()
_cap(600, int(float(sys.argv[3]) * 2**20))
try:
    score("coco-n", gt, check_results(parse_results(raw), gt, max_per_image=100), num_proc=1)
except MemoryError:
    os._exit(3)  # at once: a normal exit allocates too, and can fail again under the cap
"""

#: Memory the sandbox may give the 30k-detection upload below (RLIMIT_DATA past the loaded stack and ground
#: truth). Measured (2026-12): the streamed check and scoring fit in 28 MB, the whole-file path needs 56-64 MB.
BOUNDED_MB = 40


@pytest.mark.slow
def test_the_sandbox_checks_and_scores_a_large_upload_in_bounded_memory(tmp_path: Path):
    """A generated 30k-detection submission (gzip, 3.7 MB of JSON) is scored by the sandbox with BOUNDED_MB for
    the upload: the numbers equal scoring the list in this process without limits. The whole-file path under
    the same cap runs out of memory."""
    from test_scale import synthetic

    from hf_noisy.coco import load_coco, write_coco
    from hf_noisy.leaderboard.rules import score
    from hf_noisy.leaderboard.policy import SandboxLimits
    from hf_noisy.leaderboard.sandbox import score_upload

    gt, detections = synthetic(1500, 20, seed=7)
    gt_path, upload = tmp_path / "gt.json", tmp_path / "results.json.gz"
    write_coco(gt, gt_path)
    upload.write_bytes(gzip.compress(json.dumps(detections).encode(), mtime=0))
    outcome = score_upload(upload, gt_path, "coco-n", SandboxLimits(600, BOUNDED_MB, 900, retries=0))
    assert outcome == {"metrics": score("coco-n", load_coco(gt_path), detections, num_proc=1)}
    whole = subprocess.run([sys.executable, "-c", _WHOLE_FILE, str(gt_path), str(upload), str(BOUNDED_MB)],
                           capture_output=True, text=True, timeout=600)
    # MemoryError (exit 3), or a C allocation failing hard (killed by a signal)
    assert whole.returncode == 3 or whole.returncode < 0, (whole.returncode, whole.stderr[-2000:])
