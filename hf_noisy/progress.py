"""Progress bars for long library calls: off unless the caller asks, on stderr when on.

Library functions that can run for more than a few seconds take ``progress: bool = False`` and open their bars
with :func:`progress_bar`, so library callers and tests stay quiet and the ``hf-noisy`` commands turn them on
(``--no-progress`` and a stderr that is not a terminal turn them off). A bar counts real units of work (images
scored, annotations paired, bytes read), never made-up steps. tqdm is imported only when a bar is shown.
Functions that call the ``datasets`` library wrap those calls in :func:`datasets_bars`, so that its own bars
(generating splits, map, saving) follow the same ``progress`` argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["datasets_bars", "progress_bar"]


class _NoBar:
    """What :func:`progress_bar` gives when progress is off: the methods hf-noisy calls on a bar, doing nothing."""

    n = 0

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(enabled: bool, *, total: float | None, desc: str, unit: str, **options: Any) -> Any:
    """A tqdm bar on stderr (``tqdm.auto``: a widget in a notebook) when ``enabled``, else a stand-in that does
    nothing. Use it as a context manager (the bar is closed on the way out) and call ``update(n)`` with the
    units just done; ``set_postfix_str`` names the current item. ``total``: the units in all (``None``:
    unknown, the bar then shows a count and a rate); ``options``: more tqdm arguments (e.g. ``unit_scale=True``
    for bytes)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, **options)


@contextlib.contextmanager
def datasets_bars(enabled: bool) -> Iterator[None]:
    """The ``datasets`` library's own bars inside the block: as they are when ``enabled``, off when not, and
    after the block (even on an error) as they were before it, so a caller's own setting is kept. The
    ``HF_DATASETS_DISABLE_PROGRESS_BARS`` environment variable, when set, wins (as in ``datasets``). Imports
    ``datasets`` only when it has bars to turn off: enter it right before the ``datasets`` calls."""
    if enabled:
        yield
        return
    import datasets

    if datasets.are_progress_bars_disabled() or datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is not None:
        yield  # off already, or fixed by the environment variable
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()
