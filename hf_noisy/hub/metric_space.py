"""Publish an ``evaluate`` metric module folder as a Hub Space, the way ``evaluate`` looks metrics up.

``evaluate.load("ORG/NAME")`` downloads ``NAME.py`` from the Space repo ``ORG/NAME`` (``/spaces/ORG/NAME/resolve/
REVISION/NAME.py``; the revision is ``v{evaluate version}`` if that tag exists, else ``main``), so the repo name
must equal the script name. The Space itself shows the module's widget: ``README.md`` (the card, whose YAML header
says ``sdk: gradio`` and ``app_file: app.py``), ``app.py`` and ``requirements.txt``, as evaluate's own metric
Spaces have them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import HfNoisyError

__all__ = ["MetricPushResult", "SPACE_FILES", "push_metric"]

#: the files of a metric Space besides ``NAME.py``
SPACE_FILES = ("README.md", "app.py", "requirements.txt")


@dataclass(frozen=True)
class MetricPushResult:
    """The Space the module went to and the commit holding it."""

    repo_id: str
    commit: str
    files: tuple[str, ...]


def _check_module(folder: Path, repo_id: str) -> tuple[str, ...]:
    """The files to upload; an error naming the first thing missing or inconsistent."""
    from ..safe_yaml import YamlError, load, quote

    name = folder.name
    files = (f"{name}.py", *SPACE_FILES)
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise HfNoisyError(f"{folder} is not a metric module folder: {', '.join(missing)} missing")
    if repo_id.count("/") != 1 or repo_id.split("/")[1] != name:
        raise HfNoisyError(f"repo id {repo_id!r}: evaluate.load('ORG/NAME') fetches NAME.py from the Space ORG/NAME, "
                           f"so the Space must be named {name!r} (e.g. ORG/{name})")
    card = (folder / "README.md").read_text(encoding="utf-8")
    header = card.split("---", 2)[1] if card.startswith("---") and card.count("---") >= 2 else ""
    try:
        meta = load(header) or {}
    except YamlError as err:
        raise HfNoisyError(f"{folder / 'README.md'}: the card's YAML header: {err}") from None
    if not isinstance(meta, dict):
        raise HfNoisyError(f"{folder / 'README.md'}: the card's YAML header must be a mapping (key: value lines), "
                           f"got a {type(meta).__name__}")
    for key, wanted in (("sdk", "gradio"), ("app_file", "app.py")):
        if meta.get(key) != wanted:
            raise HfNoisyError(f"{folder / 'README.md'}: the card's YAML header needs {key}: {wanted} (a Space's "
                               f"settings), found {quote(meta.get(key))}")
    return files


def push_metric(folder: str | os.PathLike, repo_id: str, *, private: bool = False,
                token: str | None = None) -> MetricPushResult:
    """Upload the metric module ``folder`` (``NAME.py`` + :data:`SPACE_FILES`) to the gradio Space ``repo_id``
    (created if missing) in one commit to ``main``; afterwards ``evaluate.load(repo_id)`` loads it."""
    from huggingface_hub import HfApi

    from .access import hub_errors, require_token

    folder = Path(folder)
    files = _check_module(folder, repo_id)
    action = f"push-metric to spaces/{repo_id}"
    api = HfApi(token=require_token(token, action))
    with hub_errors(action):
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=str(folder),
                                   allow_patterns=list(files), commit_message=f"evaluate metric {folder.name}")
    return MetricPushResult(repo_id, commit.oid, files)
