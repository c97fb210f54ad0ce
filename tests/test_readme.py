"""Every ```python block of README.md runs as written, one test per block, on the shipped tiny data.

Conventions (for whoever adds a block to the README):

* Each block runs in a fresh namespace, with the working directory set to one workspace shared by all blocks.
  The workspace holds what the README's own commands and the reader's data would give:
  ``instances_{train,val}2017.json`` and ``train2017/``, ``val2017/`` (coco-tiny); ``coco-n/`` (COCO-N built
  from the first images of coco-tiny) and ``cityscapes-n/`` (built from cityscapes-tiny, annotation-only by
  default); ``lvis_v1_val.json`` (lvis-tiny) with ``results.json`` (predictions on it); ``board/`` and
  ``results.json.gz`` for the leaderboard; ``eval/`` and ``train/`` (the repository's, as seen from its root).
  The README's ``hf-noisy spec`` and ``hf-noisy leaderboard init`` lines are run as written to make their files.
* A reader's dataset roots ``"/data/coco"``, ``"/data/cityscapes"`` and ``"/data/lvis"`` stand for the shipped
  tiny copies (cityscapes-tiny's one val frame serves as train too).
* A block that needs what a test cannot have (a multi-GB download, a GPU, the network) is marked on the line
  above its fence with ``<!-- readme-test: skip REASON -->`` and is reported as skipped with that reason.
  Nothing else is skipped: a block the workspace cannot run fails.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.noise import PRESETS

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s+(?P<reason>.*?)\s*-->\s*$")
#: README lines run as written to make workspace files (``hf-noisy ...`` with an optional ``> FILE``)
BASH_SETUP = ("hf-noisy spec ", "hf-noisy leaderboard init ")


@dataclass(frozen=True)
class Block:
    line: int        # line of the opening fence in README.md
    heading: str     # the nearest heading above
    code: str
    skip: str | None


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        before = text[:match.start()].rstrip("\n").splitlines()
        heading = next((line.lstrip("#").strip() for line in reversed(before) if line.startswith("#")), "top")
        skip = SKIP.search(before[-1]) if before else None
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, heading, match.group(1), skip.group("reason") if skip else None))
    return blocks


def bash_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        lines += [line for line in block.replace("\\\n", " ").splitlines() if line.startswith(BASH_SETUP)]
    return lines


def run_bash_line(line: str) -> None:
    """``hf-noisy ARGS [> FILE]`` through the real CLI entry point (comments stripped)."""
    words = shlex.split(line, comments=True)
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(words[1:]) == 0, line
    if target:
        Path(target).write_text(out.getvalue(), encoding="utf-8")


def _cityscapes_root(sample: Path, root: Path) -> Path:
    for kind in ("leftImg8bit", "gtFine"):
        (root / kind / "train").mkdir(parents=True)
        (root / kind / "val").symlink_to(sample / kind / "val")
        (root / kind / "train" / "frankfurt").symlink_to(sample / kind / "val" / "frankfurt")
    return root


@pytest.fixture(scope="module")
def workspace(shared_dir: Path, coco_tiny: Path, tmp_path_factory) -> dict:
    from _leaderboard import dumps, predictions

    from hf_noisy.coco import load_coco
    from hf_noisy.hub import build_benchmark, export_coco

    ws = tmp_path_factory.mktemp("readme")
    for name in ("instances_train2017.json", "instances_val2017.json"):
        shutil.copy(coco_tiny / "annotations" / name, ws / name)
    for name in ("train2017", "val2017"):
        (ws / name).symlink_to(coco_tiny / name)
    for name in ("eval", "train"):
        (ws / name).symlink_to(REPO / name)
    lvis = ws / "lvis"
    lvis.mkdir()
    shutil.copy(shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json", lvis / "lvis_v1_val.json")
    shutil.copy(lvis / "lvis_v1_val.json", ws / "lvis_v1_val.json")
    (ws / "results.json").write_bytes(dumps(predictions(load_coco(ws / "lvis_v1_val.json"), seed=3)))
    cityscapes = _cityscapes_root(shared_dir / "data" / "cityscapes-tiny", ws / "cityscapes")
    build_benchmark("coco-n", ws / "coco-n", coco_root=coco_tiny, max_images=4)
    build_benchmark("cityscapes-n", ws / "cityscapes-n", cityscapes_root=cityscapes, configs=("clean", "hard"))
    gt = export_coco(ws / "coco-n", "clean", "validation")
    (ws / "results.json.gz").write_bytes(gzip.compress(dumps(predictions(gt, seed=9))))
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        for line in bash_lines():
            run_bash_line(line)
    finally:
        os.chdir(cwd)
    roots = {"/data/coco": coco_tiny, "/data/cityscapes": cityscapes, "/data/lvis": lvis}
    return {"path": ws, "roots": roots}


def test_blocks_are_found_and_skips_give_reasons():
    blocks = readme_blocks()
    assert len(blocks) >= 8
    assert all(block.skip is None or len(block.skip) > 10 for block in blocks)
    assert [line.split()[1] for line in bash_lines()][:1] == ["spec"]  # `hf-noisy spec hard > my_spec.yaml` is shown


#: extra checks for blocks containing a key: what the block made must be what the README says
def _check_noise(ns: dict, ws: Path, out: str) -> None:
    assert "approximation" in out  # the summary table was printed
    written = json.loads((ws / "train_hard.json").read_text())
    assert written["info"]["hf_noisy"]["spec_sha256"] == PRESETS["hard"].sha256
    assert ns["spec"].seed == 7 and ns["spec"].to_dict()["spatial"] == PRESETS["hard"].to_dict()["spatial"]
    assert len(ns["noisy"]["annotations"]) == len(ns["coco_dict"]["annotations"])


def _check_metric(ns: dict, ws: Path, out: str) -> None:
    assert [float(v) for v in out.split()] == pytest.approx([1.0, 1.0])  # the module and the core agree
    assert ns["results"]["boundary"].stats["AP"] == pytest.approx(1.0)


def _check_hub(ns: dict, ws: Path, out: str) -> None:
    hard, mine = ns["ds"]["train"][0], ns["mine"][0]
    assert ns["masks"].shape[0] == len(hard["objects"]) and "image" not in ns["ann"].features
    # my_spec.yaml is the hard preset: on-the-fly noise reproduces the hard config
    assert [o["segmentation"] for o in mine["objects"]] == [o["segmentation"] for o in hard["objects"]]
    assert ns["cs"][0]["image"].size == (256, 128)


def _check_sce(ns: dict, ws: Path, out: str) -> None:
    assert "2.0726" in out


def _check_streaming_metric(ns: dict, ws: Path, out: str) -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)  # the block's Accelerator is not the next test's
    GradientState._reset_state()
    metric, results = ns["metric"], ns["results"]
    assert metric.num_images == 16 and metric.state_nbytes() < 200 * metric.num_detections
    assert 0.3 < results["boundary"].stats["AP"] < results["segm"].stats["AP"] < 1.0  # 2 px off: boundaries suffer
    assert f"Boundary AP {results['boundary'].stats['AP']:.3f}" in out


CHECKS = {"apply_noise(": _check_noise, "evaluate.load(": _check_metric, "NoiseTransform.for_coco_n(": _check_hub,
          "symmetric_cross_entropy(": _check_sce, "InstanceSegmentationAP(": _check_streaming_metric}


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: f"line{b.line}")
def test_readme_python_block_runs(block: Block, workspace: dict, monkeypatch, capsys):
    if block.skip:
        pytest.skip(f"README line {block.line} ({block.heading}): {block.skip}")
    ws = workspace["path"]
    code = block.code
    for literal, path in workspace["roots"].items():
        code = code.replace(f'"{literal}"', repr(str(path)))
    monkeypatch.chdir(ws)
    monkeypatch.setattr(sys, "path", list(sys.path))  # a block's sys.path.insert stays its own
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, f"{README}:{block.line}", "exec"), namespace)
    out = capsys.readouterr().out
    for key, check in CHECKS.items():
        if key in block.code:
            check(namespace, ws, out)
