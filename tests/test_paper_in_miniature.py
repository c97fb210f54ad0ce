"""benchmarks/paper_in_miniature.py end to end on a toy scale (the tiny model, 2 steps per run): it builds Shapes-N
with the levels and ablation configs, trains each run once (a second call reuses them), and writes the table, the
findings against the paper's numbers, the figures and the loss diagnostics. The numbers of such runs mean nothing;
the README's come from the real recipe."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import paper_in_miniature  # noqa: E402


@pytest.mark.slow
def test_the_miniature_runs_and_reports(shared_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "mini"
    argv = ["--out", str(out), "--quick", "--config", "tiny", "--steps", "2", "--num-train", "6", "--num-val", "3",
            "--jobs", "2", "--diagnostics", "--only", "clean", "easy", "medium", "hard", "hard+sce"]
    assert paper_in_miniature.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert sorted(r["name"] for r in results["runs"]) == ["clean-ce-s0", "easy-ce-s0", "hard-ce-s0", "hard-sce-s0",
                                                          "medium-ce-s0"]
    assert all(r["cpu_seconds"] > 0 for r in results["runs"])
    assert results["paper"]["m2f"]["hard"] == {"segm": 37.4, "boundary": 23.8}  # Table 2, Mask2Former R50
    assert [f["finding"][:3] for f in results["findings"]] == ["(a)", "(a)", "(b)", "(d)"]
    assert "separability" in results["diagnostics"] and len(results["diagnostics"]["confidence"]) == 4
    for name in ("levels.png", "instance_losses.png", "confidence.png", "results.md"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "runs" / "hard-ce-s0" / "instance_losses").is_dir()
    built = (out / "shapes-n" / "hf_noisy_benchmark.json").stat().st_mtime_ns
    trained = (out / "runs" / "clean-ce-s0" / "model" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert paper_in_miniature.main(argv) == 0  # a second call trains nothing again
    assert "done" not in capsys.readouterr().out
    assert (out / "shapes-n" / "hf_noisy_benchmark.json").stat().st_mtime_ns == built
    assert (out / "runs" / "clean-ce-s0" / "model" / "metrics.json").stat().st_mtime_ns == trained
