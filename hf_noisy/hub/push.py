"""Publish a built dataset folder to the Hugging Face Hub as a tagged, versioned dataset repository."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import HfNoisyError
from .build import METADATA_FILE

__all__ = ["PushResult", "push_dataset"]


@dataclass(frozen=True)
class PushResult:
    """Where the folder went: the repo, the commit and the tag pointing at it."""

    repo_id: str
    commit: str
    revision: str


def push_dataset(folder: str | os.PathLike, repo_id: str, *, revision: str | None = None, private: bool = False,
                 token: str | None = None) -> PushResult:
    """Upload a folder built by :func:`~hf_noisy.hub.build_coco_n` and tag the commit.

    Creates the dataset repo if missing (``exist_ok``), uploads the folder in one commit to ``main`` and
    creates the tag ``revision`` (default: the build's ``benchmark_version``, e.g. ``v1.0``) on that commit,
    so ``load_dataset(repo_id, "hard", revision="v1.0")`` keeps giving the same data. An existing tag is an
    error: a published version is never moved.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .load import build_folder

    folder = build_folder(folder)
    if not (folder / "README.md").is_file() or not (folder / METADATA_FILE).is_file():
        raise HfNoisyError(f"{folder} is not a built dataset folder (README.md and {METADATA_FILE} are required)")
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    tag = revision or metadata["benchmark_version"]
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message=f"{metadata['benchmark']} {tag} (hf-noisy {metadata['hf_noisy_version']}, seed {metadata['seed']})",
    )
    try:
        api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid,
                       tag_message=f"{metadata['benchmark']} benchmark {tag}")
    except HfHubHTTPError as err:
        raise HfNoisyError(f"could not tag {repo_id}@{commit.oid[:12]} as {tag!r} (does the tag exist already?): {err}") from None
    return PushResult(repo_id, commit.oid, tag)
