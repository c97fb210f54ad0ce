"""The error base class: every problem hf-noisy reports about its input derives from it; and the one place
that decides which exceptions a user gets as one line (:func:`user_error`) instead of a traceback."""

from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["HfNoisyError", "NetworkError", "OutputExistsError", "network_error", "run_reporting_errors", "user_error"]


class HfNoisyError(Exception):
    """Bad input or configuration; the message says what and where. The CLI prints it without a traceback.

    Not a ``ValueError`` (since 0.2): catch ``HfNoisyError`` (or a subclass) for hf-noisy's own refusals."""


class NetworkError(HfNoisyError):
    """A remote host (the Hugging Face Hub) could not be reached; the message says which and what to do."""


class OutputExistsError(FileExistsError):
    """An output file or folder exists and replacing it was not asked for.

    The message speaks Python (``pass overwrite=True``); the command line reports the same error with its own
    option (:meth:`cli_message`: ``pass --overwrite``). A ``FileExistsError``, as before 0.2."""

    def __init__(self, path: object) -> None:
        self.path = str(path)
        super().__init__(f"{self.path} already exists (pass overwrite=True to replace it)")

    def __str__(self) -> str:  # OSError's own would be "[Errno None] ..."
        return self.args[0]

    def __reduce__(self):  # rebuilt from its path when it crosses processes (worker pools)
        return type(self), (self.path,)

    def cli_message(self) -> str:
        """The message as the ``hf-noisy`` commands and the training script report it."""
        return f"{self.path} already exists (pass --overwrite to replace it)"


#: Connection failures of the HTTP stacks under huggingface_hub and datasets (matched by class name, so that
#: none of them is imported here): httpx / httpx2 / httpcore, requests / urllib3.
_CONNECTION_ERRORS = {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "TimeoutException",
                      "ProxyError", "NewConnectionError", "NameResolutionError", "MaxRetryError", "ReadTimeout",
                      "RemoteProtocolError"}
_HTTP_MODULES = ("httpx", "httpx2", "httpcore", "requests", "urllib3")
#: huggingface_hub's "offline and not in the local cache" errors.
_OFFLINE_ERRORS = {"OfflineModeIsEnabled", "LocalEntryNotFoundError"}
#: Hub answers a user can act on (wrong id, revision or file, no access): their first line says it.
_HUB_ERRORS = {"RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError", "RemoteEntryNotFoundError",
               "GatedRepoError", "DisabledRepoError", "HfHubHTTPError", "HFValidationError", "DatasetNotFoundError"}


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ if err.__cause__ is not None or err.__suppress_context__ else err.__context__


def _names(err: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(err).__mro__}


def _first_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def network_error(err: BaseException) -> NetworkError | None:
    """``err`` as a :class:`NetworkError` when it, or an exception it came from, is a failure to reach a host
    (DNS, refused or timed-out connection, offline mode with nothing cached); ``None`` otherwise."""
    import socket  # here, not at import: hf-noisy's start-up stays lean (bench_noise)

    for link in _chain(err):
        if isinstance(link, NetworkError):
            return link
        module = type(link).__module__.split(".")[0]
        if _names(link) & _OFFLINE_ERRORS:
            return NetworkError("cannot reach the Hugging Face Hub (offline mode, or no connection), and the "
                                "files are not in the local cache")
        if (isinstance(link, (ConnectionError, socket.gaierror))
                or (module in _HTTP_MODULES and _names(link) & _CONNECTION_ERRORS)):
            return NetworkError(f"cannot reach the Hugging Face Hub ({_first_line(link, 120) or type(link).__name__}); "
                                "check the network connection, or set HF_HUB_OFFLINE=1 to use only the local cache")
    return None


def user_error(err: BaseException) -> tuple[str, int] | None:
    """``(one-line message, exit status)`` for an error the user can fix (bad input, a missing file, no
    network, a Hub refusal), ``None`` for anything else (a bug, which keeps its traceback). Status 1 for a
    network failure, 2 for everything the user gave."""
    if isinstance(err, HfNoisyError) and not isinstance(err, NetworkError):
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip()), 2
    network = network_error(err)
    if network is not None:
        return _first_line(network), 1
    if isinstance(err, OutputExistsError):
        return err.cli_message(), 2
    if isinstance(err, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return _first_line(err), 2
    if _names(err) & _HUB_ERRORS and type(err).__module__.split(".")[0] in ("huggingface_hub", "datasets"):
        return _first_line(err), 2
    return None


def run_reporting_errors(function: Callable[..., Any], prog: str, *args: Any) -> int:
    """``function(*args)`` as an exit status: its own (``None`` is 0), or, for an error :func:`user_error` knows,
    ``prog: error: MESSAGE`` as one line on stderr and that error's status. Any other exception propagates with
    its traceback. The ``hf-noisy`` CLI and the training script both end here."""
    try:
        return int(function(*args) or 0)
    except Exception as err:
        known = user_error(err)
        if known is None:
            raise
        message, status = known
        print(f"{prog}: error: {message}", file=sys.stderr)
        return status
