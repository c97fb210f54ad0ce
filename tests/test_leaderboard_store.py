"""Leaderboard end to end: submit, sandboxed evaluation equal to `hf-noisy evaluate`, limits, crash safety,
the Hub backend's exact calls, dataset sources, and the board's rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _leaderboard import dumps, predictions, shapes_gt, small_gt, write_gt

from hf_noisy.cli import main
from hf_noisy.leaderboard import (Rules, SandboxLimits, SubmissionError, SubmissionMeta, board_rows, check_results,
                                  evaluate_pending, ground_truth_file, init_store, list_results, list_submissions,
                                  load_reported, parse_benchmark_sources, rules_for, scoring_limits, submit)
from hf_noisy.masks import encode
from hf_noisy.metrics import evaluate_coco

META = SubmissionMeta(model_name="M2F R50", benchmark="coco-n", trained_on="hard", submitter="alice", method="CE")


@pytest.fixture(scope="module")
def gt(coco_tiny: Path) -> dict:
    """All 80 coco-tiny val images."""
    return small_gt(coco_tiny, 80)


@pytest.fixture
def board(tmp_path: Path, gt: dict) -> Path:
    gt_file = write_gt(gt, tmp_path / "val.json")
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={gt_file}"]))
    return tmp_path / "board"


@pytest.mark.slow
def test_cli_end_to_end_equals_hf_noisy_evaluate_and_evaluating_twice_gives_one_result(tmp_path: Path, capsys):
    gt = shapes_gt(tmp_path / "shapes")  # runs without ../shared
    gt_file = write_gt(gt, tmp_path / "val.json")
    results = tmp_path / "results.json"
    results.write_bytes(dumps(predictions(gt, seed=1)))
    store = str(tmp_path / "board")
    assert main(["leaderboard", "init", "--store", store, "--benchmark", f"coco-n={gt_file}"]) == 0
    assert main(["leaderboard", "submit", str(results), "--store", store, "--benchmark", "coco-n", "--trained-on",
                 "hard", "--model-name", "M2F R50", "--submitter", "alice", "--method", "CE"]) == 0
    assert "pending evaluation" in capsys.readouterr().out
    assert main(["leaderboard", "evaluate", "--store", store]) == 0
    assert capsys.readouterr().out.startswith("done    coco-n/hard/alice/")
    assert main(["evaluate", "--gt", str(gt_file), "--predictions", str(results), "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)
    (result,) = list_results(store).values()
    assert result["status"] == "done" and result["metrics"] == reference
    assert 0.2 < reference["segm"]["AP"] < 0.9 and reference["boundary"]["AP"] > 0.1  # shifted masks: known non-zero

    assert main(["leaderboard", "evaluate", "--store", store]) == 0
    assert capsys.readouterr().out == "nothing pending\n"
    assert len(list((Path(store) / "results").rglob("*.json"))) == 1 and list_results(store) == {
        result["submission"]: result}

    # The sandbox's budgets: the benchmark's by default, the flags' when given.
    coco = scoring_limits("coco-n")
    assert result["limits"] == {"cpu_seconds": coco.cpu_seconds, "memory_mb": coco.memory_mb}
    assert main(["leaderboard", "submit", str(results), "--store", store, "--benchmark", "coco-n", "--trained-on",
                 "hard", "--model-name", "M2F R101", "--submitter", "alice"]) == 0
    assert main(["leaderboard", "evaluate", "--store", store, "--cpu-seconds", "900", "--memory-mb", "2048"]) == 0
    second = next(r for r in list_results(store).values() if r["meta"]["model_name"] == "M2F R101")
    assert second["status"] == "done" and second["limits"] == {"cpu_seconds": 900.0, "memory_mb": 2048.0}


@pytest.mark.slow
def test_retention_is_noisy_ap_over_clean_ap_of_the_same_model(board: Path, gt: dict):
    clean, noisy = predictions(gt, seed=2, shift=1), predictions(gt, seed=3, shift=6)
    submit(board, dumps(noisy), META)
    submit(board, dumps(clean), replace(META, trained_on="clean"))
    submit(board, dumps(noisy), replace(META, model_name="Other"))
    records = evaluate_pending(board)
    assert [r["meta"]["trained_on"] for r in records] == ["clean", "hard", "hard"]  # clean first
    expected_clean = evaluate_coco(gt, clean)
    expected_noisy = evaluate_coco(gt, noisy)
    by_model = {(r["meta"]["model_name"], r["meta"]["trained_on"]): r for r in records}
    kept = by_model["M2F R50", "hard"]["retention"]
    assert kept["AP"] == expected_noisy["segm"].stats["AP"] / expected_clean["segm"].stats["AP"] < 1
    assert kept["boundary_AP"] == expected_noisy["boundary"].stats["AP"] / expected_clean["boundary"].stats["AP"]
    assert by_model["Other", "hard"]["retention"] is None and by_model["M2F R50", "clean"]["retention"] is None

    rows = board_rows(board)["coco-n"]
    evaluated = [r for r in rows if r["Source"] == "evaluated"]
    assert [(r["Model"], r["Trained on"]) for r in evaluated] == [("M2F R50", "clean"), ("M2F R50", "hard"),
                                                                   ("Other", "hard")]
    assert evaluated[1]["Retention"] == round(100 * kept["AP"], 1)  # percent, one decimal
    assert evaluated[0]["Mask AP"] == round(100 * expected_clean["segm"].stats["AP"], 1)


@pytest.mark.slow
def test_a_crash_mid_way_loses_nothing_and_a_rerun_scores_only_what_is_pending(board: Path, gt: dict):
    for name in ("A", "B", "C"):
        submit(board, dumps(predictions(gt, seed=4, limit=20)), replace(META, model_name=name))

    class Crash(Exception):
        pass

    def crash_after_first(record: dict) -> None:
        raise Crash(record["submission"])

    with pytest.raises(Crash) as caught:
        evaluate_pending(board, on_result=crash_after_first)
    first = caught.value.args[0]
    assert list(list_results(board)) == [first]  # written before the crash
    second = evaluate_pending(board)
    assert len(second) == 2 and first not in {r["submission"] for r in second}
    assert sorted(list_results(board)) == sorted(s.id for s in list_submissions(board))


def _cpu_heavy(gt: dict) -> list[dict]:
    """A valid submission that is slow to score: 100 near-full-image masks on every image (boundaries are
    computed on each mask's window, here the whole image)."""
    out = []
    for image in gt["images"]:
        mask = np.ones((image["height"], image["width"]), np.uint8)
        mask[0, 0] = 0
        rle = encode(mask)
        categories = sorted({a["category_id"] for a in gt["annotations"] if a["image_id"] == image["id"]}) or [1]
        out += [{"image_id": image["id"], "category_id": categories[k % len(categories)], "segmentation": rle,
                 "score": round(1 - k / 100, 3)} for k in range(100)]
    return out


def _memory_heavy(gt: dict) -> list[dict]:
    """A valid submission that needs a lot of memory: 100 detections on each of 3 images, each a mask of one-pixel
    stripes (a run per pixel: ~270 kB of RLE each, 80 MB of JSON)."""
    out = []
    for image in gt["images"][:3]:
        mask = np.zeros((image["height"], image["width"]), np.uint8)
        mask[::2] = 1
        rle = encode(mask)
        out += [{"image_id": image["id"], "category_id": 1, "segmentation": rle, "score": 0.5} for _ in range(100)]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["time", "memory"])
def test_a_submission_over_the_limit_fails_and_the_next_one_is_scored(board: Path, gt: dict, kind: str):
    heavy = _cpu_heavy(gt) if kind == "time" else _memory_heavy(gt)
    # Budgets for the submission's own work (the ground truth is loaded before the caps). Measured here: the
    # small submission needs 0.1-0.4 s of CPU and 64-96 MB; the heavy ones about 2.5 s, or well over 240 MB.
    limits = SandboxLimits(cpu_seconds=1.0, memory_mb=8192) if kind == "time" else SandboxLimits(60, 128)
    small = predictions(gt, seed=6, limit=5)
    submit(board, dumps(heavy), replace(META, submitter="a-heavy"))
    submit(board, dumps(small), replace(META, submitter="b-small"))
    failed, done = evaluate_pending(board, limits=limits)
    assert failed["meta"]["submitter"] == "a-heavy" and failed["status"] == "failed" and failed["error"] == kind
    assert ("CPU time limit exceeded (1 s" if kind == "time" else "memory limit exceeded (128 MB") in failed["reason"]
    assert done["status"] == "done" and done["metrics"]["segm"] == evaluate_coco(gt, small)["segm"].stats
    assert evaluate_pending(board, limits=limits) == []  # a failure is a result too: never retried silently


def test_an_invalid_file_that_reached_the_store_fails_with_its_reason(board: Path, gt: dict):
    submission = submit(board, dumps(predictions(gt, limit=3)), META)
    # Tamper with the stored file (e.g. a hand-edited store): the sandbox re-checks everything it reads.
    path = board / "submissions" / submission.id / "results.json.gz"
    path.write_bytes(b"[" * 100 + b"]" * 100)
    (record,) = evaluate_pending(board)
    assert (record["status"], record["error"]) == ("failed", "too-deep") and "more than 8 levels deep" in record["reason"]


def test_rules_pick_lvis_for_lvis_n_only(gt: dict):
    assert rules_for("lvis-n") == Rules("lvis", 300)
    assert {rules_for(b) for b in ("coco-n", "cityscapes-n", "coco-wan")} == {Rules("coco", 100)}
    image = gt["images"][0]["id"]
    base = next(d for d in predictions(gt) if d["image_id"] == image)
    many = [dict(base, score=0.5) for _ in range(300)]
    assert len(check_results(many, gt, max_per_image=rules_for("lvis-n").max_per_image)) == 300
    with pytest.raises(SubmissionError, match="more than 100 detections"):
        check_results(many, gt, max_per_image=rules_for("coco-n").max_per_image)


def test_a_built_dataset_is_a_benchmark_source(coco_tiny: Path, tmp_path: Path):
    from hf_noisy.hub import build_benchmark, export_coco

    built = build_benchmark("coco-n", tmp_path / "coco-n", coco_root=coco_tiny, configs=["clean"], max_images=4).path
    sources = parse_benchmark_sources([f"coco-n={built}"])
    store = tmp_path / "board"
    init_store(store, sources)
    gt_file = ground_truth_file(sources["coco-n"], tmp_path / "cache")
    assert gt_file.parent == tmp_path / "cache"
    exported = export_coco(built, "clean", "validation")
    assert json.loads(gt_file.read_text())["annotations"] == json.loads(json.dumps(exported["annotations"]))
    assert ground_truth_file(sources["coco-n"], tmp_path / "cache") == gt_file  # cached
    submission = submit(store, dumps(predictions(exported, limit=10)), META, cache_dir=tmp_path / "cache")
    (record,) = evaluate_pending(store, cache_dir=tmp_path / "cache")
    assert record["submission"] == submission.id and record["status"] == "done"
    assert record["metrics"]["segm"] == evaluate_coco(exported, predictions(exported, limit=10))["segm"].stats


def test_reported_numbers_are_sourced_and_kept_apart():
    reported = load_reported()
    assert all(table["source"] and table["table"] and table["entries"] for table in reported["tables"])
    rows = board_rows(None)
    m2f = {r["Trained on"]: r for r in rows["coco-n"] if r["Model"] == "Mask2Former R50" and r["Submitter"] == "paper"}
    assert (m2f["clean"]["Mask AP"], m2f["clean"]["Boundary AP"], m2f["hard"]["Mask AP"],
            m2f["hard"]["Boundary AP"]) == (42.9, 30.0, 37.4, 23.8)
    # the paper's rows, and the authors' later report as a second source with its own label and version
    assert all(r["Source"] == "reported" and (r["Submitter"], r["Version"]) in {
        ("paper", "paper"), ("authors' later repository", "authors-later")} for rs in rows.values() for r in rs)


def test_cli_reports_a_refused_submission(board: Path, tmp_path: Path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1, "category_id": 1, "segmentation": {"size": [1, 1], "counts": "1"}, '
                   '"score": 2}]')
    assert main(["leaderboard", "submit", str(bad), "--store", str(board), "--benchmark", "coco-n", "--trained-on",
                 "hard", "--model-name", "x", "--submitter", "alice"]) == 2
    assert "image_id 1 is not in the benchmark's clean validation split" in capsys.readouterr().err
    assert list_submissions(board) == []


@pytest.mark.slow
def test_lvis_n_is_scored_with_lvis_rules(shared_dir: Path, tmp_path: Path, capsys):
    from hf_noisy import metrics
    from hf_noisy.coco import load_coco

    gt_file = shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json"
    gt = load_coco(gt_file, allow_empty_masks=True)
    detections = predictions(gt, seed=10, limit=200)
    init_store(tmp_path / "board", parse_benchmark_sources([f"lvis-n={gt_file}"]))
    submit(tmp_path / "board", dumps(detections), replace(META, benchmark="lvis-n"))
    (record,) = evaluate_pending(tmp_path / "board")
    expected = metrics.evaluate_lvis(gt, detections, ("segm", "bbox", "boundary"), max_dets=300)
    assert record["status"] == "done", record.get("reason")
    assert record["metrics"] == {name: dict(result.stats) for name, result in expected.items()}
    assert {"APr", "APc", "APf"} <= set(record["metrics"]["segm"])
    (tmp_path / "results.json").write_bytes(dumps(detections))
    assert main(["evaluate", "--gt", str(gt_file), "--predictions", str(tmp_path / "results.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == record["metrics"]  # the CLI detects LVIS and agrees
