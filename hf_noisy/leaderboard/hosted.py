"""Results files hosted on the Hub: what a submission names instead of uploading its bytes to the board.

A reference is ``hf://datasets/OWNER/REPO@REVISION/PATH`` (or ``hf://OWNER/REPO@...`` for a model repo): a
file in the submitter's own repo at a pinned commit (40 hex digits), so the bytes the board checks are the
bytes it scores. The board asks the Hub API for the file's size before it fetches a byte
(:func:`hosted_size`), then streams it (:func:`stream_hosted`: the caps are counted as the bytes arrive, into
a file of the caller's, never the Hugging Face cache). :func:`upload_results` pushes a local file and returns
its reference (``hf-noisy leaderboard upload-results``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .submission import SubmissionError

__all__ = ["HostedFile", "fetch_hosted", "hosted_size", "parse_hosted", "stream_hosted", "upload_results"]

_PREFIX = "hf://"
_REFERENCE = re.compile(r"hf://(?:(?P<kind>datasets|models)/)?(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})"
                        r"@(?P<revision>[0-9a-f]{40})/(?P<path>[^\x00-\x1f\x7f]{1,500})")
#: Bytes streamed at a time.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class HostedFile:
    """A file of a Hub repo at a commit: ``repo_type`` (``"dataset"`` or ``"model"``), ``repo_id``
    (``OWNER/NAME``), ``revision`` (a commit id, 40 hex digits) and ``path`` in the repo."""

    repo_type: str
    repo_id: str
    revision: str
    path: str

    def __str__(self) -> str:
        kind = "datasets/" if self.repo_type == "dataset" else ""
        return f"{_PREFIX}{kind}{self.repo_id}@{self.revision}/{self.path}"

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]


def parse_hosted(text: str) -> HostedFile:
    """A reference's parts; raises :class:`SubmissionError` (``"reference"``) naming what is wrong, quoting at
    most 80 characters of it."""
    text = (text or "").strip()
    match = _REFERENCE.fullmatch(text)
    if match is None:
        hint = (" (pin a commit: @ and its 40 hex digits, not a branch or tag)"
                if text.startswith(_PREFIX) and not re.search(r"@[0-9a-f]{40}/", text) else "")
        raise SubmissionError("reference", f"{text[:80]!r} is not a Hub file reference "
                              f"hf://datasets/OWNER/REPO@COMMIT/PATH{hint}")
    path = match["path"]
    if path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
        raise SubmissionError("reference", f"{path[:80]!r} is not a file path inside the repo")
    return HostedFile("dataset" if match["kind"] == "datasets" else "model", match["repo"], match["revision"], path)


def _api(token: str | bool | None = None):  # noqa: ANN202 -- huggingface_hub is imported here only
    from huggingface_hub import HfApi

    return HfApi(token=token)


def hosted_size(ref: HostedFile, *, token: str | bool | None = None) -> int:
    """The file's size in bytes, from the Hub API (nothing of the file is fetched); raises
    :class:`SubmissionError` (``"reference"``) when the repo, commit or file is not there."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        (info,) = [entry for entry in _api(token).get_paths_info(ref.repo_id, [ref.path], revision=ref.revision,
                                                                   repo_type=ref.repo_type)
                   if entry.path == ref.path and hasattr(entry, "size")] or [None]
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        raise SubmissionError("reference", f"{ref}: the Hub cannot show it (HTTP {status}): is the repo public, "
                              "and is the commit in it?") from None
    if info is None or not hasattr(info, "blob_id"):
        raise SubmissionError("reference", f"{ref}: no such file at that commit")
    return int(info.size)


def stream_hosted(ref: HostedFile, cap: int, *, token: str | bool | None = None) -> Iterator[bytes]:
    """The file's bytes, a chunk (at most 1 MiB) at a time, straight from the Hub (no cache); raises
    :class:`SubmissionError` (``"oversized"``) as soon as more than ``cap`` bytes arrive (a size that changed
    since :func:`hosted_size`), ``"reference"`` when the Hub refuses the file."""
    from huggingface_hub import constants, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session

    url = hf_hub_url(ref.repo_id, ref.path, repo_type=ref.repo_type, revision=ref.revision,
                     endpoint=constants.ENDPOINT)
    received = 0
    with get_session().stream("GET", url, headers=build_hf_headers(token=token), follow_redirects=True) as answer:
        if answer.status_code != 200:
            raise SubmissionError("reference", f"{ref}: the Hub answered HTTP {answer.status_code}")
        for chunk in answer.iter_bytes(_CHUNK):
            received += len(chunk)
            if received > cap:
                raise SubmissionError("oversized", f"{ref}: more than {cap:,} bytes; the cap is {cap:,}")
            yield chunk


def fetch_hosted(ref: HostedFile, out: BinaryIO, cap: int, *, token: str | bool | None = None) -> str:
    """Stream the file into ``out`` (an open file of the caller's, e.g. an unnamed temporary file, which no exit
    path leaves behind); return its sha256 (hex)."""
    digest = hashlib.sha256()
    for chunk in stream_hosted(ref, cap, token=token):
        digest.update(chunk)
        out.write(chunk)
    out.flush()
    return digest.hexdigest()


def upload_results(path: str | os.PathLike, repo_id: str, *, path_in_repo: str | None = None,
                   token: str | None = None, private: bool = False) -> HostedFile:
    """Push a local results file to the dataset repo ``repo_id`` (created if missing) and return its reference
    at the commit that added it (what to paste into the board's form or ``leaderboard submit``)."""
    api = _api(token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    name = path_in_repo or os.path.basename(os.fspath(path))
    commit = api.upload_file(path_or_fileobj=os.fspath(path), path_in_repo=name, repo_id=repo_id,
                             repo_type="dataset", commit_message=f"Leaderboard results: {name}")
    return HostedFile("dataset", repo_id, commit.oid, name)
