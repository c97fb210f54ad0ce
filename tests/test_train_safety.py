"""The training script's inputs and outputs (issue 23, G and I): a config value of the wrong type is one line
before anything heavy is imported; ``--overwrite`` starts clean (an old run's checkpoints cannot be resumed by
mistake); a checkpoint is replaced with no moment where neither copy exists."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train" / "train_mask2former.py"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_a_config_value_of_the_wrong_type_is_one_line_before_the_model_is_built(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: [1, 2]\nmax_steps: 10\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--dataset", str(tmp_path / "none"),
                           "--output-dir", str(tmp_path / "run")], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.splitlines() == [f"train_mask2former.py: error: {config}: learning_rate must be float, got [1, 2]"], err[-2000:]
    assert time.monotonic() - start < 30  # before torch, transformers and the model
    config.write_text("a: &x 1\nb: *x\n")  # and the same safe loader as specs: no aliases
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--dataset", str(tmp_path / "none"),
                           "--output-dir", str(tmp_path / "run")], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert "anchors and aliases" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_checkpoint_is_replaced_with_no_moment_without_one(tmp_path: Path, monkeypatch):
    from hf_noisy.fsutil import replace_folder

    for swap in ("exchange", "rename"):
        if swap == "rename":
            monkeypatch.setenv("HF_NOISY_SWAP", "rename")
        folder = tmp_path / swap / "step-000010"
        folder.mkdir(parents=True)
        (folder / "train_state.json").write_text("0")
        missing, stop = [], threading.Event()

        def watch(folder: Path = folder) -> None:
            while not stop.is_set():
                if not (folder / "train_state.json").is_file():
                    missing.append(time.monotonic())

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for k in range(1, 200):
                built = folder.parent / f".{folder.name}.partial"
                built.mkdir()
                (built / "train_state.json").write_text(str(k))
                replace_folder(built, folder)
        finally:
            stop.set()
            watcher.join()
        assert (folder / "train_state.json").read_text() == "199"
        assert sorted(p.name for p in folder.parent.iterdir()) == ["step-000010"]  # no old copy, journal or lock
        if swap == "exchange":
            assert missing == [], f"{len(missing)} looks found no checkpoint"


@pytest.mark.slow
def test_overwrite_starts_a_new_run_without_the_old_runs_checkpoints(tmp_path: Path):
    from test_train_cli import _tiny_dataset

    dataset = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    old = out / "checkpoints" / "step-999999"
    old.mkdir(parents=True)
    (old / "train_state.json").write_text('{"step": 999999, "epoch": 0, "batch": 0}')
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", "tiny", "--dataset", str(dataset), "--output-dir",
                           str(out), "--max-steps", "1", "--checkpoint-steps", "1000", "--eval-steps", "1000000",
                           "--max-eval-images", "1", "--overwrite"], capture_output=True, text=True, env=_env(),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not old.exists()  # a later --resume cannot continue the old run
