"""Publish a built dataset folder to the Hugging Face Hub as a tagged, versioned dataset repository."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..errors import HfNoisyError
from .build import METADATA_FILE

__all__ = ["PushResult", "check_redistribution", "push_dataset"]


@dataclass(frozen=True)
class PushResult:
    """Where the folder went: the repo, the commit and the tag pointing at it."""

    repo_id: str
    commit: str
    revision: str


def check_redistribution(metadata: dict, *, have_rights: bool = False) -> None:
    """Refuse (:class:`HfNoisyError`, one line) a folder holding image bytes from a source whose terms forbid
    redistributing them (``images_redistributable: false`` in the build metadata, e.g. Cityscapes-N built with
    ``images="embedded"``), unless ``have_rights``: the uploader states they hold the rights. Annotation-only
    folders (``images: "none"``) and sources that allow it (COCO, LVIS: Flickr images under their owners' Creative
    Commons licences) always pass. Folders built before the flag existed are judged by their benchmark id."""
    from .. import benchmarks

    allowed = metadata.get("images_redistributable")
    if allowed is None:
        benchmark = metadata.get("benchmark_id")
        allowed = benchmarks.get(benchmark).images_redistributable if benchmark in benchmarks.ids() else True
    if metadata.get("images", "embedded") != "none" and not allowed and not have_rights:
        raise HfNoisyError(
            f"{metadata.get('benchmark', 'this folder')} holds images ({metadata.get('images')}) whose source terms "
            "forbid redistribution; rebuild it annotation-only (images='none'; hf-noisy build --image-storage none), "
            "or pass have_redistribution_rights=True (hf-noisy push --i-have-redistribution-rights) if you hold them")


def push_dataset(folder: str | os.PathLike, repo_id: str, *, revision: str | None = None, private: bool = False,
                 token: str | None = None, have_redistribution_rights: bool = False) -> PushResult:
    """Upload a folder built by :func:`~hf_noisy.hub.build_benchmark` and tag the commit.

    Creates the dataset repo if missing (``exist_ok``), uploads the folder in one commit to ``main`` and
    creates the tag ``revision`` (default: the build's ``benchmark_version``, e.g. ``v1.0``) on that commit,
    so ``load_dataset(repo_id, "hard", revision="v1.0")`` keeps giving the same data. An existing tag is an
    error, found before anything is uploaded: a published version is never moved. A folder with images its source
    forbids redistributing is refused before anything is sent unless ``have_redistribution_rights`` (see
    :func:`check_redistribution`). Hub errors (no token, a refused token, no write access) are one-line
    :class:`~hf_noisy.errors.HfNoisyError` messages.
    """
    from huggingface_hub import HfApi

    from .access import hub_errors, require_token

    from .load import build_folder

    folder = build_folder(folder)
    if not (folder / "README.md").is_file() or not (folder / METADATA_FILE).is_file():
        raise HfNoisyError(f"{folder} is not a built dataset folder (README.md and {METADATA_FILE} are required)")
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    check_redistribution(metadata, have_rights=have_redistribution_rights)
    tag = revision or metadata["benchmark_version"]
    api = HfApi(token=require_token(token, f"push to datasets/{repo_id}"))
    with hub_errors(f"push to datasets/{repo_id}"):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        # Refuse before uploading: a refused push leaves the repo as it was.
        if tag in {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}:
            raise HfNoisyError(f"push to datasets/{repo_id}: the tag {tag!r} exists already; a published version "
                               "is never moved (push under a new --revision)")
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(folder),
            commit_message=f"{metadata['benchmark']} {tag} (hf-noisy {metadata['hf_noisy_version']}, seed {metadata['seed']})",
        )
    with hub_errors(f"could not tag datasets/{repo_id}@{commit.oid[:12]} as {tag!r} (does the tag exist already?)"):
        api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid,
                       tag_message=f"{metadata['benchmark']} benchmark {tag}")
    return PushResult(repo_id, commit.oid, tag)
