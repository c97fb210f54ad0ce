"""The Hub store, offline: the exact calls made to huggingface_hub's real HfApi methods (stubbed over an
in-memory pair of repos), through init, submit and evaluate."""

from __future__ import annotations

from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import EntryNotFoundError

from hf_noisy.leaderboard import (HubBackend, SubmissionMeta, board_rows, evaluate_pending, init_store,
                                  list_results, open_backend, parse_benchmark_sources, submit)
from hf_noisy.metrics import evaluate_coco

SUBMISSIONS, RESULTS = "noisy-seg/leaderboard-submissions", "noisy-seg/leaderboard-results"


@pytest.fixture
def hub(monkeypatch, tmp_path: Path) -> tuple[dict, list]:
    repos: dict[str, dict[str, bytes]] = {}
    calls: list[tuple] = []
    downloads = tmp_path / "downloads"

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        repos.setdefault(repo_id, {})

    def create_commit(self, repo_id, operations, **kwargs):
        operations = list(operations)
        assert all(isinstance(op, CommitOperationAdd) for op in operations)
        calls.append(("create_commit", repo_id, [op.path_in_repo for op in operations], kwargs))
        for op in operations:
            repos[repo_id][op.path_in_repo] = op.path_or_fileobj

    def list_repo_files(self, repo_id, **kwargs):
        calls.append(("list_repo_files", repo_id, kwargs))
        return list(repos[repo_id])

    def hf_hub_download(self, repo_id, filename, **kwargs):
        calls.append(("hf_hub_download", repo_id, filename, kwargs))
        if filename not in repos[repo_id]:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        local = downloads / repo_id / filename
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(repos[repo_id][filename])
        return str(local)

    for name, method in (("create_repo", create_repo), ("create_commit", create_commit),
                         ("list_repo_files", list_repo_files), ("hf_hub_download", hf_hub_download)):
        monkeypatch.setattr(HfApi, name, method)
    return repos, calls


def test_init_submit_evaluate_on_the_hub(hub, tmp_path: Path):
    repos, calls = hub
    gt = shapes_gt(tmp_path / "shapes")
    gt_file = write_gt(gt, tmp_path / "val.json")
    store = "hf://noisy-seg"
    assert isinstance(open_backend(store), HubBackend)

    init_store(store, parse_benchmark_sources([f"coco-n={gt_file}"]))
    dataset = {"repo_type": "dataset"}
    assert calls == [
        ("create_repo", SUBMISSIONS, {"repo_type": "dataset", "private": False, "exist_ok": True}),
        ("create_repo", RESULTS, {"repo_type": "dataset", "private": False, "exist_ok": True}),
        ("hf_hub_download", SUBMISSIONS, "store.json", dataset),
        ("create_commit", SUBMISSIONS, ["store.json"], {"commit_message": "Leaderboard: benchmark sources", **dataset}),
    ]

    calls.clear()
    detections = predictions(gt, limit=15)
    submission = submit(store, dumps(detections), SubmissionMeta("M2F R50", "coco-n", "hard", "alice"))
    folder = f"submissions/{submission.id}"
    assert calls == [
        ("hf_hub_download", SUBMISSIONS, "store.json", dataset),
        ("list_repo_files", SUBMISSIONS, dataset),
        ("hf_hub_download", SUBMISSIONS, "store.json", dataset),
        # One commit: the detections and the marker land together or not at all.
        ("create_commit", SUBMISSIONS, [f"{folder}/results.json.gz", f"{folder}/meta.json"],
         {"commit_message": f"Submission {submission.id}", **dataset}),
    ]

    calls.clear()
    (record,) = evaluate_pending(store)
    assert calls == [
        ("list_repo_files", RESULTS, dataset),
        ("list_repo_files", SUBMISSIONS, dataset),
        ("hf_hub_download", SUBMISSIONS, f"{folder}/meta.json", dataset),
        ("hf_hub_download", SUBMISSIONS, "store.json", dataset),
        ("hf_hub_download", SUBMISSIONS, f"{folder}/results.json.gz", dataset),
        ("create_commit", RESULTS, [f"results/{submission.id}.json"],
         {"commit_message": f"Result of {submission.id}: done", **dataset}),
    ]
    assert record["metrics"]["segm"] == evaluate_coco(gt, detections)["segm"].stats
    assert set(repos[RESULTS]) == {f"results/{submission.id}.json"}
    assert list_results(store)[submission.id] == record
    assert [r["Model"] for r in board_rows(store)["coco-n"] if r["Source"] == "evaluated"] == ["M2F R50"]


def test_a_hub_store_name_is_an_org(hub):
    with pytest.raises(ValueError, match="user or organisation name"):
        open_backend("hf://noisy-seg/extra")
