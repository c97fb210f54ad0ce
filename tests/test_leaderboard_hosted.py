"""Submissions hosted on the Hub (issue 23, A and B), against the loopback Hub: a results file in the
submitter's own repo at a pinned commit is pushed (upload-results), submitted by reference (CLI and the Space's
form), size-checked through the API before a byte is fetched, streamed into the check and the scoring with no
copy kept (not in the store, not in the Hugging Face cache, not in the temporary folder); and the direct-upload
door takes nothing from a visitor who is not signed in."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, session_cookie, shapes_gt, write_gt

from hf_noisy.cli import main
from hf_noisy.leaderboard import (Limits, SubmissionError, SubmissionMeta, evaluate_pending, init_store,
                                  list_results, list_submissions, parse_benchmark_sources, submit)
from hf_noisy.leaderboard.hosted import parse_hosted, upload_results
from hf_noisy.metrics import evaluate_coco

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_a_reference_names_a_pinned_file_and_a_bad_one_is_one_short_line():
    ref = parse_hosted(f"hf://datasets/alice/m2f-r50-results@{SHA}/runs/hard.json.gz")
    assert (ref.repo_type, ref.repo_id, ref.revision, ref.path, ref.owner) == (
        "dataset", "alice/m2f-r50-results", SHA, "runs/hard.json.gz", "alice")
    assert str(ref) == f"hf://datasets/alice/m2f-r50-results@{SHA}/runs/hard.json.gz"
    for bad, words in ((f"hf://datasets/alice/r@main/hard.json", "pin a commit"),
                       (f"hf://datasets/alice/r@{SHA}/../x.json", "not a file path"),
                       ("https://example.com/" + "x" * 5000, "not a Hub file reference")):
        with pytest.raises(SubmissionError) as caught:
            parse_hosted(bad)
        assert caught.value.kind == "reference" and words in str(caught.value)
        assert len(str(caught.value)) < 200  # quotes at most 80 characters of the value


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, dict]:
    gt = shapes_gt(tmp_path / "shapes")
    board = tmp_path / "board"
    init_store(board, parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    return board, gt


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


@pytest.mark.slow
def test_submit_and_score_a_hub_hosted_file_keeping_no_copy(store, hub, tmp_path: Path, monkeypatch, capsys):
    board, gt = store
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # every temporary file of this process and its sandbox children
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    detections = predictions(gt, seed=4)
    results = tmp_path / "hard.json.gz"
    results.write_bytes(gzip.compress(dumps(detections)))
    assert main(["leaderboard", "upload-results", str(results), "--repo", "alice/m2f-results"]) == 0
    reference = capsys.readouterr().out.strip()
    ref = parse_hosted(reference)
    assert ref.repo_id == "alice/m2f-results" and ref.path == "hard.json.gz"

    assert main(["leaderboard", "submit", reference, "--store", str(board), "--benchmark", "coco-n", "--trained-on",
                 "hard", "--model-name", "Hosted", "--submitter", "alice"]) == 0
    (submission,) = list_submissions(board)
    assert submission.hosted == reference and submission.complete
    assert not list(board.rglob("results.json.gz"))  # the store keeps the reference, never the bytes
    hf_home = Path(__import__("os").environ["HF_HOME"])
    before = _tree_bytes(hf_home)

    (record,) = evaluate_pending(board, cache_dir=tmp_path / "gt-cache")
    assert record["status"] == "done"
    assert record["metrics"]["segm"] == evaluate_coco(gt, detections)["segm"].stats
    assert _tree_bytes(hf_home) == before  # B: nothing of the submission in the Hugging Face cache
    assert _tree_bytes(scratch) == 0  # and nothing left in the temporary folder (unnamed files only)


def test_the_size_is_checked_through_the_api_before_any_byte_is_fetched(store, hub, tmp_path: Path):
    board, gt = store
    results = tmp_path / "big.json"
    results.write_bytes(dumps(predictions(gt)))
    ref = upload_results(results, "alice/big-results")
    hub.state.requests.clear()
    meta = SubmissionMeta("Big", "coco-n", "hard", "alice")
    with pytest.raises(SubmissionError) as caught:
        submit(board, ref, meta, limits=Limits(max_compressed_bytes=1000))
    assert caught.value.kind == "oversized"
    assert not [path for _, path in hub.state.requests if "/resolve/" in path]  # no byte of it was fetched
    assert not (board / "attempts").exists()  # refused before it counted as an attempt
    with pytest.raises(SubmissionError) as other:  # somebody else's file is not alice's submission
        submit(board, upload_results(results, "bob/results", token=hub.other_token), meta)
    assert other.value.kind == "reference" and "not a repo of alice" in str(other.value)


def test_a_hosted_file_that_is_gone_fails_its_scoring_with_a_reason(store, hub, tmp_path: Path):
    from huggingface_hub import HfApi

    board, gt = store
    results = tmp_path / "r.json"
    results.write_bytes(dumps(predictions(gt, limit=4)))
    ref = upload_results(results, "alice/gone")
    submit(board, ref, SubmissionMeta("Gone", "coco-n", "hard", "alice"))
    HfApi().delete_repo("alice/gone", repo_type="dataset")
    (record,) = evaluate_pending(board)
    assert (record["status"], record["error"]) == ("failed", "reference")


def _post_upload(port: int, cookie: str | None, size: int, *, abort: bool = False) -> int | None:
    """POST a multipart upload of ``size`` bytes to gradio's upload route (``abort``: send half the body and
    hang up); the HTTP status, or ``None`` when the server closed without one."""
    boundary = "hfnoisyboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"r.json\"\r\n"
            "Content-Type: application/json\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + size + len(tail)
    request = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               + (f"Cookie: session={cookie}\r\n" if cookie else "") + "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request + head)
        try:
            sent = 0
            chunk = b" " * (1 << 16)
            while sent < (size // 2 if abort else size):
                conn.sendall(chunk[: min(len(chunk), size - sent)])
                sent += len(chunk)
            if abort:
                return None
            conn.sendall(tail)
        except OSError:  # the server answered and closed before the body was sent: read its answer
            pass
        answer = b""
        try:
            while chunk := conn.recv(1 << 16):
                answer += chunk
        except OSError:
            pass
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else None


@pytest.mark.slow
def test_the_upload_door_keeps_nothing_from_a_visitor_who_is_not_signed_in(store, hub, tmp_path: Path, free_port,
                                                                          monkeypatch, capsys):
    """On the Space: unauthenticated uploads (whole, or aborted half way) are refused before a byte is stored;
    a signed-in user's small upload is taken and one over the cap refused; and the form takes a Hub reference.
    (``hub``: gradio outside a Space mocks its OAuth routes with the token's user, from the loopback Hub.)"""
    pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
    client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    from hf_noisy.leaderboard.app import build_app, launch_options
    from hf_noisy.leaderboard.uploads import DIRECT_UPLOAD_BYTES

    board, gt = store
    uploads = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    demo = build_app(board, on_space=True, evaluate=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(on_space=True, submitter=None))
    try:
        anonymous = [_post_upload(port, None, 3 * 2**20) for _ in range(3)]
        for _ in range(20):
            _post_upload(port, None, 3 * 2**20, abort=True)
        time.sleep(1.0)
        kept = _tree_bytes(uploads)
        with capsys.disabled():
            print(f"\n[uploads] bytes kept after 3 whole + 20 aborted 3 MiB unauthenticated uploads: {kept}")
        assert anonymous == [401, 401, 401] and kept == 0

        cookie = session_cookie("", "alice")
        assert _post_upload(port, cookie, 1000) == 200
        assert _post_upload(port, cookie, DIRECT_UPLOAD_BYTES + 2**20) == 413
        results = tmp_path / "r.json"
        results.write_bytes(dumps(predictions(gt, seed=9)))
        reference = str(upload_results(results, "alice/form-results"))
        client = client_module.Client(f"http://127.0.0.1:{port}/", headers={"Cookie": f"session={cookie}"},
                                      verbose=False)
        answer, _ = client.predict(reference, None, "coco-n", "hard", "From the Hub", "", "", "", "",
                                   api_name="/handler")
    finally:
        demo.close()
    assert answer.startswith("**Accepted** as `coco-n/hard/alice/"), answer
    (submission,) = list_submissions(board)
    assert submission.hosted == reference
    assert list_results(board) == {}  # evaluate=False here: queued only
