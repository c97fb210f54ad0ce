"""The loopback Hub itself, through huggingface_hub's real client: commits, LFS, revisions, pagination, ranges,
refs, and the token and namespace rules the Hub enforces."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError


def test_endpoint_is_loopback(hub):
    from huggingface_hub import constants

    assert constants.ENDPOINT == hub.endpoint and hub.endpoint.startswith("http://127.0.0.1:")
    assert HfApi().whoami()["name"] == hub.user


@pytest.mark.slow
def test_commit_lfs_revisions_tree_and_ranges(hub, tmp_path):
    api = HfApi()
    repo = f"{hub.org}/demo"
    api.create_repo(repo, repo_type="dataset")
    payload = bytes(range(256)) * 40  # an LFS file (.parquet) of 10240 bytes
    first = api.create_commit(repo, repo_type="dataset", commit_message="first", operations=[
        CommitOperationAdd("README.md", b"---\n---\n# demo\n"),
        CommitOperationAdd("data/a/train-0.parquet", payload),
        *[CommitOperationAdd(f"data/b/{n}.txt", f"{n}".encode()) for n in range(5)],
    ])
    api.create_tag(repo, tag="v1", repo_type="dataset", revision=first.oid)
    second = api.create_commit(repo, repo_type="dataset", commit_message="second",
                               operations=[CommitOperationAdd("data/b/0.txt", b"changed")], parent_commit=first.oid)

    info = api.dataset_info(repo, files_metadata=True)
    assert info.sha == second.oid
    lfs = {s.rfilename: s.lfs for s in info.siblings}["data/a/train-0.parquet"]
    assert lfs is not None and lfs.size == len(payload)
    # revisions: the tag still gives the first commit's file
    old = hf_hub_download(repo, "data/b/0.txt", repo_type="dataset", revision="v1", cache_dir=tmp_path)
    new = hf_hub_download(repo, "data/b/0.txt", repo_type="dataset", cache_dir=tmp_path)
    assert open(old, "rb").read() == b"0" and open(new, "rb").read() == b"changed"
    big = hf_hub_download(repo, "data/a/train-0.parquet", repo_type="dataset", revision="v1", cache_dir=tmp_path)
    assert open(big, "rb").read() == payload
    # the tree is paginated (3 entries a page) and complete
    hub.state.page_size = 3
    files = api.list_repo_files(repo, repo_type="dataset", revision="v1")
    assert sorted(files) == sorted([".gitattributes", "README.md", "data/a/train-0.parquet",
                                    *[f"data/b/{n}.txt" for n in range(5)]])
    assert sum(1 for method, path in hub.state.requests if "/tree/" in path) >= 3
    # ranges, as HfFileSystem reads them for streaming
    fs = HfFileSystem()
    with fs.open(f"datasets/{repo}@v1/data/a/train-0.parquet", "rb", block_size=1000) as f:
        f.seek(5000)
        assert f.read(300) == payload[5000:5300]
    assert fs.info(f"datasets/{repo}/data/b")["type"] == "directory"
    refs = api.list_repo_refs(repo, repo_type="dataset")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first.oid)]
    api.create_branch(repo, branch="dev", revision="v1", repo_type="dataset")
    assert hf_hub_download(repo, "data/b/0.txt", repo_type="dataset", revision="dev", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "README.md", repo_type="dataset", revision="v9", cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "missing.txt", repo_type="dataset", cache_dir=tmp_path)


def test_stale_parent_commit_is_refused(hub):
    api = HfApi()
    repo = api.create_repo(f"{hub.user}/race").repo_id
    base = api.repo_info(repo).sha
    api.create_commit(repo, operations=[CommitOperationAdd("a.txt", b"a")], commit_message="a", parent_commit=base)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(repo, operations=[CommitOperationAdd("b.txt", b"b")], commit_message="b", parent_commit=base)
    assert err.value.response.status_code == 412
    assert "b.txt" not in api.list_repo_files(repo)


def test_tokens_and_namespaces(hub, monkeypatch):
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token="hf_wrong").whoami()
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=hub.other_token).create_repo(f"{hub.org}/not-bobs", repo_type="dataset")
    assert err.value.response.status_code == 403
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HfHubHTTPError) as err:
        HfApi().create_repo(f"{hub.org}/anonymous", repo_type="dataset")
    assert err.value.response.status_code == 401
    HfApi(token=hub.token).create_repo(f"{hub.org}/secret", repo_type="dataset", private=True)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=hub.other_token).dataset_info(f"{hub.org}/secret")
    assert HfApi(token=hub.token).dataset_info(f"{hub.org}/secret").private


def test_tag_exists_is_a_conflict(hub):
    api = HfApi()
    repo = api.create_repo(f"{hub.org}/tagged", repo_type="dataset").repo_id
    api.create_tag(repo, tag="v1.0", repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(repo, tag="v1.0", repo_type="dataset")
    assert err.value.response.status_code == 409


def test_other_hosts_are_refused(hub):
    with pytest.raises(ConnectionRefusedError, match="loopback Hub only"):
        HfApi(endpoint="https://huggingface.co").whoami()


def test_without_the_fixture_nothing_goes_online():
    from huggingface_hub.errors import OfflineModeIsEnabled

    with pytest.raises(OfflineModeIsEnabled):
        HfApi().dataset_info("noisy-seg/coco-n")


def test_concurrent_writers_with_a_parent_commit_one_wins(hub):
    """What the Hub store's check-then-write relies on: of N commits made on the same parent, one lands."""
    from concurrent.futures import ThreadPoolExecutor

    api = HfApi()
    repo = api.create_repo(f"{hub.org}/contended", repo_type="dataset").repo_id
    parent = api.dataset_info(repo).sha

    def write(n: int) -> int:
        try:
            api.create_commit(repo, repo_type="dataset", commit_message=f"writer {n}", parent_commit=parent,
                              operations=[CommitOperationAdd(f"claims/{n}.json", b"{}")])
        except HfHubHTTPError as err:
            return err.response.status_code
        return 200

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(write, range(6)))
    assert statuses == [200] + [412] * 5
    assert len([f for f in api.list_repo_files(repo, repo_type="dataset") if f.startswith("claims/")]) == 1


def test_refs_can_be_deleted(hub):
    api = HfApi()
    repo = api.create_repo(f"{hub.org}/refs", repo_type="dataset").repo_id
    api.create_tag(repo, tag="v1", repo_type="dataset")
    api.create_branch(repo, branch="dev", repo_type="dataset")
    api.delete_tag(repo, tag="v1", repo_type="dataset")
    api.delete_branch(repo, branch="dev", repo_type="dataset")
    refs = api.list_repo_refs(repo, repo_type="dataset")
    assert refs.tags == [] and [b.name for b in refs.branches] == ["main"]


def test_subprocesses_reach_the_loopback_hub(hub):
    """A test's subprocess (a CLI run, a concurrent writer) inherits the endpoint, online mode and the token."""
    import subprocess
    import sys

    code = "from huggingface_hub import HfApi, constants; print(constants.ENDPOINT, HfApi().whoami()['name'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [hub.endpoint, hub.user]


@pytest.mark.slow
def test_datasets_push_to_hub_round_trip(hub):
    """datasets' own writer (preupload, LFS, commit, README via HfFileSystem) and reader, at a branch revision."""
    from datasets import Dataset, load_dataset

    rows = Dataset.from_dict({"id": list(range(7)), "text": [f"row {n}" for n in range(7)]})
    repo = f"{hub.user}/rows"
    HfApi().create_repo(repo, repo_type="dataset")
    HfApi().create_branch(repo, branch="v2", repo_type="dataset")
    rows.push_to_hub(repo, config_name="small", revision="v2", max_shard_size=100)
    parquet = [f for f in HfApi().list_repo_files(repo, repo_type="dataset", revision="v2") if f.endswith(".parquet")]
    assert len(parquet) > 1  # several shards
    assert load_dataset(repo, "small", split="train", revision="v2").to_dict() == rows.to_dict()
    assert list(load_dataset(repo, "small", split="train", revision="v2", streaming=True)) == list(rows)
