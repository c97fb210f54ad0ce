"""hf-noisy push through the loopback Hub (tests/hub_server.py): the pushed tag loads with datasets exactly as
the local folder does (in memory, streaming, with columns=), a published tag is never moved, and token problems
are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hf_noisy.cli import main
from hf_noisy.hub import build_benchmark

REPO = "noisy-seg/coco-n"


@pytest.fixture(scope="module")
def builds(coco_tiny: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Two small COCO-N builds that differ only in the seed (so their hard configs differ), 2 images a shard."""
    root = tmp_path_factory.mktemp("push")
    return tuple(build_benchmark("coco-n", root / f"seed{seed}", coco_root=coco_tiny, max_images=3,
                                 images_per_shard=2, seed=seed, configs=["clean", "hard"]).path for seed in (1, 2))


def _plain(rows) -> list[dict]:
    """Rows with the image as its encoded bytes (a PIL image compares by identity)."""
    from datasets import Image

    return list(rows.cast_column("image", Image(decode=False))) if "image" in rows.features else list(rows)


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("hf-noisy ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_push_then_load_dataset_at_the_tag(builds, hub, capsys):
    from datasets import load_dataset

    first, second = builds
    assert main(["push", str(first), "--repo-id", REPO, "--revision", "v1.0"]) == 0
    assert f"datasets/{REPO}" in capsys.readouterr().out
    assert main(["push", str(second), "--repo-id", REPO, "--revision", "v1.1"]) == 0  # main moves on
    for split in ("train", "validation"):
        local = load_dataset(str(first), "hard", split=split)
        assert local.num_rows > 0
        remote = load_dataset(REPO, "hard", split=split, revision="v1.0")
        assert _plain(remote) == _plain(local)
        streamed = load_dataset(REPO, "hard", split=split, revision="v1.0", streaming=True)
        assert _plain(streamed) == _plain(local)
        some = load_dataset(REPO, "hard", split=split, revision="v1.0", columns=["image_id", "objects"])
        assert list(some.features) == ["image_id", "objects"]
        assert list(some) == list(local.select_columns(["image_id", "objects"]))
        streamed_some = load_dataset(REPO, "hard", split=split, revision="v1.0", streaming=True,
                                     columns=["image_id", "objects"])
        assert list(streamed_some) == list(some)
    # the newer tag (and main) hold the second build, whose hard config is different
    newer = load_dataset(REPO, "hard", split="train", revision="v1.1", columns=["objects"])
    assert list(newer) == list(load_dataset(str(second), "hard", split="train", columns=["objects"]))
    assert list(newer) != list(load_dataset(str(first), "hard", split="train", columns=["objects"]))
    # the shards went through git-LFS, the tags point at the two commits
    files = HfApi().list_repo_tree(REPO, repo_type="dataset", recursive=True, revision="v1.0")
    assert any(getattr(f, "lfs", None) and f.path.endswith(".parquet") for f in files)
    tags = {t.name: t.target_commit for t in HfApi().list_repo_refs(REPO, repo_type="dataset").tags}
    assert set(tags) == {"v1.0", "v1.1"} and tags["v1.0"] != tags["v1.1"]


def test_a_second_push_to_a_tag_is_refused(builds, hub, capsys):
    first, second = builds
    assert main(["push", str(first), "--repo-id", REPO, "--revision", "v1.0"]) == 0
    api = HfApi()
    before = api.dataset_info(REPO).sha
    assert main(["push", str(second), "--repo-id", REPO, "--revision", "v1.0"]) == 2
    err = capsys.readouterr().err  # upload progress bars, then the error line
    assert "Traceback" not in err and "'v1.0' exists already" in _error_line(err)
    assert api.dataset_info(REPO).sha == before  # refused before anything was uploaded
    assert {t.name: t.target_commit for t in api.list_repo_refs(REPO, repo_type="dataset").tags} == {"v1.0": before}


def test_default_tag_is_the_build_version(builds, hub):
    assert main(["push", str(builds[0]), "--repo-id", f"{hub.user}/mine"]) == 0
    # a subset build is labelled custom, never v1.0
    assert [t.name for t in HfApi().list_repo_refs(f"{hub.user}/mine", repo_type="dataset").tags] == ["custom"]


@pytest.mark.parametrize("case", ["missing", "wrong", "other namespace"])
def test_token_problems_are_one_line(builds, hub, monkeypatch, capsys, case):
    if case == "missing":
        monkeypatch.delenv("HF_TOKEN")
    else:
        monkeypatch.setenv("HF_TOKEN", "hf_not_a_token" if case == "wrong" else hub.other_token)
    assert main(["push", str(builds[0]), "--repo-id", REPO, "--revision", "v1.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-noisy push: error: push to ") and err.count("\n") == 1, err
    expected = {"missing": "no Hugging Face token found", "wrong": "the Hub refused the token (wrong or expired)",
                "other namespace": "may not write there"}[case]
    assert expected in err, err
    assert hub.state.repos == {}


def test_an_incomplete_folder_is_not_pushed(tmp_path: Path, hub):
    (tmp_path / "README.md").write_text("---\n---\n")
    assert main(["push", str(tmp_path), "--repo-id", REPO]) == 2
    assert hub.state.repos == {} and hub.state.requests == []
