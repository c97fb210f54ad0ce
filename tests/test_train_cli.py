"""The training script as a command: --help without the heavy imports and with every config's values; Ctrl-C
keeps only complete checkpoints, exits 130 and prints the command that resumes."""

from __future__ import annotations

import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train" / "train_mask2former.py"
HEAVY = ("torch", "transformers", "accelerate", "datasets")

_HELP_PROBE = f"""
import runpy, sys
sys.argv = [{str(SCRIPT)!r}, "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print("HEAVY:", sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "COLUMNS": "100000"}  # no wrapping in --help


def test_help_imports_nothing_heavy_and_shows_each_configs_values():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, env=_env(), check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert "HEAVY: []" in out.stdout, out.stdout[-300:]
    assert cpu < 5.0, f"--help took {cpu:.1f} CPU-s"  # importing torch alone costs more; parsing takes ~0.4 s
    text = out.stdout
    configs = sorted((REPO / "train" / "configs").glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, (dict, list)):
                continue  # shown as flow text; the scalar keys pin the format
            lines = text.splitlines()
            at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"--{key.replace('_', '-')} "))
            line = " ".join(lines[at:at + 2])  # a long flag puts its help on the next line
            shown = "none" if value is None else str(value)
            assert f"{path.stem}: {shown}" in line, (path.stem, key, line)


def _tiny_dataset(root: Path) -> Path:
    from hf_noisy.hub import build_benchmark
    from hf_noisy.synthetic import make_shapes_coco

    coco = make_shapes_coco(root / "coco", num_train=4, num_val=2)
    return build_benchmark("coco-n", root / "shapes-n", coco_root=coco, configs=["clean"]).path


@pytest.mark.slow
def test_ctrl_c_keeps_complete_checkpoints_and_prints_how_to_resume(tmp_path: Path):
    dataset = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    argv = ["--config", "tiny", "--dataset", str(dataset), "--output-dir", str(out), "--max-steps", "100000",
            "--checkpoint-steps", "2", "--eval-steps", "1000000", "--max-eval-images", "1"]
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoints" / "step-000002").is_dir():
            if proc.poll() is not None:
                pytest.fail(f"training ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 300 s")
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-2000:]
    lines = stderr.split("\n")  # (tqdm's bar uses \r on the same stream)
    at = next((i for i, line in enumerate(lines) if "the last complete checkpoint is" in line), None)
    assert at is not None and "--resume" in lines[at], stderr[-2000:]
    message = lines[at:at + 2]
    resume = shlex.split(message[1])
    assert resume[-1] == "--resume" and resume[resume.index("--output-dir") + 1] == str(out)
    assert resume[1] == str(SCRIPT) and resume.count("--resume") == 1
    checkpoints = out / "checkpoints"
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith(".")]  # no half-written checkpoint
    for folder in checkpoints.iterdir():
        assert (folder / "train_state.json").is_file() and (folder / "model.safetensors").is_file(), folder
    named = Path(message[0].split("the last complete checkpoint is ")[1].split(". Continue")[0])
    assert named == sorted(checkpoints.iterdir())[-1]
    assert not (out / "model").exists()  # the final model is written only at the end


def test_annotation_only_builds_train_with_your_images(shared_dir: Path, tmp_path: Path):
    """Cityscapes-N is annotation-only by default: --image-root joins the user's copy; without it, one clear line."""
    sys.path.insert(0, str(REPO / "train"))
    try:
        import train_mask2former as m2f
    finally:
        sys.path.remove(str(REPO / "train"))
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub import build_benchmark
    from hf_noisy.models import data as m2f_data

    sample = shared_dir / "data" / "cityscapes-tiny"
    root = tmp_path / "cityscapes"
    for kind in ("leftImg8bit", "gtFine"):
        (root / kind / "train").mkdir(parents=True)
        (root / kind / "val").symlink_to(sample / kind / "val")
        (root / kind / "train" / "frankfurt").symlink_to(sample / kind / "val" / "frankfurt")
    built = build_benchmark("cityscapes-n", tmp_path / "cityscapes-n", cityscapes_root=root,
                            configs=("clean", "hard")).path
    common = ["--dataset", str(built), "--output-dir", str(tmp_path / "out")]
    args, config = m2f.parse_args([*common, "--image-root", str(root), "--eval-split", "val"])
    assert config.eval_split == "validation"
    rows = m2f.load_split(args, "hard", "train", None)
    sample_ = m2f_data.TrainDataset(rows, m2f_data.Jitter(64), seed=0)[0, 0]
    assert tuple(sample_["pixel_values"].shape) == (3, 64, 64) and len(sample_["class_labels"]) > 0
    args, _ = m2f.parse_args(common)
    with pytest.raises(HfNoisyError, match="annotation-only .* pass --image-root"):
        m2f.load_split(args, "hard", "train", None)
