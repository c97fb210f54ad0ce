"""Nobody can block the board (issue 23, C): a submit only checks (within its own CPU budget) and enqueues;
scoring runs in the evaluator loop, never inside a request; one check at a time per submitter, a bounded number
at once, a fair order. The attack itself goes through the real Gradio app, as a Space, with gradio_client."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, session_cookie, shapes_gt, write_gt

from hf_noisy.leaderboard import (SubmissionError, SubmissionMeta, init_store, list_results, list_submissions,
                                  check_limits, parse_benchmark_sources, scoring_limits)
from hf_noisy.leaderboard.board import Submission
from hf_noisy.leaderboard.evaluator import fair_order
from hf_noisy.leaderboard.queue import CheckGate, EvaluatorLoop

#: The hostile upload's images (ids 1 to BIG_IMAGES, BIG x BIG pixels): zigzag polygons across one cost ~0.1
#: CPU-s each to rasterise.
BIG, BIG_IMAGES = 4000, 4


def _zigzag(count: int) -> list[dict]:
    """``count`` detections, each one polygon of 4,096 vertices zigzagging across the BIG x BIG image: valid
    (every vertex inside the image, the vertex cap met) and slow to check (~0.1 CPU-s each)."""
    polygon = [v for i in range(4096) for v in (i * BIG // 4096, 0 if i % 2 else BIG)]
    return [{"image_id": 1 + k % BIG_IMAGES, "category_id": 1, "segmentation": [polygon], "score": 0.5}
            for k in range(count)]


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, dict]:
    """A store whose coco-n ground truth is the shapes validation split plus BIG_IMAGES images of BIG x BIG."""
    gt = shapes_gt(tmp_path / "shapes")
    gt["images"] += [{"id": i, "file_name": f"big{i}.png", "height": BIG, "width": BIG}
                     for i in range(1, BIG_IMAGES + 1)]
    store = tmp_path / "board"
    init_store(store, parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    return store, gt


def test_one_check_per_submitter_a_bounded_number_at_once_first_come_first_served():
    gate = CheckGate(slots=1, waiting=2, wait_seconds=30)
    order = []

    def check(user: str) -> None:
        with gate.slot(user):
            order.append(user)
            time.sleep(0.2)

    with gate.slot("alice"):
        with pytest.raises(SubmissionError) as again:  # alice's second upload: refused at once, not queued
            with gate.slot("ALICE"):
                pass
        assert again.value.kind == "busy"
        waiters = [threading.Thread(target=check, args=(name,)) for name in ("bob", "carol")]
        for waiter in waiters:
            waiter.start()
            time.sleep(0.2)  # bob is in line before carol
        with pytest.raises(SubmissionError) as full:  # the line holds 2: dave is told to come back
            with gate.slot("dave"):
                pass
        assert full.value.kind == "busy" and "waiting" in str(full.value)
        assert gate.running() == 1
    for waiter in waiters:
        waiter.join(10)
    assert order == ["bob", "carol"] and gate.running() == 0


def test_the_evaluator_serves_submitters_in_turn():
    def sub(submitter: str, minute: int, config: str = "hard") -> Submission:
        meta = SubmissionMeta(f"M{minute}", "coco-n", config, submitter)
        return Submission(f"coco-n/{config}/{submitter}/x{minute}", meta, "0", f"2026-12-07T10:{minute:02d}:00", 1)

    # mallory sent five first; alice one later; alice's is second, not sixth. Each one's clean goes first.
    pending = [sub("mallory", m) for m in range(5)] + [sub("alice", 10), sub("mallory", 11, "clean")]
    assert [(s.meta.submitter, s.meta.model_name) for s in fair_order(pending)] == [
        ("mallory", "M11"), ("alice", "M10"), ("mallory", "M0"), ("mallory", "M1"), ("mallory", "M2"),
        ("mallory", "M3"), ("mallory", "M4")]


def test_the_check_has_its_own_small_budget():
    for benchmark in ("coco-n", "lvis-n"):
        check = check_limits(benchmark)
        assert check.cpu_seconds <= 20 < scoring_limits(benchmark).cpu_seconds and check.retries == 0


@pytest.mark.slow
def test_a_hostile_slow_upload_does_not_delay_another_submitters_submit(board, tmp_path: Path, free_port, capsys,
                                                                       hub):
    """mallory uploads 300 zigzag polygons (30 CPU-s to check in full); while its check runs, alice's valid
    submit through the same app is answered within seconds; mallory's submit returns after its check budget
    (partly checked, queued), never after a scoring; the evaluator loop then scores both. (``hub``: gradio
    outside a Space mocks its OAuth routes with the token's user, from the loopback Hub.)"""
    pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
    client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    from hf_noisy.leaderboard import SandboxLimits, evaluate_pending
    from hf_noisy.leaderboard.app import build_app, launch_options
    from hf_noisy.metrics import evaluate_coco

    store, gt = board
    hostile, valid = tmp_path / "hostile.json.gz", tmp_path / "valid.json"
    hostile.write_bytes(gzip.compress(dumps(_zigzag(300))))  # the attack's shape: a small gzip, slow to check
    detections = predictions(gt, seed=5)
    valid.write_bytes(dumps(detections))
    scoring = SandboxLimits(cpu_seconds=5, memory_mb=2048, wall_seconds=60, retries=0)
    evaluator = EvaluatorLoop(lambda: evaluate_pending(store, limits=scoring), interval=3600).start()
    demo = build_app(store, on_space=True, evaluator=evaluator)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(on_space=True, submitter=None))
    url = f"http://127.0.0.1:{port}/"
    try:
        # gradio signs sessions with sha256(OAUTH_CLIENT_SECRET + "-v4"); unset here, so with "".
        mallory, alice = (client_module.Client(url, headers={"Cookie": f"session={session_cookie('', name)}"},
                                               verbose=False) for name in ("mallory", "alice"))
        form = ("coco-n", "clean", "", "", "", "", "")
        began = time.monotonic()
        job = mallory.submit("", client_module.handle_file(str(hostile)), form[0], form[1], "Zigzag", *form[3:],
                             api_name="/handler")
        attempts = store / "attempts" / "mallory"
        while not (attempts.is_dir() and any(attempts.iterdir())):  # mallory's check has begun
            assert time.monotonic() - began < 60, "the hostile submit never reached its check"
            time.sleep(0.1)
        time.sleep(2.0)  # well inside it
        sent = time.monotonic()
        answer, _ = alice.predict("", client_module.handle_file(str(valid)), form[0], form[1], "Valid", *form[3:],
                                  api_name="/handler")
        latency = time.monotonic() - sent
        assert answer.startswith("**Accepted** as `coco-n/clean/alice/"), answer
        assert not job.done(), "the hostile check ended before the valid submit: it was not concurrent"
        hostile_answer, _ = job.result(timeout=120)
        hostile_wall = time.monotonic() - began
        assert hostile_answer.startswith("**Accepted**") and "the rest is checked when it is scored" in hostile_answer
        assert "queued for scoring" in answer and "Evaluated" not in hostile_answer  # never scored in a request
        with capsys.disabled():
            print(f"\n[queue] valid submit while a hostile one is checked: {latency:.1f} s; hostile submit "
                  f"answered after {hostile_wall:.1f} s (check budget {check_limits('coco-n').cpu_seconds:g} "
                  "CPU-s)")
        assert latency < 15, f"a concurrent valid submit took {latency:.1f} s"
        deadline = time.monotonic() + 180
        while len(list_results(store)) < 2:
            assert time.monotonic() < deadline, "the evaluator loop did not score both"
            time.sleep(0.5)
    finally:
        demo.close()
        evaluator.stop(timeout=120)
    results = {r["meta"]["submitter"]: r for r in list_results(store).values()}
    assert results["alice"]["status"] == "done"
    assert results["alice"]["metrics"]["segm"] == evaluate_coco(gt, detections)["segm"].stats
    assert (results["mallory"]["status"], results["mallory"]["error"]) == ("failed", "time")  # its own budget
    (partial,) = [s for s in list_submissions(store) if s.meta.submitter == "mallory"]
    assert not partial.complete and 0 < partial.detections < 300
