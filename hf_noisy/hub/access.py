"""Hub access for the commands that write to the Hub: the token, and huggingface_hub's HTTP errors as one line.

``huggingface_hub`` raises ``HfHubHTTPError`` with the request id, the URL and a paragraph of advice; a command
line wants one line saying what was tried, what the Hub answered and what to do. :func:`hub_errors` turns an
HTTP error inside its block into a :class:`~hf_noisy.errors.HfNoisyError` (which the CLI prints without a
traceback); :func:`require_token` fails before the first request when no token is configured at all.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import HfNoisyError, network_error

__all__ = ["hub_errors", "require_token"]

LOGIN_HINT = "run `hf auth login` or set HF_TOKEN"


def require_token(token: str | None, action: str) -> str:
    """``token``, or the configured one (``HF_TOKEN``, ``hf auth login``); an error naming ``action`` if none."""
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise HfNoisyError(f"{action}: no Hugging Face token found; {LOGIN_HINT} (a token with write access)")
    return found


@contextmanager
def hub_errors(action: str) -> Iterator[None]:
    """Re-raise ``HfHubHTTPError`` (and a refused connection) inside the block as one ``HfNoisyError`` line:
    ``"{action}: <what the status means> (<status> <the Hub's own message>)"``."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        yield
    except RepositoryNotFoundError as err:
        raise HfNoisyError(f"{action}: repository not found, or the token cannot see it ({_status(err)})") from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        meaning = {
            401: f"the Hub refused the token (wrong or expired); {LOGIN_HINT}",
            403: "the token may not write there (read-only token, or not a member of that organisation)",
            409: "it exists already",
            412: "the repository changed meanwhile; run the command again",
        }.get(status, "the Hub refused the request")
        raise HfNoisyError(f"{action}: {meaning} ({_status(err)})") from None
    except ConnectionError as err:  # no network or offline mode: the one message every command gives for it
        raise (network_error(err) or HfNoisyError(f"{action}: could not reach the Hub ({type(err).__name__}: {err})")
               ) from None


def _status(err) -> str:
    response = err.response
    if response is None:
        return str(err).splitlines()[0]
    message = response.headers.get("X-Error-Message") or ""
    if not message:
        try:
            message = response.json().get("error", "")
        except ValueError:
            message = ""
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")
