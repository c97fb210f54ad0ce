"""The Hub store, offline: the calls made to huggingface_hub's real HfApi methods (stubbed over an in-memory
pair of repos with commit history and ``parent_commit`` checks), through init, submit and evaluate."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from hf_noisy.leaderboard import (HubBackend, SubmissionMeta, board_rows, evaluate_pending, init_store,
                                  list_results, open_backend, parse_benchmark_sources, submit)
from hf_noisy.metrics import evaluate_coco

SUBMISSIONS, RESULTS = "noisy-seg/leaderboard-submissions", "noisy-seg/leaderboard-results"


@pytest.fixture
def hub(monkeypatch, tmp_path: Path) -> tuple[dict, list]:
    """Repos as lists of states, one per commit; a commit whose ``parent_commit`` is not the head gets 412, as
    the Hub answers."""
    history: dict[str, list[dict[str, bytes]]] = {}
    calls: list[tuple] = []
    downloads = tmp_path / "downloads"

    def state(repo_id, revision=None):
        return history[repo_id][-1 if revision is None else int(revision)]

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        history.setdefault(repo_id, [{}])

    def repo_info(self, repo_id, **kwargs):
        calls.append(("repo_info", repo_id, kwargs))
        return SimpleNamespace(sha=str(len(history[repo_id]) - 1))

    def create_commit(self, repo_id, operations, **kwargs):
        operations = list(operations)
        assert all(isinstance(op, CommitOperationAdd) for op in operations)
        calls.append(("create_commit", repo_id, [op.path_in_repo for op in operations], kwargs))
        parent = kwargs.get("parent_commit")
        if parent is not None and parent != str(len(history[repo_id]) - 1):
            raise HfHubHTTPError("412 Precondition Failed: parent commit is not the head",
                                 response=httpx.Response(412, request=httpx.Request("POST", "http://hub/commit")))
        history[repo_id].append({**history[repo_id][-1], **{op.path_in_repo: op.path_or_fileobj for op in operations}})

    def list_repo_files(self, repo_id, **kwargs):
        calls.append(("list_repo_files", repo_id, kwargs))
        return list(state(repo_id, kwargs.get("revision")))

    def hf_hub_download(self, repo_id, filename, **kwargs):
        calls.append(("hf_hub_download", repo_id, filename, kwargs))
        files = state(repo_id, kwargs.get("revision"))
        if filename not in files:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        local = downloads / repo_id / str(kwargs.get("revision")) / filename
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(files[filename])
        return str(local)

    for name, method in (("create_repo", create_repo), ("create_commit", create_commit), ("repo_info", repo_info),
                         ("list_repo_files", list_repo_files), ("hf_hub_download", hf_hub_download)):
        monkeypatch.setattr(HfApi, name, method)
    return history, calls


def _commits(calls: list[tuple]) -> list[tuple]:
    return [(repo, paths, kwargs.get("parent_commit")) for name, repo, paths, kwargs, *_ in
            (c + (None,) for c in calls if c[0] == "create_commit")]


def test_init_submit_evaluate_on_the_hub(hub, tmp_path: Path):
    history, calls = hub
    gt = shapes_gt(tmp_path / "shapes")
    gt_file = write_gt(gt, tmp_path / "val.json")
    store = "hf://noisy-seg"
    assert isinstance(open_backend(store), HubBackend)

    init_store(store, parse_benchmark_sources([f"coco-n={gt_file}"]))
    assert [c[:2] for c in calls[:2]] == [("create_repo", SUBMISSIONS), ("create_repo", RESULTS)]
    assert _commits(calls) == [(SUBMISSIONS, ["store.json"], None)]

    calls.clear()
    detections = predictions(gt, limit=15)
    submission = submit(store, dumps(detections), SubmissionMeta("M2F R50", "coco-n", "hard", "alice"))
    folder = f"submissions/{submission.id}"
    (repo, attempt, attempt_parent), (_, stored, parent) = _commits(calls)
    # First the upload is counted (attempts/), then -- one commit on the head the rules were checked on --
    # the name index, the detections and the marker land together or not at all.
    assert repo == SUBMISSIONS and len(attempt) == 1 and attempt[0].startswith("attempts/alice/")
    assert attempt_parent == "1"
    assert stored[-2:] == [f"{folder}/results.json.gz", f"{folder}/meta.json"] and parent == "2"
    assert all(path.startswith("names/") for path in stored[:-2])

    calls.clear()
    (record,) = evaluate_pending(store)
    claim, result = _commits(calls)
    assert claim == (RESULTS, [f"claims/{submission.id}.json"], "0")
    assert result == (RESULTS, [f"results/{submission.id}.json"], "1")
    assert record["metrics"]["segm"] == evaluate_coco(gt, detections)["segm"].stats
    assert set(history[RESULTS][-1]) == {f"results/{submission.id}.json", f"claims/{submission.id}.json"}
    assert list_results(store)[submission.id] == record
    assert [r["Model"] for r in board_rows(store)["coco-n"] if r["Source"] == "evaluated"] == ["M2F R50"]
    assert evaluate_pending(store) == []


def test_a_writer_that_lost_the_race_checks_again_on_the_new_head(hub, tmp_path: Path):
    """Two writers pass the check on the same head; the Hub refuses the second commit (412), its transaction
    reads the new head, and its check now refuses: at most one of them is stored."""
    history, calls = hub
    backend = open_backend("hf://noisy-seg")
    backend.create()
    seen = []

    def claim(view):
        seen.append(view.list("claims/"))
        if view.read("claims/x.json") is not None:
            return {}, False
        if len(seen) == 1:  # another replica commits its claim between our read and our commit
            backend.write({"claims/x.json": b"other"}, "the other replica")
        return {"claims/x.json": b"mine"}, True

    assert backend.transact("results", claim, "claim x") is False
    assert seen == [[], ["claims/x.json"]] and history[RESULTS][-1]["claims/x.json"] == b"other"
    assert [parent for *_, parent in _commits(calls)] == [None, "0"]  # ours, on the stale head, was refused


def test_a_hub_store_name_is_an_org(hub):
    with pytest.raises(ValueError, match="user or organisation name"):
        open_backend("hf://noisy-seg/extra")
