"""hf-noisy push, offline: the exact calls made to huggingface_hub's real HfApi methods (stubbed)."""

from __future__ import annotations

from pathlib import Path

from types import SimpleNamespace

import pytest
from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.errors import HfHubHTTPError

from hf_noisy.cli import main
from hf_noisy.hub import build_coco_n, push_dataset

OID = "a" * 40


@pytest.fixture(scope="module")
def built(coco_tiny: Path, tmp_path_factory) -> Path:
    return build_coco_n(coco_tiny, tmp_path_factory.mktemp("push") / "coco-n", max_images=2, levels=["clean"]).path


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, tuple, dict]]:
    record: list[tuple[str, tuple, dict]] = []

    def stub(name, result=None):
        def method(self, *args, **kwargs):
            record.append((name, args, kwargs))
            return result
        monkeypatch.setattr(HfApi, name, method)

    stub("create_repo")
    stub("upload_folder", CommitInfo(commit_url=f"https://huggingface.co/datasets/noisy-seg/coco-n/commit/{OID}",
                                     commit_message="m", commit_description="", oid=OID))
    stub("create_tag")
    return record


def test_push_creates_uploads_and_tags(built: Path, calls):
    result = push_dataset(built, "noisy-seg/coco-n", revision="v1.0")
    assert [name for name, _, _ in calls] == ["create_repo", "upload_folder", "create_tag"]
    (_, args, kwargs), (_, _, upload), (_, targs, tag) = calls
    assert args == ("noisy-seg/coco-n",) and kwargs == {"repo_type": "dataset", "private": False, "exist_ok": True}
    assert upload["repo_id"] == "noisy-seg/coco-n" and upload["repo_type"] == "dataset"
    assert upload["folder_path"] == str(built) and "COCO-N v1.0" in upload["commit_message"]
    assert targs == ("noisy-seg/coco-n",) and tag["tag"] == "v1.0" and tag["revision"] == OID
    assert tag["repo_type"] == "dataset"
    assert (result.commit, result.revision) == (OID, "v1.0")


def test_default_tag_is_the_build_version(built: Path, calls):
    push_dataset(built, "me/mine")
    assert calls[-1][2]["tag"] == "custom"  # a subset build is labelled custom, never v1.0


def test_an_existing_tag_is_an_error(built: Path, calls, monkeypatch, capsys):
    def conflict(self, *args, **kwargs):
        response = SimpleNamespace(status_code=409, headers={}, request=None)  # what HfHubHTTPError reads
        raise HfHubHTTPError("409 Conflict: tag exists", response=response)

    monkeypatch.setattr(HfApi, "create_tag", conflict)
    assert main(["push", str(built), "--repo-id", "noisy-seg/coco-n", "--revision", "v1.0"]) == 2
    assert "does the tag exist already" in capsys.readouterr().err


def test_an_incomplete_folder_is_not_pushed(tmp_path: Path, calls):
    (tmp_path / "README.md").write_text("---\n---\n")
    assert main(["push", str(tmp_path), "--repo-id", "noisy-seg/coco-n"]) == 2
    assert calls == []
