"""Rules that hold across processes: concurrent submitters and evaluators (real processes started together) on
a local store and on a Hub store (the loopback Hub), an evaluator killed with SIGKILL mid-scoring, leases that
lapse without a heartbeat or are given up, and sandbox children killed from outside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import (Limits, LocalBackend, SandboxLimits, SubmissionError, SubmissionMeta, init_store,
                                  list_results, list_submissions, parse_benchmark_sources, submit)
from hf_noisy.leaderboard.sandbox import score_upload

#: One submitter process: waits for the start file (so all of them run the rules at once), submits, prints
#: "accepted" or the refusal's kind.
SUBMITTER = """
import os, sys, time
from hf_noisy.leaderboard import Limits, SubmissionError, SubmissionMeta, submit

store, upload, go, name = sys.argv[1:5]
while not os.path.exists(go):
    time.sleep(0.01)
try:
    submit(store, open(upload, "rb").read(), SubmissionMeta(name, "coco-n", "hard", sys.argv[5]),
           limits=Limits(per_day=5, attempts_per_day=100))
    print("accepted")
except SubmissionError as err:
    print(err.kind)
"""

#: One evaluator process (after the start file): prints the ids of the results it wrote, as JSON.
EVALUATOR = """
import json, os, sys, time
from hf_noisy.leaderboard import evaluate_pending

store, go = sys.argv[1:3]
while not os.path.exists(go):
    time.sleep(0.01)
print(json.dumps([record["submission"] for record in evaluate_pending(store)]))
"""


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, Path]:
    gt = shapes_gt(tmp_path / "shapes", num_val=2)
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    upload = tmp_path / "results.json"
    upload.write_bytes(dumps(predictions(gt)))
    return tmp_path / "board", upload


@pytest.fixture(params=["local", "hub"])
def any_board(request, tmp_path: Path) -> tuple[str, Path]:
    """The same store on a local folder, or as ``hf://noisy-seg`` on the loopback Hub (tests/hub_server.py,
    whose commits answer 412 to a stale ``parentCommit``); subprocesses inherit its endpoint and token."""
    if request.param == "local":
        store, upload = request.getfixturevalue("board")
        return str(store), upload
    request.getfixturevalue("hub")
    gt = shapes_gt(tmp_path / "shapes", num_val=2)
    init_store("hf://noisy-seg", parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    upload = tmp_path / "results.json"
    upload.write_bytes(dumps(predictions(gt)))
    return "hf://noisy-seg", upload


def _together(script: str, argument_lists: list[list[str]], go: Path, **kwargs) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, **kwargs) for args in argument_lists]
    time.sleep(1.0)  # let them all start and import
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(out.strip().splitlines()[-1])
    return outputs


@pytest.mark.slow
def test_eight_concurrent_submits_of_one_submitter_give_at_most_five(any_board, tmp_path: Path):
    store, upload = any_board
    # The submitter's name in three cases: one submitter.
    names = ["alice", "Alice", "ALICE", "alice", "alice", "Alice", "alice", "alice"]
    outputs = _together(SUBMITTER, [[str(store), str(upload), str(tmp_path / "go"), f"Model {i}", names[i]]
                                    for i in range(8)], tmp_path / "go")
    assert sorted(outputs) == ["accepted"] * 5 + ["rate-limit"] * 3
    assert len(list_submissions(store)) == 5


@pytest.mark.slow
def test_four_concurrent_submits_of_one_name_give_one(any_board, tmp_path: Path):
    store, upload = any_board
    outputs = _together(SUBMITTER, [[str(store), str(upload), str(tmp_path / "go"), name, "alice"]
                                    for name in ("Same Model", "same model", "SAME MODEL", "Same Model")],
                        tmp_path / "go")
    assert sorted(outputs) == ["accepted"] + ["duplicate"] * 3
    assert len(list_submissions(store)) == 1


class _HeldLocalBackend(LocalBackend):
    """A local store whose first write of a submission's marker (``meta.json``) waits for ``release``: its
    submit stops after its last read of the store, just before the write, inside its transaction."""

    def __init__(self, root: str | os.PathLike) -> None:
        super().__init__(root)
        self.reached, self.release = threading.Event(), threading.Event()

    def write(self, files, message: str) -> None:
        if any(path.endswith("/meta.json") for path in files) and not self.reached.is_set():
            self.reached.set()
            self.release.wait(120)
        super().write(files, message)


def _blocked_on(lock_file: Path) -> bool:
    """Whether some thread waits for the ``flock`` on ``lock_file`` (a ``->`` line of /proc/locks)."""
    inode = f":{lock_file.stat().st_ino}"
    return any(fields[1] == "->" and fields[-3].endswith(inode)
               for fields in map(str.split, Path("/proc/locks").read_text().splitlines()) if len(fields) > 3)


def test_a_submit_that_read_the_store_before_the_same_submission_was_stored_is_a_duplicate(any_board, request):
    """Two submits of one model name by one submitter in the same second with the same file make the very same
    files. The first stops between its last read of the store and its write (the loopback Hub holds its commit's
    upload request; a local store holds it inside its transaction) while the second runs: one is stored, the
    other is refused as a duplicate. On the Hub, ``create_commit`` leaves out files that the branch already has
    with the same content, so the first's commit had nothing left to send (no ``parentCommit`` check) and
    both were accepted, the bug this pins."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime, timezone

    store, upload = any_board
    raw = upload.read_bytes()
    meta = SubmissionMeta("Same Model", "coco-n", "hard", "alice")
    now = datetime.now(timezone.utc)

    def outcome(target) -> str:
        try:
            submit(target, raw, meta, now=now, limits=Limits(per_day=5, attempts_per_day=100))
            return "accepted"
        except SubmissionError as err:
            return err.kind

    with ThreadPoolExecutor(2) as pool:
        if store.startswith("hf://"):
            # The Hub: the first's commit waits while the second runs to its end and is stored; then the first
            # must find it.
            hold = request.getfixturevalue("hub").server.hold(
                "POST", r"/api/datasets/noisy-seg/leaderboard-submissions/preupload/.+", b"/meta.json")
            first = pool.submit(outcome, store)
            try:
                assert hold.reached.wait(120), "the first submit never reached its commit"
                assert outcome(store) == "accepted"
            finally:
                hold.release.set()
            assert first.result() == "duplicate"
        else:
            # A local store: the second waits for the first's lock, then finds its submission.
            held = _HeldLocalBackend(store)
            first = pool.submit(outcome, held)
            try:
                assert held.reached.wait(120), "the first submit never reached its write"
                second = pool.submit(outcome, store)
                deadline = time.monotonic() + 120
                while not _blocked_on(Path(store) / ".lock-submissions") and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert _blocked_on(Path(store) / ".lock-submissions"), "the second submit never waited"
            finally:
                held.release.set()
            assert (first.result(), second.result()) == ("accepted", "duplicate")
    assert len(list_submissions(store)) == 1


def test_a_hub_transaction_whose_files_were_written_byte_for_byte_after_its_read_decides_again(hub):
    """The rule under the one above, in :meth:`HubBackend.transact` itself: a transaction that read the repo
    before another one committed the very files it is about to write is not told it wrote them; it decides
    again on the new head (and there finds them)."""
    from concurrent.futures import ThreadPoolExecutor

    from hf_noisy.leaderboard import HubBackend

    HubBackend("noisy-seg").create()
    seen = []

    def decide(view) -> tuple[dict, bool]:
        seen.append(view.read("claims/one.json"))
        return ({} if seen[-1] is not None else {"claims/one.json": b"the same bytes\n"}), seen[-1] is None

    hold = hub.server.hold("POST", r"/api/datasets/noisy-seg/leaderboard-results/preupload/.+", b"claims/one.json")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(HubBackend("noisy-seg").transact, "results", decide, "first")
        try:
            assert hold.reached.wait(120), "the first transaction never reached its commit"
            assert HubBackend("noisy-seg").transact("results", decide, "second") is True
        finally:
            hold.release.set()
        assert first.result() is False
    assert seen == [None, None, b"the same bytes\n"]


def _submit(store: Path | str, upload: Path, count: int) -> list[str]:
    raw = upload.read_bytes()
    return [submit(store, raw, SubmissionMeta(f"M{i}", "coco-n", config, "alice")).id
            for i, config in enumerate(("clean", "hard", "easy", "medium")[:count])]


@pytest.mark.slow
def test_three_concurrent_evaluators_score_each_submission_once(any_board, tmp_path: Path):
    store, upload = any_board
    ids = _submit(store, upload, 4)
    outputs = _together(EVALUATOR, [[str(store), str(tmp_path / "go")] for _ in range(3)], tmp_path / "go")
    written = [submission for out in outputs for submission in json.loads(out)]
    assert sorted(written) == sorted(ids)  # every submission scored, none twice
    assert sorted(list_results(store)) == sorted(ids)
    assert {record["status"] for record in list_results(store).values()} == {"done"}


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_an_evaluator_killed_mid_scoring_leaves_no_orphan_or_temp_file_and_a_rerun_scores_it(board,
                                                                                             tmp_path: Path):
    store, upload = board
    (submission,) = _submit(store, upload, 1)
    temp = tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "go").touch()
    evaluator = subprocess.Popen([sys.executable, "-c", EVALUATOR, str(store), str(tmp_path / "go")],
                                 env=dict(os.environ, TMPDIR=str(temp)), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    sandbox = []
    while not sandbox and time.monotonic() < deadline and evaluator.poll() is None:
        sandbox = [pid for pid in _children(evaluator.pid) if b"hf_noisy.leaderboard.sandbox" in
                   Path(f"/proc/{pid}/cmdline").read_bytes()]
        time.sleep(0.02)
    assert sandbox, "the evaluator never started scoring"
    assert (store / "claims" / f"{submission}.json").is_file()  # claimed before scoring
    evaluator.send_signal(signal.SIGKILL)
    evaluator.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, sandbox)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, sandbox)), "the sandbox child outlived its evaluator"
    assert list(temp.iterdir()) == []
    assert submission not in list_results(store)
    # The lease's evaluator is gone (same machine): the next run takes it over at once.
    rerun = subprocess.run([sys.executable, "-c", EVALUATOR, str(store), str(tmp_path / "go")], capture_output=True,
                           text=True, timeout=300, env=dict(os.environ, TMPDIR=str(temp)))
    assert json.loads(rerun.stdout.strip().splitlines()[-1]) == [submission], rerun.stderr
    assert list_results(store)[submission]["status"] == "done"
    assert list(temp.iterdir()) == []


def _kill_sandboxes(times: int, stop: threading.Event) -> list[int]:
    """Kill the sandbox children of this process with SIGKILL (as the OOM killer would), ``times`` times."""
    killed: list[int] = []

    def run():
        while len(killed) < times and not stop.is_set():
            for pid in _children(os.getpid()):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                except FileNotFoundError:
                    continue
                if b"hf_noisy.leaderboard.sandbox" in command and pid not in killed and _alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.01)

    threading.Thread(target=run, daemon=True).start()
    return killed


@pytest.mark.parametrize("kills, status", [(1, "done"), (3, "crash")])
def test_a_sandbox_killed_from_outside_is_retried_then_fails_with_the_true_reason(board, kills: int, status: str):
    store, upload = board
    gt_file = store.parent / "val.json"
    stop = threading.Event()
    killed = _kill_sandboxes(kills, stop)
    try:
        outcome = score_upload(upload.read_bytes(), gt_file, "coco-n", SandboxLimits(60, 1024, 120, retries=2))
    finally:
        stop.set()
    assert len(killed) == kills
    if status == "done":
        assert "metrics" in outcome, outcome
    else:
        assert outcome["error"] == "crash", outcome
        assert outcome["reason"].startswith("the sandbox was killed by SIGKILL (from outside the sandbox, most "
                                            "likely the out-of-memory killer), 3 times"), outcome
        assert "CPU" not in outcome["reason"]


@pytest.mark.slow
def test_a_lease_of_another_machine_holds_while_renewed_and_is_free_two_minutes_after(any_board):
    """Issue 23, F: a lease from another host (a restarted Space has a new host name) that says it expires in
    the year 2999 holds only while it is renewed; two minutes without a renewal and it is free. Both stores."""
    from datetime import datetime, timedelta, timezone

    from hf_noisy.leaderboard import evaluate_pending, open_backend

    store, upload = any_board
    (submission,) = _submit(store, upload, 1)
    backend = open_backend(store)
    other = {"machine": "old-space-host/boot", "pid": 1, "started": "1", "expires_at": "2999-01-01T00:00:00+00:00"}
    now = datetime.now(timezone.utc)

    def lease(**fields) -> None:
        backend.write({f"claims/{submission}.json": json.dumps(dict(other, **fields)).encode()}, "test lease")

    lease(renewed_at=now.isoformat())
    assert evaluate_pending(store) == []  # renewed just now: another evaluator is on it
    lease(renewed_at=(now - timedelta(minutes=3)).isoformat())
    assert [r["submission"] for r in evaluate_pending(store)] == [submission]  # not renewed for 3 min: free


@pytest.mark.slow
def test_an_evaluator_renews_its_lease_while_it_scores(board, monkeypatch):
    """A scoring that outlasts the lease (here 0.8 s, scoring 3 s) keeps it: the heartbeat renews it every
    quarter of it, so it is live from another machine's point of view all along; after the result, it stops."""
    from datetime import datetime, timezone

    from hf_noisy.leaderboard import evaluate_pending, evaluator, leases

    store, upload = board
    (submission,) = _submit(store, upload, 1)
    path = store / "claims" / f"{submission}.json"
    seen, stop = [], threading.Event()

    def slow_score(*args, **kwargs) -> dict:
        while len(seen) < 30:  # 3 s of polls, at least
            time.sleep(0.02)
        return score_upload(*args, **kwargs)

    def watch() -> None:
        while not stop.is_set():
            if path.is_file():
                lease = json.loads(path.read_text())
                elsewhere = dict(lease, machine="another/boot")  # as another machine judges it
                seen.append((lease["renewed_at"], leases.lease_is_live(elsewhere, datetime.now(timezone.utc), 0.8)))
            time.sleep(0.1)

    monkeypatch.setattr(evaluator, "score_upload", slow_score)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        (record,) = evaluate_pending(store, lease_seconds=0.8)
    finally:
        stop.set()
        watcher.join()
    assert record["status"] == "done"
    during = seen[:30]
    assert all(live for _, live in during), "the lease lapsed while its evaluator was scoring"
    assert len({renewed for renewed, _ in during}) >= 5  # renewed again and again


def test_an_evaluator_that_fails_gives_its_claim_up_at_once(board):
    from hf_noisy.leaderboard import evaluate_pending

    store, upload = board
    (submission,) = _submit(store, upload, 1)
    gt_file = store.parent / "val.json"
    kept = gt_file.read_bytes()
    gt_file.unlink()  # the benchmark's annotations went missing: evaluation cannot start
    with pytest.raises(Exception, match="val.json"):
        evaluate_pending(store)
    gt_file.write_bytes(kept)
    # Same process, still alive: the claim was released, not left live until it expires.
    assert [r["submission"] for r in evaluate_pending(store)] == [submission]
