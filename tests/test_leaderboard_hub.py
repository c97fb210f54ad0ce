"""The hf://ORG leaderboard store through the loopback Hub (tests/hub_server.py): init with a benchmark pushed
to the Hub, submit, evaluate and serve, with the files landing in the two dataset repos; and token problems as
one line."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions
from huggingface_hub import HfApi

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import build_benchmark, export_coco, push_dataset
from hf_noisy.leaderboard import HubBackend, board_rows, list_results, list_submissions, open_backend
from hf_noisy.metrics import evaluate_coco

STORE = "hf://noisy-seg"
SUBMISSIONS, RESULTS = "noisy-seg/leaderboard-submissions", "noisy-seg/leaderboard-results"


@pytest.fixture(scope="module")
def benchmark(coco_tiny: Path, tmp_path_factory) -> tuple[Path, dict]:
    """A 4-image COCO-N build (clean only) and its clean validation ground truth as COCO."""
    root = tmp_path_factory.mktemp("lb-hub")
    built = build_benchmark("coco-n", root / "coco-n", coco_root=coco_tiny, max_images=4, configs=["clean"]).path
    gt = export_coco(built, "clean", "validation", root / "gt.json")
    return built, gt


def _submit(results: Path, model: str, *extra: str) -> int:
    return main(["leaderboard", "submit", str(results), "--store", STORE, "--benchmark", "coco-n", "--trained-on",
                 "hard", "--model-name", model, "--submitter", "alice", *extra])


@pytest.mark.slow
def test_init_submit_evaluate_serve_on_the_hub(benchmark, hub, tmp_path: Path, capsys):
    built, gt = benchmark
    push_dataset(built, "noisy-seg/coco-n", revision="v1.0")
    assert isinstance(open_backend(STORE), HubBackend)
    assert main(["leaderboard", "init", "--store", STORE, "--benchmark", "coco-n=noisy-seg/coco-n@v1.0"]) == 0
    assert "coco-n: noisy-seg/coco-n@v1.0" in capsys.readouterr().out
    api = HfApi()
    assert "store.json" in api.list_repo_files(SUBMISSIONS, repo_type="dataset")

    detections = predictions(gt, limit=15)
    results = tmp_path / "results.json"
    results.write_bytes(dumps(detections))
    assert _submit(results, "M2F R50") == 0
    (submission,) = list_submissions(STORE)
    folder = f"submissions/{submission.id}"
    assert {f"{folder}/results.json.gz", f"{folder}/meta.json"} <= set(api.list_repo_files(SUBMISSIONS, repo_type="dataset"))

    assert main(["leaderboard", "evaluate", "--store", STORE, "--cache-dir", str(tmp_path / "cache")]) == 0
    assert f"done    {submission.id}" in capsys.readouterr().out
    # the ground truth came from the Hub dataset's v1.0 tag, exported in the evaluator
    record = list_results(STORE)[submission.id]
    assert record["metrics"]["segm"] == evaluate_coco(gt, detections)["segm"].stats
    # the evaluator's claim (made before scoring) and the result, in the results repo (with the token of the last
    # transaction: see storage.HubBackend.transact)
    assert sorted(api.list_repo_files(RESULTS, repo_type="dataset")) == [
        ".gitattributes", ".transaction.json", f"claims/{submission.id}.json", f"results/{submission.id}.json"]
    assert main(["leaderboard", "evaluate", "--store", STORE, "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "nothing pending" in capsys.readouterr().out

    # serve: the board (as `hf-noisy leaderboard serve` builds it) answers, and its submit form scores through the Hub
    pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
    from hf_noisy.leaderboard.app import build_app, submit_form

    other = tmp_path / "other.json"
    other.write_bytes(dumps(predictions(gt, seed=5)))
    message = submit_form(STORE, "alice", str(other), "coco-n", "clean", "Second", cache_dir=tmp_path / "cache")
    assert message.startswith("**Accepted**"), message
    evaluated = [row["Model"] for row in board_rows(STORE)["coco-n"] if row["Source"] == "evaluated"]
    assert sorted(evaluated) == ["M2F R50", "Second"]
    demo = build_app(STORE, submitter="alice", evaluate=False)
    port = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                       footer_links=[]) and demo.server_port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{demo.server_port}/", timeout=30) as page:
            assert page.status == 200 and b"hf-noisy leaderboard" in page.read()
    finally:
        demo.close()
    assert port


@pytest.mark.parametrize("case", ["missing", "wrong"])
def test_token_problems_are_one_line(benchmark, hub, tmp_path: Path, monkeypatch, capsys, case):
    built, _ = benchmark
    if case == "missing":
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", "hf_not_a_token")
    assert main(["leaderboard", "init", "--store", STORE, "--benchmark", f"coco-n={built}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-noisy leaderboard init: error: ") and err.count("\n") == 1, err
    assert ("no Hugging Face token found" if case == "missing" else "the Hub refused the token") in err, err
    assert hub.state.repos == {}


def test_a_hub_store_name_is_an_org(hub):
    with pytest.raises(HfNoisyError, match="user or organisation name"):
        open_backend("hf://noisy-seg/extra")


def test_reading_files_that_do_not_exist_keeps_the_connection(hub):
    """A Hub store reads many files that are not there (the name index, leases): each 404's short body is
    read, so the keep-alive connection is reused (unread, it was dropped: one new connection and a reset on the
    server each time)."""
    backend = HubBackend("noisy-seg")
    backend.create()
    backend.write({"store.json": b"{}"}, "a file that exists")
    before = hub.state.connections
    for i in range(10):
        assert backend.read(f"names/missing-{i}.json") is None
        assert backend.read("store.json") == b"{}"
    assert hub.state.connections - before <= 1
