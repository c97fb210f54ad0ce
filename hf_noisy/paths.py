"""Is an argument a local path or a Hugging Face Hub id? One rule, for datasets and checkpoints alike."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["looks_local"]

#: A Hub repo id: ``ORG/NAME``, each part letters, digits, ``-``, ``_`` or ``.``, not starting with ``.``/``-``.
_HUB_ID = re.compile(r"[A-Za-z0-9_][\w.-]{0,95}/[A-Za-z0-9_][\w.-]{0,95}")


def looks_local(text: str | os.PathLike) -> bool:
    """True when ``text`` can only mean a local path: it starts with ``.``, ``~`` or a separator, holds a
    backslash, is not of the form ``ORG/NAME`` (no ``/``, or more than one), or its ``ORG`` part is a folder
    here. Such an argument that does not exist is "no such folder" at once, never a Hub request."""
    text = os.fspath(text)
    if text.startswith((".", "~", "/", os.sep)) or "\\" in text or not _HUB_ID.fullmatch(text):
        return True
    return Path(text.split("/")[0]).is_dir()
