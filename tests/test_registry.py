"""The benchmark registry (hf_noisy.benchmarks) and the leaderboard policy (hf_noisy.leaderboard.policy): every
record complete, unknown ids refused by name, every consumer (builder, build CLI, loader hints, board, board CLI)
agreeing with the registry, the policy's "None means the benchmark's" resolved field by field, and no cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions

from hf_noisy import benchmarks
from hf_noisy.benchmarks import CONFIGS, UnknownBenchmark
from hf_noisy.errors import HfNoisyError

ROOT = Path(__file__).resolve().parents[1]


def test_an_unknown_id_is_refused_naming_the_known_ones():
    from hf_noisy.leaderboard import rules_for, scoring_limits
    from hf_noisy.leaderboard.policy import Limits

    for wrong in ("LVIS-N", "lvis", "", None):
        with pytest.raises(UnknownBenchmark, match="choose from coco-n, cityscapes-n, lvis-n, coco-wan, shapes-n"):
            benchmarks.get(wrong)
    # rules_for("LVIS-N") used to answer COCO rules (100 detections) for any id but "lvis-n"
    with pytest.raises(HfNoisyError, match="unknown benchmark 'LVIS-N'"):
        rules_for("LVIS-N")
    with pytest.raises(HfNoisyError, match="unknown benchmark 'LVIS-N'"):
        Limits().for_benchmark("LVIS-N")
    with pytest.raises(HfNoisyError, match="shapes-n is not on the leaderboard; a board holds coco-n, "):
        scoring_limits("shapes-n")


@pytest.mark.parametrize("name", benchmarks.ids())
def test_every_record_is_complete(name: str):
    from hf_noisy.hub import benchmark_info
    from hf_noisy.metrics import LVIS_MAX_DETS

    record = benchmarks.get(name)
    assert record.id == name and record.title and record.source_help
    assert callable(record.reader.load())
    assert set(record.needs) <= set(record.options) and record.options[:len(record.needs)] == record.needs
    assert record.images in ("embedded", "shared", "none") and record.license_tag
    assert record.protocol in ("coco", "lvis")
    assert record.detections_per_image == (LVIS_MAX_DETS if record.protocol == "lvis" else 100)
    info = benchmark_info(name)  # every card text loads
    assert info.name == name and info.title == record.title and info.license_tag == record.license_tag
    assert info.about and info.license_text and info.pretty_name.startswith(record.title)
    assert set(info.config_text) <= set(CONFIGS)
    if record.precomputed:
        assert record.precomputed_from in record.needs and set(record.precomputed) <= set(CONFIGS)
    if record.source_folder is not None:
        assert record.source_folder.option in record.needs and record.source_folder.marks
    if record.board is not None:
        assert all(getattr(record.board, item.name) > 0 for item in fields(record.board))


def test_the_registry_is_a_leaf():
    """``import hf_noisy.benchmarks`` loads nothing of hf-noisy but its errors; the policy imports the registry
    and the errors only."""
    code = "import sys, hf_noisy.benchmarks; print(sorted(m for m in sys.modules if m.startswith('hf_noisy')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(loaded.stdout.replace("'", '"')) == ["hf_noisy", "hf_noisy.benchmarks", "hf_noisy.errors"]
    policy = ast.parse((ROOT / "hf_noisy/leaderboard/policy.py").read_text())
    imported = {(node.level, node.module) for node in ast.walk(policy) if isinstance(node, ast.ImportFrom)}
    assert {(level, module) for level, module in imported if level} == {(2, None), (2, "benchmarks"), (2, "errors")}


def test_the_leaderboard_has_no_import_cycle():
    """Every import between leaderboard modules, those inside functions included: no cycle (rules, sandbox and
    submission used to import each other lazily)."""
    folder = ROOT / "hf_noisy" / "leaderboard"
    graph = {}
    for path in folder.glob("*.py"):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text())
        graph[path.stem] = {name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                            for name in ([node.module.split(".")[0]] if node.module else
                                         [alias.name for alias in node.names])}

    def visit(node: str, path: tuple[str, ...]) -> None:
        for dep in graph.get(node, ()):
            assert dep not in path, f"import cycle: {' -> '.join(path + (dep,))}"
            visit(dep, path + (dep,))

    for module in graph:
        visit(module, (module,))


def test_the_consumers_agree_with_the_registry(tmp_path: Path):
    from hf_noisy.cli import build_parser
    from hf_noisy.hub.load import build_folder
    from hf_noisy.leaderboard import SubmissionError, SubmissionMeta, parse_benchmark_sources
    from hf_noisy.leaderboard.app import ABOUT
    from hf_noisy.leaderboard.policy import limits_text

    parser = build_parser()
    build = parser._subparsers._group_actions[0].choices["build"]
    dataset = next(action for action in build._actions if action.dest == "dataset")
    assert tuple(dataset.choices) == benchmarks.ids()
    flags = {flag for action in build._actions for flag in action.option_strings}
    for name in benchmarks.ids():
        record = benchmarks.get(name)
        assert {f"--{option.replace('_', '-')}" for option in record.options} <= flags
        assert name in build.description and record.source_help in build.description
    # The board holds exactly the benchmarks with board budgets; its meta, sources and About tab say so.
    board = benchmarks.board_ids()
    assert board == tuple(name for name in benchmarks.ids() if benchmarks.get(name).board is not None)
    assert "shapes-n" not in board and "lvis-n" in board
    meta = SubmissionMeta("M", "coco-n", "hard", "alice")
    for name in board:
        replace(meta, benchmark=name).check()
        assert f"| {name} | {benchmarks.get(name).protocol.upper()} |" in limits_text()
    with pytest.raises(SubmissionError, match="'shapes-n' is not one of coco-n"):
        replace(meta, benchmark="shapes-n").check()
    with pytest.raises(HfNoisyError, match="unknown benchmark 'shapes-n'"):
        parse_benchmark_sources(["shapes-n=x.json"])
    assert limits_text() in ABOUT
    # The loader names the build command of the benchmark whose raw source folder it is given.
    for name in benchmarks.ids():
        source = benchmarks.get(name).source_folder
        if source is None:
            continue
        folder = tmp_path / name
        (folder / source.marks[0]).parent.mkdir(parents=True, exist_ok=True)
        (folder / source.marks[0]).write_text("{}")
        with pytest.raises(HfNoisyError, match=f"is {source.what}.*hf-noisy build {name} .*--out {name}$"):
            build_folder(folder)


def test_build_benchmark_refuses_bad_source_options(tmp_path: Path):
    from hf_noisy.hub import build_benchmark

    with pytest.raises(UnknownBenchmark):
        build_benchmark("COCO-N", tmp_path / "out", coco_root=tmp_path)
    with pytest.raises(HfNoisyError, match="coco-n takes no source option wan_dir; its options: coco_root"):
        build_benchmark("coco-n", tmp_path / "out", coco_root=tmp_path, wan_dir=tmp_path)
    with pytest.raises(HfNoisyError, match="lvis-n needs lvis_root and coco_root"):
        build_benchmark("lvis-n", tmp_path / "out")
    with pytest.raises(HfNoisyError, match="shapes-n is generated: size it with its options"):
        build_benchmark("shapes-n", tmp_path / "out", max_images=2)
    assert list(tmp_path.iterdir()) == []


def test_policy_resolves_none_to_the_benchmarks_value_field_by_field():
    from hf_noisy.leaderboard.policy import Limits, SandboxLimits, check_limits, scoring_limits

    lvis = benchmarks.get("lvis-n").board
    caps = Limits().for_benchmark("lvis-n")
    assert (caps.max_compressed_bytes, caps.max_uncompressed_bytes) == (lvis.max_compressed_bytes,
                                                                      lvis.max_uncompressed_bytes)
    mine = Limits(max_compressed_bytes=0, per_day=1).for_benchmark("lvis-n")  # an explicit 0 stays
    assert (mine.max_compressed_bytes, mine.max_uncompressed_bytes, mine.per_day) == (0, lvis.max_uncompressed_bytes, 1)
    assert scoring_limits("lvis-n") == SandboxLimits(lvis.cpu_seconds, lvis.memory_mb, 2 * lvis.cpu_seconds + 600)
    assert scoring_limits("lvis-n", memory_mb=2048) == SandboxLimits(lvis.cpu_seconds, 2048, 2 * lvis.cpu_seconds + 600)
    assert scoring_limits("coco-n", cpu_seconds=60) == SandboxLimits(60, benchmarks.get("coco-n").board.memory_mb, 720)
    assert check_limits("lvis-n") == SandboxLimits(lvis.check_cpu_seconds, lvis.check_memory_mb,
                                                   3 * lvis.check_cpu_seconds + 60, retries=0)


def test_evaluate_memory_flag_keeps_the_lvis_n_cpu_budget(shared_dir: Path, tmp_path: Path):
    """`hf-noisy leaderboard evaluate --memory-mb` once replaced every budget by the defaults (an LVIS-N
    submission got COCO's 1800 CPU-s): each flag overrides only itself, the rest stays the benchmark's."""
    from hf_noisy.cli import main
    from hf_noisy.coco import load_coco
    from hf_noisy.leaderboard import list_results

    gt_file = shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json"
    results = tmp_path / "results.json"
    results.write_bytes(dumps(predictions(load_coco(gt_file, allow_empty_masks=True), seed=3, limit=40)))
    store = str(tmp_path / "board")
    assert main(["leaderboard", "init", "--store", store, "--benchmark", f"lvis-n={gt_file}"]) == 0
    assert main(["leaderboard", "submit", str(results), "--store", store, "--benchmark", "lvis-n", "--trained-on",
                 "hard", "--model-name", "M", "--submitter", "alice"]) == 0
    assert main(["leaderboard", "evaluate", "--store", store, "--memory-mb", "2048"]) == 0
    (record,) = list_results(store).values()
    assert record["status"] == "done", record.get("reason")
    assert record["limits"] == {"cpu_seconds": benchmarks.get("lvis-n").board.cpu_seconds, "memory_mb": 2048.0}


@pytest.mark.parametrize("name", ["coco-n", "lvis-n", "cityscapes-n", "coco-wan"])
def test_a_build_with_fewer_images_than_the_whole_source_is_a_subset(name):
    record = benchmarks.get(name)
    full = dict(record.full_source)
    assert set(full) == {"train", "validation"} and all(n > 0 for n in full.values())
    assert record.subset(full) is None  # the whole source
    assert record.subset({split: n + 5 for split, n in full.items()}) is None  # --max-images above the size: whole
    fewer = dict(full, validation=full["validation"] - 1)  # one image short in one split is a subset
    assert record.subset(fewer) == {"train": {"images": full["train"], "of": full["train"]},
                                    "validation": {"images": full["validation"] - 1, "of": full["validation"]}}


def test_a_generated_source_is_never_a_subset_and_labels_read_as_the_card_shows():
    assert benchmarks.get("shapes-n").subset({"train": 3, "validation": 1}) is None
    assert benchmarks.get("coco-n").full_source == {"train": 118287, "validation": 5000}
    assert benchmarks.version_label({"benchmark_version": "v1.0", "source_subset": None}) == "v1.0"
    assert benchmarks.version_label({"benchmark_version": "custom"}) == "custom"  # a folder built before the field
    assert benchmarks.version_label({"benchmark_version": "custom", "source_subset": {
        "train": {"images": 10, "of": 2975}, "validation": {"images": 500, "of": 500}}}) == \
        "custom (subset: 10 of 2,975 train images, 500 of 500 validation images)"
