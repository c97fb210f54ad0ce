"""Stored benchmark paths mean one thing: ``init`` records a local benchmark as an absolute path (or relative to
the store holding it), checks that it is a build of that benchmark, and records its version; a store made in
one folder is then used from any other. Rows scored on anything but the published version are marked."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.leaderboard import (SubmissionMeta, board_rows, evaluate_pending, init_store, parse_benchmark_sources,
                                  store_benchmarks, submit)
from hf_noisy.leaderboard.table import default_view

META = SubmissionMeta("M2F R50", "coco-n", "hard", submitter="alice", method="CE")


@pytest.fixture(scope="module")
def built(coco_tiny: Path, tmp_path_factory) -> Path:
    """A COCO-N folder with its clean config, built from coco-tiny (a 4-image subset: version ``custom``)."""
    from hf_noisy.hub import build_benchmark

    return build_benchmark("coco-n", tmp_path_factory.mktemp("built") / "coco-n", coco_root=coco_tiny,
                           configs=["clean"], max_images=4).path


@pytest.mark.slow
def test_a_relative_benchmark_path_is_stored_absolute_and_works_from_another_folder(built: Path, tmp_path: Path,
                                                                                    monkeypatch):
    from hf_noisy.hub import export_coco

    monkeypatch.chdir(built.parent)
    assert main(["leaderboard", "init", "--store", str(tmp_path / "board"), "--benchmark", "coco-n=coco-n"]) == 0
    entry = json.loads((tmp_path / "board" / "store.json").read_text())["benchmarks"]["coco-n"]
    assert entry == {"source": str(built.resolve()), "revision": None, "version": "custom"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "coco-n" here is nothing: the stored absolute path still finds the build
    gt = export_coco(built, "clean", "validation")
    submit(tmp_path / "board", dumps(predictions(gt, limit=10)), META, cache_dir=tmp_path / "cache")
    (record,) = evaluate_pending(tmp_path / "board", cache_dir=tmp_path / "cache")
    assert record["status"] == "done", record.get("reason")


def test_a_benchmark_inside_the_store_is_stored_relative_to_it(built: Path, tmp_path: Path):
    import shutil

    store = tmp_path / "board"
    shutil.copytree(built, store / "benchmarks" / "coco-n")
    init_store(store, parse_benchmark_sources([f"coco-n={store / 'benchmarks' / 'coco-n'}"]))
    assert json.loads((store / "store.json").read_text())["benchmarks"]["coco-n"]["source"] == "benchmarks/coco-n"
    moved = shutil.move(store, tmp_path / "moved")  # the store and its benchmark travel together
    assert store_benchmarks(moved)["coco-n"].source == str(Path(moved).resolve() / "benchmarks" / "coco-n")


@pytest.mark.parametrize("case", ["missing", "not-a-build", "other-benchmark", "no-clean", "missing-json",
                                  "hub-unreachable"])
def test_init_refuses_what_is_not_a_built_benchmark_and_writes_nothing(case: str, tmp_path: Path, capsys):
    folder = tmp_path / "bench"
    expected = {"missing": "no such folder", "not-a-build": "is not a built benchmark",
                "other-benchmark": "holds the benchmark 'cityscapes-n', not coco-n",
                "no-clean": "has no clean config", "missing-json": "no such COCO .json file",
                "hub-unreachable": "could not read hf_noisy_benchmark.json of the Hub dataset noisy-seg/never-pushed@v1.0 ("
                }[case]
    if case not in ("missing", "hub-unreachable"):  # (the tests run with HF_HUB_OFFLINE=1)
        folder.mkdir()
    if case == "other-benchmark":
        (folder / "hf_noisy_benchmark.json").write_text(json.dumps({"benchmark_id": "cityscapes-n",
                                                                   "configs": {"clean": {}}}))
    if case == "no-clean":
        (folder / "hf_noisy_benchmark.json").write_text(json.dumps({"benchmark_id": "coco-n", "configs": {"hard": {}}}))
    source = {"missing-json": str(folder / "val.json"),
              "hub-unreachable": "noisy-seg/never-pushed@v1.0"}.get(case, str(folder))  # a repo no test caches
    with pytest.raises(HfNoisyError, match=re.escape(expected)):
        init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={source}"]))
    assert not (tmp_path / "board").exists()
    assert main(["leaderboard", "init", "--store", str(tmp_path / "board"), "--benchmark", f"coco-n={source}"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "board").exists()


@pytest.mark.slow
def test_rows_scored_on_a_custom_build_are_marked_and_left_out_of_the_default_view(tmp_path: Path):
    from _leaderboard import shapes_gt, write_gt

    gt = shapes_gt(tmp_path / "shapes")
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    assert store_benchmarks(tmp_path / "board")["coco-n"].version == "custom"  # a COCO file names no build
    submit(tmp_path / "board", dumps(predictions(gt, seed=1)), META)
    submit(tmp_path / "board", dumps(predictions(gt, seed=2)), replace(META, trained_on="clean"))
    evaluate_pending(tmp_path / "board")
    rows = board_rows(tmp_path / "board")["coco-n"]
    evaluated = [r for r in rows if r["Source"] == "evaluated"]
    assert len(evaluated) == 2 and {r["Version"] for r in evaluated} == {"custom"}
    assert evaluated[1]["Retention"] is not None
    assert default_view(rows) == [r for r in rows if r["Source"] == "reported"]

    # The same store, its benchmark recorded as the published version: the rows are in the default view.
    config = json.loads((tmp_path / "board" / "store.json").read_text())
    config["benchmarks"]["coco-n"]["version"] = "v1.0"
    (tmp_path / "board" / "store.json").write_text(json.dumps(config))
    rows = board_rows(tmp_path / "board")["coco-n"]
    assert {r["Version"] for r in default_view(rows) if r["Source"] == "evaluated"} == {"v1.0"}
