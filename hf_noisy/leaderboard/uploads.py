"""The board's direct-upload door (gradio's ``POST .../upload``): shut to anyone not signed in, before a byte
of the body is read, so unauthenticated traffic leaves nothing on the Space's disk.

Hub-hosted results files (:mod:`.hosted`) are the way to submit; a direct upload stays for small files only
(:data:`DIRECT_UPLOAD_BYTES`, gradio's ``max_file_size``), from a signed-in Hub user on a Space (gradio's OAuth
session, which its session middleware has decoded into the ASGI scope by the time this one runs) or, on a
local board, only when it was started with ``--submitter``. Uploaded files go to gradio's cache, which the
app deletes on a timer (:data:`UPLOAD_CACHE`) and after each submit.
"""

from __future__ import annotations

import json
import time
from typing import Any, Awaitable, Callable

__all__ = ["DIRECT_UPLOAD_BYTES", "UPLOAD_CACHE", "SignedInUploads"]

#: The largest direct upload, in bytes (larger results files are submitted from the Hub).
DIRECT_UPLOAD_BYTES = 8 * 2**20
#: gradio's ``delete_cache``: every 300 s, delete uploads older than 300 s (and all of them on shutdown).
UPLOAD_CACHE = (300, 300)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def signed_in(scope: Scope) -> bool:
    """Whether the request carries a live gradio OAuth session (a signed-in Hub user)."""
    session = scope.get("session") or {}
    info = session.get("oauth_info") if isinstance(session, dict) else None
    if not isinstance(info, dict):
        return False
    expires = info.get("expires_at")
    return not isinstance(expires, (int, float)) or expires > time.time()


class SignedInUploads:
    """ASGI middleware: answers ``401`` to a ``POST`` whose path ends in ``/upload`` unless ``allowed(scope)``
    (default :func:`signed_in`), without reading its body; every other request passes through."""

    def __init__(self, app: Callable, allowed: Callable[[Scope], bool] = signed_in) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope.get("type") == "http" and scope.get("method") == "POST"
                and scope.get("path", "").rstrip("/").endswith("/upload") and not self.allowed(scope)):
            body = json.dumps({"error": "sign in with your Hugging Face account before uploading a file"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
