"""Fixtures the training tests share (imported by each module that runs the training script in-process)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The tiny model gains nothing from two threads, and on a busy 2-core machine OpenMP threads waiting for
    each other made a 3 s run take 2 minutes; the launched ranks get OMP_NUM_THREADS=1 too."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """main() runs in-process in some tests: give each its own accelerate singletons."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
