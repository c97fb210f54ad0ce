"""The board's logic without a browser: the submit form, the filters and the robustness plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import board_rows, init_store, list_submissions, parse_benchmark_sources

pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
pytest.importorskip("matplotlib", reason="the leaderboard extra (matplotlib) is not installed")

from hf_noisy.leaderboard.app import filter_rows, robustness_figure, submit_form  # noqa: E402
from hf_noisy.metrics import evaluate_coco  # noqa: E402


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict, Path]:
    gt = shapes_gt(tmp_path / "shapes")
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    results = tmp_path / "results.json"
    results.write_bytes(dumps(predictions(gt, seed=8)))
    return tmp_path / "board", gt, results


def test_nobody_submits_without_a_user(setup):
    store, _, results = setup
    assert "sign in with your Hugging Face account" in submit_form(store, None, str(results), "coco-n", "clean", "M",
                                                                   on_space=True)
    assert "without `--submitter`" in submit_form(store, "", str(results), "coco-n", "clean", "M")
    assert list_submissions(store) == []


def test_the_form_scores_an_accepted_file_and_explains_a_refused_one(setup, tmp_path: Path):
    store, gt, results = setup
    message = submit_form(store, "alice", str(results), "coco-n", "hard", "  M2F  ", "SCE")
    stats = evaluate_coco(gt, predictions(gt, seed=8))
    assert message.startswith("**Accepted** as `coco-n/hard/alice/")
    assert f"mask AP {100 * stats['segm'].stats['AP']:.1f}, Boundary AP {100 * stats['boundary'].stats['AP']:.1f}" \
        in message
    assert [s.meta.model_name for s in list_submissions(store)] == ["M2F"]  # stripped
    again = submit_form(store, "alice", str(results), "coco-n", "hard", "M2F", evaluate=False)
    assert again.startswith("**Rejected** (duplicate): alice already submitted 'M2F'")
    queued = submit_form(store, "alice", str(results), "coco-n", "easy", "M2F", evaluate=False)
    assert queued.endswith("It will be scored by the next evaluator run.")


def test_filters_and_plot(setup):
    store, _, results = setup
    submit_form(store, "alice", str(results), "coco-n", "clean", "Mine")
    rows = board_rows(store)["coco-n"]
    assert list(filter_rows(rows, "mine")["Model"]) == ["Mine"]
    assert list(filter_rows(rows, "", ["hard"])["Trained on"]) == ["hard"]  # the reported M2F hard row
    assert set(filter_rows(rows, "", None, ["reported"])["Source"]) == {"reported"}
    figure = robustness_figure(rows, "coco-n")
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "Mask2Former R50 (CE) [reported] mask AP" in labels and "Mine [alice] boundary AP" in labels
