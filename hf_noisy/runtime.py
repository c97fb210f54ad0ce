"""Process-wide settings held for the length of a batch job and restored afterwards.

Both are process-global, so they are changed only inside these context managers, around work that hf-noisy
runs from start to end (parsing a file, noising a dataset), and put back as they were, errors included.
Worker processes forked inside inherit them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc", "single_threaded_opencv"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector; reference counting still frees every object as usual.

    Parsing a COCO file builds a large tree without cycles, and the collections its allocations trigger walk
    it again and again for nothing (a fifth of orjson's parse time on coco-tiny x10).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """Run OpenCV on the calling thread only: instance windows are far too small to split, and its idle
    pool threads spin, taking CPU from the other worker processes."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)
