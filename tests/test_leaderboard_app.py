"""The board's logic without a browser: the submit form, the filters and the robustness plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import board_rows, init_store, list_submissions, parse_benchmark_sources

pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
pytest.importorskip("matplotlib", reason="the leaderboard extra (matplotlib) is not installed")

from hf_noisy.leaderboard.app import (filter_rows, robustness_figure, styled, submit_form,  # noqa: E402
                                      table_note)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_filters_and_plot(setup):
    store, _, results = setup
    submit_form(store, "alice", str(results), "coco-n", "clean", "Mine")
    rows = board_rows(store)["coco-n"]
    assert list(filter_rows(rows, "mine")["Model"]) == ["Mine"]  # custom rows shown by default here
    assert list(filter_rows(rows, "mine", custom=False)["Model"]) == []  # a COCO-file benchmark is custom
    assert set(filter_rows(rows, "", ["hard"])["Trained on"]) == {"hard"}
    assert set(filter_rows(rows, "", None, ["reported"])["Source"]) == {"reported"}
    figure = robustness_figure(rows, "coco-n")
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert "Mask2Former R50 (CE, paper) mask AP" in labels and "Mine (alice) Boundary AP" in labels


def _row(model: str, config: str, mask: float | None, boundary: float | None, **more) -> dict:
    return {"Model": model, "Method": "CE", "Submitter": "alice", "Source": "evaluated", "Trained on": config,
            "Mask AP": mask, "Boundary AP": boundary, **more}


def test_the_plot_draws_measured_points_only_and_joins_adjacent_levels_only():
    import numpy as np

    rows = [_row("M", "clean", 40.0, 30.0), _row("M", "hard", 30.0, None), _row("M", "medium", 33.0, 25.0)]
    figure = robustness_figure(rows, "coco-n")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    mask, boundary = lines["M (CE, alice) mask AP"], lines["M (CE, alice) Boundary AP"]
    # x = clean, easy, medium, hard: easy is unmeasured, so clean stands alone and only medium-hard is joined
    np.testing.assert_array_equal(mask.get_ydata(), [40.0, np.nan, 33.0, 30.0])
    np.testing.assert_array_equal(boundary.get_ydata(), [30.0, np.nan, 25.0, np.nan])
    assert mask.get_marker() == "o" and boundary.get_marker() == "s"
    assert mask.get_linestyle() == "-" and boundary.get_linestyle() == "--"


def test_the_legends_sit_outside_the_axes_and_tell_the_metrics_apart():
    rows = [_row(f"Model {i}", config, 40.0 - i - j, 30.0 - i - j)
            for i in range(8) for j, config in enumerate(("clean", "easy", "medium", "hard"))]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = robustness_figure(rows, "coco-n")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    legends = [child for child in axes.get_children() if type(child).__name__ == "Legend"]
    assert len(legends) == 2
    box = axes.get_window_extent(renderer)
    for legend in legends:
        extent = legend.get_window_extent(renderer)
        assert extent.x0 >= box.x1, "a legend overlaps the axes"
        assert extent.x1 <= figure.bbox.x1 + 1, "a legend is cut off"
    metric = next(legend for legend in legends if legend.get_title().get_text() == "metric")
    handles = metric.legend_handles
    assert [t.get_text() for t in metric.get_texts()] == ["mask AP", "Boundary AP"]
    assert {(h.get_linestyle(), h.get_marker()) for h in handles} == {("-", "o"), ("--", "s")}


def test_every_label_is_plain_text():
    import io

    rows = [_row("a$^$b", "clean", 40.0, 30.0, Submitter="$x_1$")]
    figure = robustness_figure(rows, "coco-n")
    figure.savefig(io.BytesIO(), format="png")  # mathtext would raise on "$^$"
    texts = [t for legend in figure.axes[0].get_children() if type(legend).__name__ == "Legend"
             for t in legend.get_texts()]
    assert "a$^$b (CE, $x_1$)" in [t.get_text() for t in texts]
    assert not any(t.get_parse_math() for t in texts)


def test_an_empty_benchmark_says_so():
    figure = robustness_figure([], "lvis-n")
    assert "no entries yet" in [t.get_text() for t in figure.axes[0].texts]
    assert "no entries yet" in table_note([], 0, "lvis-n")


def test_numbers_show_one_decimal_and_stay_numbers():
    import gradio as gr

    rows = [r for r in board_rows(None)["coco-n"] if r["Submitter"] == "paper"]  # v1's row (Boundary AP 30.0)
    frame = filter_rows(rows, "Mask2Former R50", ["clean"])
    data = gr.Dataframe(headers=list(frame.columns), interactive=False).postprocess(styled(frame))
    (row,) = data.data
    (shown,) = data.metadata["display_value"]
    boundary = list(frame.columns).index("Boundary AP")
    assert row[boundary] == 30.0 and shown[boundary] == "30.0"  # not "30"
    assert shown[list(frame.columns).index("Mask AP50")] == ""  # not reported: blank, not "nan" or "None"


def test_one_bad_stored_record_never_takes_the_board_down(setup, caplog):
    import json
    import logging

    from hf_noisy.leaderboard import list_results
    from hf_noisy.leaderboard.table import queue_rows

    store, _, results = setup
    submit_form(store, "alice", str(results), "coco-n", "hard", "Good")
    (good,) = list_results(store).values()
    leaf = "results/coco-n/hard/mallory"
    bad = {
        "surrogate": json.dumps(dict(good, meta=dict(good["meta"], model_name="\ud800"))),  # as the JSON escape
        "not-json": '{"status": "done", "meta": ',
        "no-metrics": json.dumps({k: v for k, v in good.items() if k != "metrics"}),
        "nan-ap": json.dumps(dict(good, metrics=dict(good["metrics"], segm=dict(good["metrics"]["segm"], AP="x")))),
        "bad-config": json.dumps(dict(good, meta=dict(good["meta"], trained_on="weird"))),
        "a-list": "[]",
    }
    for name, text in bad.items():
        (store / leaf).mkdir(parents=True, exist_ok=True)
        (store / leaf / f"20260101T000000Z--{name}--0000000000000000.json").write_text(text)
    meta_dir = store / "submissions" / "coco-n" / "hard" / "mallory" / "20260101T000000Z--x--0000000000000000"
    meta_dir.mkdir(parents=True)
    (meta_dir / "meta.json").write_text('{"meta": {"model_name": "\\udfff"}}')

    with caplog.at_level(logging.WARNING, logger="hf_noisy.leaderboard.table"):
        rows = board_rows(store)
        queue = queue_rows(store)
    evaluated = [r for r in rows["coco-n"] if r["Source"] == "evaluated"]
    assert [r["Model"] for r in evaluated] == ["Good"]
    assert len([r for r in rows["coco-n"] if r["Source"] == "reported" and r["Submitter"] == "paper"]) == 24  # the paper's rows stay
    assert [q["Model"] for q in queue] == ["Good"]
    skipped = [record.getMessage() for record in caplog.records]
    for name in bad:
        assert any(f"--{name}--" in message for message in skipped), name
    assert any("meta.json" in message for message in skipped)
    assert all(message.encode("utf-8") for message in skipped)  # the log line itself is printable
    json.dumps(rows, ensure_ascii=False).encode("utf-8")  # what gradio sends the browser encodes
