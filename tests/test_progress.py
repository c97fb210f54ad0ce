"""Progress bars: the library is quiet unless asked; asked, it counts real units (bytes read, images scored,
annotations paired, submissions handled) up to their totals, and the numbers do not change; the commands show
bars on a terminal only, and never with --no-progress."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.progress import datasets_bars, progress_bar

REPO = Path(__file__).resolve().parents[1]


def _bars(err: str) -> dict[str, str]:
    """The last state drawn of each bar in tqdm's output ``err``: ``{description: "n/total"}``."""
    states = {}
    for line in re.split(r"[\r\n]+", err):
        found = re.match(r"\s*([A-Za-z][\w ]*?):\s+(?:\d+%\|.*?\|\s*)?([\d.]+[kMG]?(?:/[\d.]+[kMG]?)?)\s", line)
        if found:
            states[found.group(1)] = found.group(2)
    return states


def test_a_disabled_bar_writes_nothing_and_an_enabled_one_counts(capsys):
    with progress_bar(False, total=3, desc="quiet", unit="img") as bar:
        bar.update(2)
        bar.set_postfix_str("x")
    assert capsys.readouterr().err == ""
    with progress_bar(True, total=3, desc="loud", unit="img") as bar:
        bar.update(2)
        bar.update(1)
    assert _bars(capsys.readouterr().err) == {"loud": "3/3"}


# -- the library: quiet by default, the same numbers with bars -------------------------------------------------
@pytest.fixture(scope="module")
def scored(shared_dir: Path) -> tuple[dict, Path]:
    from hf_noisy.coco import load_coco

    gt = load_coco(shared_dir / "data" / "coco-tiny" / "annotations" / "instances_val2017.json")
    return gt, shared_dir / "data" / "vectors" / "eval_val2017_detections.json"


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].stats == b[name].stats
        np.testing.assert_array_equal(a[name].precision, b[name].precision)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_evaluate_counts_the_bytes_read_and_the_images_scored(scored, num_proc: int, capsys):
    from hf_noisy.metrics import evaluate

    gt, results = scored
    quiet = evaluate(gt, results, num_proc=num_proc)
    assert capsys.readouterr().err == ""  # library callers and tests see nothing by default
    counted = []
    loud = evaluate(gt, results, num_proc=num_proc, progress=True, on_images=counted.append)
    bars = _bars(capsys.readouterr().err)
    size = os.path.getsize(results)
    assert bars["scoring"] == f"{len(gt['images'])}/{len(gt['images'])}"
    assert bars["reading results"].split("/")[0] == bars["reading results"].split("/")[1]  # the whole file
    assert f"{size / 1024:.0f}k" in bars["reading results"] or f"{size / 1024:.1f}k" in bars["reading results"]
    assert sum(counted) == len(gt["images"]) and len(counted) > 1  # in chunks, as they are scored
    _same(quiet, loud)
    listed = evaluate(gt, json.loads(results.read_text()), progress=True)  # a list: nothing to read
    assert set(_bars(capsys.readouterr().err)) == {"scoring"}
    _same(quiet, listed)


def test_quality_counts_pairs_then_images_per_group(coco_tiny: Path, tmp_path: Path, capsys):
    from hf_noisy.coco import load_coco
    from hf_noisy.metrics import score_quality
    from hf_noisy.noise import PRESETS, noise_file

    clean_path = coco_tiny / "annotations" / "instances_val2017.json"
    noise_file(clean_path, tmp_path / "noisy.json", PRESETS["medium"])
    clean, noisy = load_coco(clean_path), load_coco(tmp_path / "noisy.json", allow_empty_masks=True)
    capsys.readouterr()
    quiet = score_quality(clean, noisy)
    assert capsys.readouterr().err == ""
    loud = score_quality(clean, noisy, progress=True)
    bars = _bars(capsys.readouterr().err)
    n, images = len(noisy["annotations"]), len(clean["images"]) * len(quiet.groups)
    assert bars == {"pairing": f"{n}/{n}", "AP per group": f"{images}/{images}"} and len(quiet.groups) > 2
    assert loud.to_dict() == quiet.to_dict()


def test_audit_counts_images(coco_tiny: Path, capsys):
    from hf_noisy.audit import audit_coco
    from hf_noisy.coco import load_coco

    from _leaderboard import predictions

    gt = load_coco(coco_tiny / "annotations" / "instances_val2017.json")
    results = predictions(gt, seed=2)
    quiet = audit_coco(gt, results)
    assert capsys.readouterr().err == ""
    loud = audit_coco(gt, results, progress=True)
    assert _bars(capsys.readouterr().err) == {"auditing": f"{len(gt['images'])}/{len(gt['images'])}"}
    assert loud == quiet


def _loss_run(folder: Path) -> Path:
    """A run folder with instance-loss files in the training script's schema: 2 ranks x 2 flushes, 4 epochs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hf_noisy.models.instance_log import SCHEMA

    rng = np.random.default_rng(0)
    for rank in range(2):
        for part in range(2):
            rows = []
            for step in range(part * 20, part * 20 + 20):
                for k in range(6):
                    op = ("none", "dilate", "erode")[k % 3]
                    rows.append({"rank": rank, "step": step, "epoch": step // 10, "micro_batch": 0, "image_id": k,
                                 "annotation_id": k, "query": k, "category_id": 1,
                                 "class_loss": float(rng.uniform()) + (op != "none"),
                                 "mask_bce": float(rng.uniform()), "mask_dice": float(rng.uniform()),
                                 "noise_op": op, "noise_param": None, "class_flipped": k == 5, "sam_prompt": None})
            path = folder / "instance_losses" / f"rank-{rank}" / f"steps-{part * 20}-{part * 20 + 19}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return folder


def test_analyze_counts_files_buckets_and_bytes(tmp_path: Path, capsys):
    from hf_noisy.analysis import analyze_confidence, analyze_losses

    run = _loss_run(tmp_path / "run")
    quiet = analyze_losses(run)
    assert capsys.readouterr().err == ""
    loud = analyze_losses(run, progress=True)
    assert _bars(capsys.readouterr().err) == {"reading losses": "4/4", "summarising": "4/4"}  # 4 epochs
    assert (loud.summary, loud.separability) == (quiet.summary, quiet.separability)
    files = []
    for name, scores in (("a", [0.9, 0.2, 0.7]), ("b", [0.4] * 400)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": s} for s in scores]))
    quiet = analyze_confidence(files)
    assert capsys.readouterr().err == ""
    loud = analyze_confidence(files, progress=True)
    size = sum(f.stat().st_size for f in files)
    assert _bars(capsys.readouterr().err) == {"reading results": f"{size / 1024:.1f}k/{size / 1024:.1f}k"}
    assert [r["mean_score"] for r in loud.runs] == [r["mean_score"] for r in quiet.runs]


# -- the commands: bars on a terminal, none with --no-progress or without a terminal ---------------------------
def _run(argv: list[str], cwd: Path, terminal: bool, **env_vars: str) -> tuple[int, str, str]:
    """``hf-noisy ARGV`` in a child process, its stderr a pseudo-terminal (80 columns, as a terminal window has)
    or a pipe, ``env_vars`` added to its environment: (exit status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env_vars}
    command = [sys.executable, "-m", "hf_noisy.cli", *argv]
    if not terminal:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=slave) as child:
        os.close(slave)
        err = b""
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child's end is closed
                break
            if not data:
                break
            err += data
        os.close(master)
        out = child.stdout.read().decode()
        child.wait(timeout=600)
    return child.returncode, out, err.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def inputs(coco_tiny: Path, tmp_path_factory) -> Path:
    """coco-tiny val (20 images), a noisy copy, predictions, an instance-loss run and a leaderboard store with
    one pending submission."""
    from _leaderboard import predictions, small_gt, write_gt

    from hf_noisy.leaderboard import SubmissionMeta, init_store, parse_benchmark_sources, submit
    from hf_noisy.noise import PRESETS, noise_file

    folder = tmp_path_factory.mktemp("progress")
    gt = small_gt(coco_tiny, 20)
    write_gt(gt, folder / "gt.json")
    noise_file(folder / "gt.json", folder / "noisy.json", PRESETS["medium"])
    (folder / "results.json").write_text(json.dumps(predictions(gt, seed=1)))
    _loss_run(folder / "run")
    init_store(folder / "board", parse_benchmark_sources([f"coco-n={folder / 'gt.json'}"]))
    submit(folder / "board", folder / "results.json",
           SubmissionMeta(model_name="M2F R50", benchmark="coco-n", trained_on="hard", submitter="alice"))
    return folder


COMMANDS = {
    "evaluate": (["evaluate", "--gt", "gt.json", "--predictions", "results.json", "--json"],
                 {"reading results", "scoring"}),
    "quality": (["quality", "--clean", "gt.json", "--noisy", "noisy.json", "--json"], {"pairing", "AP per group"}),
    "audit": (["audit", "--annotations", "gt.json", "--predictions", "results.json", "-o", "audit.json",
               "--overwrite"], {"auditing"}),
    "fit": (["fit", "gt.json", "noisy.json", "--max-images", "6", "--json"],
            {"replaying pairs", "simulating localization"}),
    "analyze losses": (["analyze", "losses", "run", "--json", "--out", "losses.png", "--overwrite"],
                       {"reading losses", "summarising"}),
    "analyze confidence": (["analyze", "confidence", "results.json", "--json", "--out", "confidence.png",
                            "--overwrite"], {"reading results"}),
}


@pytest.mark.slow  # starts a process per command and mode
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_shows_bars_on_a_terminal_only_and_the_same_output(inputs: Path, command: str):
    argv, expected = COMMANDS[command]
    status, out, err = _run(argv, inputs, terminal=True)
    assert status == 0, err[-2000:]
    bars = _bars(err)
    assert set(bars) == expected, err[-2000:]
    for state in bars.values():  # each bar drawn to its end
        done, total = state.split("/")
        assert done == total, err[-2000:]
    status, quiet_out, quiet_err = _run([*argv, "--no-progress"], inputs, terminal=True)
    assert status == 0 and quiet_err == "" and quiet_out == out  # the same output, to the byte
    status, piped_out, piped_err = _run(argv, inputs, terminal=False)
    assert status == 0 and piped_err == "" and piped_out == out


@pytest.mark.slow  # scores a submission in the sandboxed child
def test_leaderboard_evaluate_counts_submissions_on_a_terminal(inputs: Path, tmp_path: Path):
    import shutil

    for mode in ("terminal", "--no-progress"):
        store = tmp_path / mode / "board"
        shutil.copytree(inputs / "board", store)
        argv = ["leaderboard", "evaluate", "--store", str(store)]
        if mode == "terminal":
            status, out, err = _run(argv, inputs, terminal=True)
            assert status == 0 and _bars(err) == {"scoring submissions": "1/1"}, err[-2000:]
        else:
            status, out, err = _run([*argv, mode], inputs, terminal=True)
            assert status == 0 and err == ""
        assert re.fullmatch(r"done    \S+: mask AP 0\.\d{4}, boundary AP 0\.\d{4}, box AP 0\.\d{4}\n", out), out


# -- the datasets library's own bars: they follow progress=, and the caller's setting is kept ----------------
@pytest.fixture(scope="module")
def small_build(coco_tiny: Path, tmp_path_factory) -> Path:
    """A coco-n build of 2 images with the clean and easy configs."""
    from hf_noisy.hub import build_benchmark

    return build_benchmark("coco-n", tmp_path_factory.mktemp("build") / "coco-n", coco_root=coco_tiny,
                           max_images=2, configs=["clean", "easy"]).path


@pytest.fixture
def datasets_bars_setting():
    """datasets' global bar setting, put back as it was after the test whatever the test did."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    yield datasets
    (datasets.disable_progress_bars if was_disabled else datasets.enable_progress_bars)()


@pytest.mark.parametrize("disabled_before", [False, True])
def test_export_coco_turns_the_datasets_bars_off_around_its_own_calls_only(small_build: Path, tmp_path: Path,
                                                                          capsys, datasets_bars_setting,
                                                                          disabled_before: bool):
    from hf_noisy.hub import export_coco, load_coco_n

    datasets = datasets_bars_setting
    (datasets.disable_progress_bars if disabled_before else datasets.enable_progress_bars)()
    # a fresh cache_dir each call, so that datasets generates the split (and would draw its bar) every time
    quiet = export_coco(small_build, "easy", "train", cache_dir=str(tmp_path / "a"))
    assert load_coco_n(small_build, "easy", split="train", cache_dir=str(tmp_path / "b")).num_rows == 2
    assert capsys.readouterr().err == ""
    assert datasets.are_progress_bars_disabled() is disabled_before
    loud = export_coco(small_build, "easy", "train", cache_dir=str(tmp_path / "c"), progress=True)
    err = capsys.readouterr().err
    assert ("Generating train split" in err) is not disabled_before  # progress=True never overrides the caller
    assert datasets.are_progress_bars_disabled() is disabled_before
    assert loud == quiet and len(quiet["annotations"]) > 0


def test_datasets_bars_restores_the_setting_after_an_error(datasets_bars_setting):
    datasets = datasets_bars_setting
    datasets.enable_progress_bars()
    with pytest.raises(KeyError), datasets_bars(False):
        assert datasets.are_progress_bars_disabled()
        raise KeyError("inside")
    assert not datasets.are_progress_bars_disabled()


DATASET_COMMANDS = {
    "export": ["export", "{build}", "--dataset-config", "easy", "-o", "easy.json", "--overwrite"],
    "quality --dataset": ["quality", "--dataset", "{build}", "clean", "easy", "--json"],
    "fit --dataset": ["fit", "--dataset", "{build}", "clean", "easy", "--json"],
}


@pytest.mark.slow  # starts a process per command and mode
@pytest.mark.parametrize("command", list(DATASET_COMMANDS))
def test_datasets_bars_show_on_a_terminal_only_and_never_with_no_progress(small_build: Path, tmp_path: Path,
                                                                         command: str):
    argv = [arg.replace("{build}", str(small_build)) for arg in DATASET_COMMANDS[command]]
    runs = {}
    for mode in ("terminal", "--no-progress", "pipe"):
        home = str(tmp_path / mode)  # an empty datasets cache: the splits are generated, with their bars
        extra = ["--no-progress"] if mode == "--no-progress" else []
        runs[mode] = _run([*argv, *extra], tmp_path, terminal=mode != "pipe", HF_HOME=home)
        assert runs[mode][0] == 0, runs[mode][2][-2000:]
    err = runs["terminal"][2]
    assert _bars(err)["Generating train split"] == "2/2" and "%|" in err, err[-2000:]
    for mode in ("--no-progress", "pipe"):
        status, out, err = runs[mode]
        assert err == "" and out == runs["terminal"][1], (mode, err[-2000:])  # no bar; the same output
