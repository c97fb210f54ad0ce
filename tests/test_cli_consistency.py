"""One option name per concept across ``hf-noisy`` commands and the training script, the old spellings kept as
hidden aliases; usage errors exit 2 with the command's prefix; smoke examples write under a named folder."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hf_noisy.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "train" / "train_mask2former.py"
sys.path.insert(0, str(REPO / "train"))
import train_mask2former as m2f  # noqa: E402

#: (argv with the new name, argv with the old one, the dest both must fill): every renamed option
ALIASES = [
    (["noise", "in.json", "-o", "x.json"], ["noise", "in.json", "--output", "x.json"], "out"),
    (["show", "a", "b", "--images", "i", "-o", "d"], ["show", "a", "b", "--images", "i", "--output", "d"], "out"),
    (["show", "a", "b", "--images", "i", "-o", "d", "--num-images", "3"],
     ["show", "a", "b", "--images", "i", "-o", "d", "--num", "3"], "num_images"),
    (["fit", "a", "b", "--out", "s.yaml"], ["fit", "a", "b", "--output", "s.yaml"], "out"),
    (["fit", "a", "b", "--dataset", "coco-n"], ["fit", "a", "b", "--build", "coco-n"], "dataset"),
    (["quality", "a", "b", "--dataset", "coco-n"], ["quality", "a", "b", "--build", "coco-n"], "dataset"),
    (["export", "d", "--dataset-config", "hard", "-o", "x"], ["export", "d", "--config", "hard", "-o", "x"],
     "dataset_config"),
    (["export", "d", "--dataset-config", "hard", "-o", "x"], ["export", "d", "--dataset-config", "hard", "--output", "x"],
     "out"),
    (["convert", "cityscapes", "--root", "r", "--split", "val", "-o", "x"],
     ["convert", "cityscapes", "--root", "r", "--split", "val", "--output", "x"], "out"),
    (["wan", "in.json", "--images", "i", "-o", "x", "--prompt", "box"],
     ["wan", "in.json", "--images", "i", "--output", "x", "--prompt", "box"], "out"),
    (["audit", "--annotations", "a", "--predictions", "p", "-o", "x"],
     ["audit", "--annotations", "a", "--predictions", "p", "--output", "x"], "out"),
    (["evaluate", "--annotations", "g", "--predictions", "p"], ["evaluate", "--gt", "g", "--predictions", "p"],
     "annotations"),
    (["demo", "-o", "d"], ["demo", "--out", "d"], "out"),
    (["demo", "--num-images", "5"], ["demo", "--images", "5"], "num_images"),
    (["build", "shapes-n", "-o", "d"], ["build", "shapes-n", "--out", "d"], "out"),
    (["build", "coco-n", "-o", "d", "--image-storage", "none"], ["build", "coco-n", "-o", "d", "--images", "none"],
     "image_storage"),
    (["analyze", "losses", "run", "-o", "l.png"], ["analyze", "losses", "run", "--out", "l.png"], "out"),
    (["analyze", "confidence", "r.json", "-o", "c.png"], ["analyze", "confidence", "r.json", "--out", "c.png"], "out"),
    (["leaderboard", "upload-results", "r.json", "--repo-id", "a/b"],
     ["leaderboard", "upload-results", "r.json", "--repo", "a/b"], "repo_id"),
]
#: spellings no command shows in its --help any more (each still parses, see ALIASES)
RETIRED = {"--output", "--gt", "--build", "--num", "--repo", "--output-dir", "--hub-private", "--clean", "--noisy"}
#: options that name a folder of images wherever they appear (build's storage mode is --image-storage)
IMAGE_FOLDER = {"hf-noisy show", "hf-noisy wan", "hf-noisy audit"}


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


@pytest.mark.parametrize("new, old, dest", ALIASES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_old_spellings_parse_as_the_new_ones(new, old, dest):
    assert getattr(_parse(new), dest) == getattr(_parse(old), dest) is not None


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command and subcommand parser (``leaderboard init``, ``analyze losses``, ...) by its prog."""
    found, todo = {}, [build_parser()]
    while todo:
        parser = todo.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found[sub.prog] = sub
                    todo.append(sub)
    return found


def test_help_shows_one_vocabulary():
    commands = _commands()
    assert {f"hf-noisy {name}" for name in COMMANDS} <= set(commands)
    for prog, parser in commands.items():
        shown = {s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        help_text = parser.format_help()
        assert not shown & RETIRED and not any(f"{name} " in help_text for name in RETIRED - {"--num"}), prog
        if "--images" in shown:
            assert prog in IMAGE_FOLDER, prog
        writes = {a.dest for a in parser._actions if "--out" in a.option_strings}
        if writes:  # the output option is -o/--out wherever there is one
            assert next(a for a in parser._actions if "--out" in a.option_strings).option_strings == ["-o", "--out"]
    hidden = {s for s in m2f_parser()._option_string_actions}
    assert {"--output-dir", "--hub-private"} <= hidden
    shown = {s for a in m2f_parser()._actions for s in a.option_strings}
    assert {"-o", "--out", "--private"} <= shown and not shown & RETIRED


#: the commands that draw progress bars (they can run long): each has --no-progress, from the one helper
PROGRESS = {"noise", "convert", "build", "export", "wan", "evaluate", "quality", "fit", "audit", "analyze losses",
            "analyze confidence", "leaderboard evaluate"}


def test_long_running_commands_share_one_no_progress_option():
    from hf_noisy.cli._progress import add_progress_argument

    reference = argparse.ArgumentParser()
    add_progress_argument(reference)
    expected = reference._option_string_actions["--no-progress"].help
    commands = _commands()
    for name in PROGRESS:
        action = commands[f"hf-noisy {name}"]._option_string_actions.get("--no-progress")
        assert action is not None and action.help == expected, name
    with_option = {prog for prog, parser in commands.items() if "--no-progress" in parser._option_string_actions}
    assert with_option == {f"hf-noisy {name}" for name in PROGRESS}
    # when bars show is decided in one place: no command reads the option itself
    readers = sorted(p.name for p in (REPO / "hf_noisy" / "cli").glob("*.py") if "no_progress" in p.read_text())
    assert readers == ["_progress.py"]


def m2f_parser() -> argparse.ArgumentParser:
    """The training script's parser (captured from its parse_args, without running anything)."""
    captured = {}

    def capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    original, argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_args, capture
    try:
        with pytest.raises(SystemExit):
            m2f.parse_args([])
    finally:
        argparse.ArgumentParser.parse_args = original
    return captured["parser"]


def test_training_script_old_and_new_names_agree():
    new, _ = m2f.parse_args(["--dataset", "d", "-o", "run", "--private"])
    old, _ = m2f.parse_args(["--dataset", "d", "--output-dir", "run", "--hub-private"])
    assert new.output_dir == old.output_dir == "run" and new.hub_private is old.hub_private is True


def test_quality_takes_clean_noisy_as_fit_and_show_do(coco_tiny: Path, tmp_path: Path, capsys):
    gt = coco_tiny / "annotations" / "instances_val2017.json"
    noisy = tmp_path / "hard.json"
    assert main(["noise", str(gt), "-o", str(noisy), "--spec", "hard", "--no-progress", "--json"]) == 0
    capsys.readouterr()
    assert main(["quality", str(gt), str(noisy), "--json"]) == 0
    positional = json.loads(capsys.readouterr().out)
    assert main(["quality", "--clean", str(gt), "--noisy", str(noisy), "--json"]) == 0  # the old spelling
    assert json.loads(capsys.readouterr().out) == positional
    assert positional["groups"]["all"]["annotations"] > 0


def test_evaluate_new_and_old_names_give_the_same_numbers(coco_tiny: Path, tmp_path: Path, capsys):
    gt = coco_tiny / "annotations" / "instances_val2017.json"
    data = json.loads(gt.read_text())
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                                    "score": 0.9} for a in data["annotations"][:50] if not a["iscrowd"]]))
    outs = []
    for flag in ("--annotations", "--gt"):
        assert main(["evaluate", flag, str(gt), "--predictions", str(results), "--iou-types", "bbox", "--json",
                     "--num-proc", "1"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0]["bbox"]["AP"] > 0


# ------------------------------------------------------------------------------------------ usage errors
GT = "{coco}/annotations/instances_val2017.json"
#: (argv, prefix of the error line, words the message has): each must exit 2
USAGE_ERRORS = [
    (["noise", GT, "-o", "{tmp}/o.json", "--num-proc", "x"], "hf-noisy noise", "--num-proc"),
    (["noise", GT, "-o", "{tmp}/o.json", "--spec", "hardd"], "hf-noisy noise", "hardd"),
    (["noise", "{tmp}/missing.json", "-o", "{tmp}/o.json"], "hf-noisy noise", "missing.json"),
    (["noise", GT], "hf-noisy noise", "-o/--out"),
    (["spec", "hard", "--seed", "-3"], "hf-noisy spec", "seed"),
    (["show", GT, GT, "--images", "{tmp}", "-o", "{tmp}/ov", "--num-images", "0"], "hf-noisy show",
     "--num-images: expected a whole number >= 1"),
    (["evaluate", "--annotations", GT, "--predictions", "{tmp}/missing.json"], "hf-noisy evaluate", "missing.json"),
    (["evaluate", "--gt", GT, "--predictions", "{tmp}/p.json", "--lvis", "--no-lvis"], "hf-noisy evaluate",
     "--no-lvis"),
    (["evaluate", "--predictions", "{tmp}/p.json"], "hf-noisy evaluate", "--annotations"),
    (["quality", GT], "hf-noisy quality", "give NOISY once"),
    (["quality", GT, GT, "--clean", GT], "hf-noisy quality", "give CLEAN once"),
    (["fit", GT, GT, "--min-iou", "2"], "hf-noisy fit", "--min-iou: expected a number in (0, 1]"),
    (["build", "cocon", "-o", "{tmp}/b"], "hf-noisy build", "cocon"),
    (["build", "coco-n", "-o", "{tmp}/b"], "hf-noisy build", "--coco-root"),
    (["build", "shapes-n", "-o", "{tmp}/b", "--max-images", "3"], "hf-noisy build", "--max-images"),
    (["export", "{tmp}/nope", "--dataset-config", "hard", "-o", "{tmp}/x.json"], "hf-noisy export", "nope"),
    (["convert", "cityscapes", "--root", "{tmp}", "--split", "foo", "-o", "{tmp}/x.json"], "hf-noisy convert", "foo"),
    (["wan", GT, "--images", "{tmp}/none", "-o", "{tmp}/w.json", "--prompt", "boxes"], "hf-noisy wan", "boxes"),
    (["audit", "--annotations", GT, "--predictions", "{tmp}/p.json", "-o", "{tmp}/a.json", "--top", "-1"],
     "hf-noisy audit", "--top: expected a whole number >= 0"),
    (["random-sam", "{tmp}/rs", "--size", "big"], "hf-noisy random-sam", "big"),
    (["analyze", "confidence", "{tmp}/p.json", "--threshold", "2"], "hf-noisy analyze confidence",
     "--threshold: expected a number in [0, 1)"),
    (["analyze", "confidence", "{tmp}/missing.json"], "hf-noisy analyze confidence",
     "missing.json: no such file"),
    (["analyze", "losses", "{tmp}", "--buckets", "0"], "hf-noisy analyze losses",
     "--buckets: expected a whole number >= 1"),
    (["demo", "-o", "{tmp}/d", "--num-images", "0"], "hf-noisy demo", "--num-images: expected a whole number >= 1"),
    (["leaderboard", "init", "--store", "{tmp}/st", "--benchmark", "foo=bar"], "hf-noisy leaderboard init", "foo"),
    (["leaderboard", "evaluate", "--store", "{tmp}/st", "--cpu-seconds", "-1"], "hf-noisy leaderboard evaluate",
     "--cpu-seconds: expected a number in (0, inf)"),
    (["leaderboard", "serve", "--store", "{tmp}/st", "--port", "70000"], "hf-noisy leaderboard serve",
     "--port: expected a whole number in [0, 65535]"),
    (["leaderboard", "submit", "{tmp}/missing.json", "--store", "{tmp}/st", "--benchmark", "coco-n", "--trained-on",
      "hard", "--model-name", "m", "--submitter", "a"], "hf-noisy leaderboard submit", "missing.json"),
    (["push", "{tmp}/nope", "--repo-id", "a/b"], "hf-noisy push", "nope"),
    (["push-metric", "--repo-id", "a/b", "--module", "{tmp}/nope"], "hf-noisy push-metric", "nope"),
    (["leaderboard", "upload-results", "{tmp}/p.json"], "hf-noisy leaderboard upload-results", "--repo-id"),
]


@pytest.mark.parametrize("argv, prefix, word", USAGE_ERRORS, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_usage_errors_exit_2_with_the_command_prefix(argv, prefix, word, coco_tiny: Path, tmp_path: Path, capsys):
    (tmp_path / "p.json").write_text("[]")
    argv = [a.format(coco=coco_tiny, tmp=tmp_path) for a in argv]
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert err[-1].startswith(f"{prefix}: error: ") and word in err[-1], err[-1]
    assert "Traceback" not in "\n".join(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # nothing written


@pytest.mark.parametrize("argv, word", [
    (["--config", "tinyy", "--dataset", "d", "-o", "{tmp}/run"], "tinyy"),
    (["--dataset", "d", "-o", "{tmp}/run", "--fold", "3/2"], "--fold"),
    (["--dataset", "d", "-o", "{tmp}/run", "--predict-split", "train"], "--predictions-out"),
    (["--dataset", "d"], "-o/--out"),
    (["--dataset", "{tmp}/nope", "--output-dir", "{tmp}/run"], "nope"),
])
def test_training_script_usage_errors_exit_2_with_its_prefix(argv, word, tmp_path: Path):
    run = subprocess.run([sys.executable, str(TRAIN), *[a.format(tmp=tmp_path) for a in argv]], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 2 and last.startswith("train_mask2former.py: error: ") and word in last, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_console_entry_point_exits_2():
    run = subprocess.run([sys.executable, "-m", "hf_noisy.cli", "leaderboard", "serve", "--store", "s", "--port", "x"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].startswith("hf-noisy leaderboard serve: error:")


# ------------------------------------------------------------------------------------------ smoke outputs
def test_examples_write_under_a_named_folder():
    """The smoke-run examples in --help write under smoke/, not bare names in the current folder."""
    import importlib

    for name in ("random-sam", "wan"):
        description = importlib.import_module(f"hf_noisy.cli.{COMMANDS[name]}").DESCRIPTION
        assert "random-sam smoke/tiny-sam" in description and "--model smoke/tiny-sam" in description
        assert "random-sam tiny-sam" not in description and "-o smoke.json" not in description


def test_confidence_figure_defaults_beside_its_results(tmp_path: Path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, score in (("a.json", 0.9), ("b.json", 0.7)):
        (runs / name).write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": score}]))
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "confidence", "runs/a.json", "runs/b.json", "--json"]) == 0
    assert (runs / "confidence.png").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_demo_takes_o(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "-o", "named", "--num-images", "3"]) == 0
    assert "wrote named/" in capsys.readouterr().out
    assert (tmp_path / "named" / "summary.md").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["named"]
