"""Shared fixtures. Tests that need the real data in ``../shared`` skip with a reason when it is absent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HF_NOISY_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real test data not found at {SHARED}/data (set HF_NOISY_SHARED to the shared folder)")
    return SHARED


@pytest.fixture(scope="session")
def coco_tiny(shared_dir: Path) -> Path:
    """``coco-tiny`` root: ``annotations/instances_{train,val}2017.json`` and the image folders."""
    return shared_dir / "data" / "coco-tiny"


def pytest_configure(config) -> None:
    """Keep datasets/evaluate caches out of the user's home and never touch the network.

    Set before collection, because ``datasets`` and ``evaluate`` read their cache paths once, at import: a
    per-test environment variable would come too late, and a shared ``~/.cache/huggingface`` can serve a stale
    cached dataset for a folder path that another run used before.
    """
    home = tempfile.mkdtemp(prefix="hf-noisy-tests-hf-home-")
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    os.environ["HF_HOME"] = home
    os.environ.pop("HF_DATASETS_CACHE", None)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port():
    """A function returning a free TCP port on 127.0.0.1 (a server or an accelerate rendezvous of the test's own)."""
    return _free_port


@pytest.fixture
def two_cpu_processes():
    """A function returning the command prefix that starts two real CPU processes with accelerate: ``--multi_gpu``
    with the script choosing ``cpu=True`` (``--cpu --num_processes 2`` would start one; see STACK-NOTES), and a
    rendezvous port of its own (the default 29500 could meet another job's ranks)."""
    import sys

    def prefix() -> list[str]:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(_free_port())]

    return prefix
