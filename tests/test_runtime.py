"""Process-wide settings are held only inside their context managers and restored, errors included."""

import gc

import cv2
import pytest

from hf_noisy.runtime import paused_gc, single_threaded_opencv


def test_paused_gc_restores_the_collector():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with paused_gc():
            assert not gc.isenabled()
            with paused_gc():  # nested: the inner one must not switch it back on
                pass
            assert not gc.isenabled()
            raise RuntimeError
    assert gc.isenabled()


def test_single_threaded_opencv_restores_the_thread_count():
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        with pytest.raises(RuntimeError):
            with single_threaded_opencv():
                assert cv2.getNumThreads() == 1
                raise RuntimeError
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)
