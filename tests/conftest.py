"""Shared fixtures. Tests that need the real data in ``../shared`` skip with a reason when it is absent."""

from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory, monkeypatch):
    """Keep datasets/evaluate caches out of the user's home and never touch the network."""
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
