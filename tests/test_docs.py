"""Every ```bash and ```python block of README.md and of every docs/**/*.md page runs, in page order; the site
builds with ``mkdocs build --strict``.

Conventions (for whoever adds a page or a block; the shared contract is the docs' own):

* Other fences (```text, ```yaml, ```console, ```json, ...) are not run: use ```text for a command that must not
  run in a test (``mkdocs serve``, an install line meant for the reader only).
* A block whose fence is directly preceded by the line ``<!-- docs-test: skip REASON -->`` is skipped with
  REASON (only for what a test cannot have: a multi-GB download, a GPU, the network or the real Hub). Nothing
  else is skipped: a block the test cannot run fails. Each skipped block is reported as a skipped test of its
  own (``test_skipped_block``), with its page, line and reason.
* **Tutorial pages** (``docs/tutorials/*.md``) run exactly as written: the page starts in a fresh, empty
  temporary folder (the working directory), with nothing prepared. A bash block runs as one ``bash -euo
  pipefail`` script, with this Python's ``bin`` folder first on ``PATH`` (its ``hf-noisy``, ``python``,
  ``accelerate``) and ``HF_HUB_OFFLINE=1``; python blocks run in this process, in one namespace per page (like a
  notebook), with that folder as the working directory. A tutorial makes its own data from what the package
  ships (``hf_noisy.synthetic.make_shapes_coco``, ``hf-noisy demo``, ``hf-noisy build shapes-n``, ``hf-noisy
  random-sam``) and never reads ``../shared`` or the repository's files. Each tutorial runs twice in a row in
  the same folder (``test_tutorial_reruns``, marked slow): a rerun must pass too (``--overwrite`` /
  ``overwrite=True`` where it would collide).
* **Guide, concept and reference pages, and README.md**, may refer to the reader's own files. Each page gets a
  FRESH workspace, its working directory, holding what a reader of that page has, made from the shipped tiny
  data (so pages never depend on each other):
  ``instances_{train,val}2017.json``, ``train2017/``, ``val2017/`` (coco-tiny); ``eval/`` and ``train/`` (the
  repository's, as seen from a clone's root); and, when the page's code names them, ``coco-n/`` (COCO-N from the
  first 4 images of coco-tiny), ``cityscapes-n/`` (cityscapes-tiny, annotation-only, configs clean and hard),
  ``lvis_v1_val.json`` (lvis-tiny) with ``results.json`` (predictions on it), and ``results.json.gz``
  (predictions on ``coco-n``'s clean validation split, for the leaderboard). The dataset roots ``"/data/coco"``,
  ``"/data/cityscapes"`` and ``"/data/lvis"`` in python code stand for the shipped tiny copies
  (cityscapes-tiny's one val frame serves as train too).
  Blocks run in page order in the page's workspace, so a block sees the files an earlier block of its page
  wrote: python blocks in this process, each in a fresh namespace; of a bash block, each line that starts with
  ``hf-noisy`` is parsed by the CLI's own argument parser (an unknown command or option fails the test), and
  runs as written (through the CLI's entry point, the dataset roots replaced as in python) when it is
  ``hf-noisy spec ... > FILE`` or ``hf-noisy leaderboard init ...``, or a ``noise``, ``show``, ``fit``,
  ``export`` or ``convert`` command whose every input file or folder is in the workspace. The other lines are
  not run: ``pip``, ``python``, ``accelerate launch`` and loops; ``build``, ``push``, ``wan``, ``train`` and the
  board's ``submit``/``evaluate``/``serve`` (full-size builds, multi-GPU training, the Hub, a server that does
  not return); and ``evaluate``, ``quality`` and ``audit``, whose ``results.json`` is a different model's on
  each page. The tutorials run those jobs for real.
* Some python blocks get extra checks of what they made (``CHECKS``, keyed by a call the block contains).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

import hf_noisy
from hf_noisy.cli import build_parser, main
from hf_noisy.noise import PRESETS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
TUTORIALS = DOCS / "tutorials"
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s+(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>bash|python)\n(?P<code>.*?)^```", re.S | re.M)
#: guide bash lines run as written to make workspace files (``hf-noisy ...`` with an optional ``> FILE``)
BASH_SETUP = ("hf-noisy spec ", "hf-noisy leaderboard init ")
#: guide commands run as written when every file or folder they read is in the page's workspace
RUN_COMMANDS = {"noise", "show", "fit", "export", "convert"}
#: the README's first lines, unchanged: the heading and the two set-up commands
README_HEAD = [
    "# hf-noisy",
    "",
    "```bash",
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[hub]" && hf-noisy demo',
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e \".[test]\" && pytest -q",
    "```",
]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int        # line of the opening fence
    lang: str        # bash | python
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def page_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").splitlines()
        skip = SKIP.match(before[-1]) if before else None
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page, line, match["lang"], match["code"], skip["reason"] if skip else None))
    return blocks


def is_tutorial(page: Path) -> bool:
    return page.parent == TUTORIALS


def _id(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def _params(tutorial: bool) -> list:
    """One param per page that has a block to run; a page with python blocks (or a tutorial) is marked slow."""
    params = []
    for page in pages():
        blocks = [b for b in page_blocks(page) if not b.skip]
        if is_tutorial(page) != tutorial or not blocks:
            continue
        slow = tutorial or any(b.lang == "python" for b in blocks)
        params.append(pytest.param(page, id=_id(page), marks=[pytest.mark.slow] if slow else []))
    return params


# -- page shape ------------------------------------------------------------------------------------------------------


def test_readme_starts_with_the_two_commands_and_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[:len(README_HEAD)] == README_HEAD
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the docs pages take the rest"


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)]
    local = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    assert len(local) >= 10
    # before the tutorials branch is merged, docs/tutorials/ does not exist at all: then only its links may dangle
    missing = [t for t in local if not (REPO / t).exists()
               and (TUTORIALS.is_dir() or not t.startswith("docs/tutorials/"))]
    assert not missing, f"README.md links to missing files: {missing}"


def test_blocks_are_found_and_skip_markers_precede_a_fence():
    blocks = [b for page in pages() for b in page_blocks(page)]
    assert sum(b.lang == "python" for b in blocks) >= 15 and sum(b.lang == "bash" for b in blocks) >= 15
    assert all(b.skip is None or len(b.skip) > 10 for b in blocks), "a skip needs its reason"
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if SKIP.match(line):
                assert i + 1 < len(lines) and re.match(r"```(bash|python)$", lines[i + 1]), (
                    f"{_id(page)}:{i + 1}: a docs-test skip marker must be directly above a bash or python fence")
            assert "readme-test:" not in line, f"{_id(page)}:{i + 1}: the marker is now <!-- docs-test: skip ... -->"


def test_tables_that_the_code_also_states_agree():
    """Tables a page copies from the code: the board's limits, and the levels of the paper's Table 7."""
    from hf_noisy.leaderboard.policy import limits_text

    assert limits_text() in (DOCS / "guide" / "leaderboard.md").read_text(encoding="utf-8")
    noise = (DOCS / "guide" / "noise.md").read_text(encoding="utf-8")
    rows = {cells[0]: cells[1:] for line in noise.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for level, spec in PRESETS.items():
        ops = {op.op: op for op in spec.spatial}
        assert rows[level] == [f"{spec.class_noise.rate:.0%}", f"k = {ops['scale'].param:g}",
                               f"sigma = {ops['localization'].param:g}", f"d = {ops['approximation'].param:g}",
                               f"{ops['scale'].prob:.2f}"], level
        assert len({op.prob for op in spec.spatial}) == 1


@pytest.mark.parametrize("block", [b for page in pages() for b in page_blocks(page) if b.skip],
                         ids=lambda b: b.where)
def test_skipped_block(block: Block):
    pytest.skip(f"{block.where}: {block.skip}")


# -- guide pages: a fresh workspace each ------------------------------------------------------------------------------


def _cityscapes_root(sample: Path, root: Path) -> Path:
    for kind in ("leftImg8bit", "gtFine"):
        (root / kind / "train").mkdir(parents=True)
        (root / kind / "val").symlink_to(sample / kind / "val")
        (root / kind / "train" / "frankfurt").symlink_to(sample / kind / "val" / "frankfurt")
    return root


class Prebuilt:
    """What several pages' workspaces hold, built once per session and copied into each workspace."""

    def __init__(self, root: Path, shared: Path, coco_tiny: Path):
        self.root, self.shared, self.coco_tiny = root, shared, coco_tiny

    @cached_property
    def cityscapes_root(self) -> Path:
        return _cityscapes_root(self.shared / "data" / "cityscapes-tiny", self.root / "cityscapes")

    @cached_property
    def coco_n(self) -> Path:
        return self._build("coco-n", coco_root=self.coco_tiny, max_images=4)

    @cached_property
    def cityscapes_n(self) -> Path:
        return self._build("cityscapes-n", cityscapes_root=self.cityscapes_root, configs=("clean", "hard"))

    def _build(self, benchmark: str, **options) -> Path:
        from hf_noisy.hub import build_benchmark

        out = self.root / benchmark
        build_benchmark(benchmark, out, **options)
        return out


@pytest.fixture(scope="session")
def prebuilt(shared_dir: Path, coco_tiny: Path, tmp_path_factory) -> Prebuilt:
    return Prebuilt(tmp_path_factory.mktemp("docs-prebuilt"), shared_dir, coco_tiny)


def make_workspace(ws: Path, code: str, prebuilt: Prebuilt) -> dict:
    """The reader's files for a page whose runnable code is ``code`` (see the module docstring)."""
    from _leaderboard import dumps, predictions

    from hf_noisy.coco import load_coco
    from hf_noisy.hub import export_coco

    coco_tiny = prebuilt.coco_tiny
    for name in ("instances_train2017.json", "instances_val2017.json"):
        shutil.copy(coco_tiny / "annotations" / name, ws / name)
    for name in ("train2017", "val2017"):
        (ws / name).symlink_to(coco_tiny / name)
    for name in ("eval", "train"):
        (ws / name).symlink_to(REPO / name)
    lvis = ws / "lvis"
    if "lvis" in code or "results.json" in code:
        lvis.mkdir()
        shutil.copy(prebuilt.shared / "data" / "lvis-tiny" / "lvis_val_100.json", lvis / "lvis_v1_val.json")
        shutil.copy(lvis / "lvis_v1_val.json", ws / "lvis_v1_val.json")
        (ws / "results.json").write_bytes(dumps(predictions(load_coco(ws / "lvis_v1_val.json"), seed=3)))
    if "cityscapes" in code:
        shutil.copytree(prebuilt.cityscapes_n, ws / "cityscapes-n", symlinks=True)
    if "coco-n" in code or "leaderboard" in code:
        shutil.copytree(prebuilt.coco_n, ws / "coco-n", symlinks=True)
        gt = export_coco(ws / "coco-n", "clean", "validation")
        (ws / "results.json.gz").write_bytes(gzip.compress(dumps(predictions(gt, seed=9))))
    roots = {"/data/coco": coco_tiny, "/data/lvis": lvis}
    if "cityscapes" in code:
        roots["/data/cityscapes"] = prebuilt.cityscapes_root
    return roots


def bash_commands(code: str) -> list[str]:
    """The block's commands, continuation lines joined, leading blanks stripped."""
    return [line.strip() for line in code.replace("\\\n", " ").splitlines() if line.strip()]


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


def hidden_aliases(parser: argparse.ArgumentParser, words: list[str]) -> dict[str, str]:
    """Old spellings (``hf_noisy.cli.add_option``'s hidden aliases) that ``words`` use, each with the name the
    help shows, in the (sub)command ``words`` run: the docs show only the names of ``--help``."""
    while (sub := next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)) \
            and words and words[0] in sub.choices:
        parser, words = sub.choices[words[0]], words[1:]
    table = parser._option_string_actions
    return {word.split("=")[0]: "/".join(table[word.split("=")[0]].option_strings) for word in words
            if word.startswith("-") and word.split("=")[0] in table
            and word.split("=")[0] not in table[word.split("=")[0]].option_strings}


def parse_bash_line(line: str, where: str):
    """``hf-noisy ARGS`` parsed (not run) by the CLI's own parser: the command and its options must exist, under
    the names its ``--help`` shows (not an old spelling kept as a hidden alias). Returns the parsed namespace."""
    words = shlex.split(line, comments=True)
    for stop in (">", "|", "&&", ";"):
        if stop in words:
            words = words[:words.index(stop)]
    err = io.StringIO()
    parser = build_parser(words[1] if len(words) > 1 else None)
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(words[1:])
    except SystemExit as exit:
        pytest.fail(f"{where}: `{line}` does not parse (exit {exit.code}): {err.getvalue().strip()[-300:]}")
    old = hidden_aliases(parser, words[1:])
    assert not old, f"{where}: `{line}` uses old option names: " + ", ".join(f"{o} (now {n})" for o, n in old.items())
    return args


def _training_parser(monkeypatch) -> argparse.ArgumentParser:
    """``train/train_mask2former.py``'s argument parser (caught as it parses; the script imports no torch)."""
    spec = importlib.util.spec_from_file_location("train_mask2former_docs", REPO / "train" / "train_mask2former.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    caught = []
    parse = argparse.ArgumentParser.parse_args
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args",
                        lambda self, *a, **k: caught.append(self) or parse(self, *a, **k))
    script.parse_args(["--dataset", "coco-n", "-o", "out"])
    return caught[0]


def test_training_commands_use_the_options_help_shows(monkeypatch):
    """Every ``train_mask2former.py`` command of the docs (skipped blocks too) uses options the script has,
    under the names its ``--help`` shows, not an old spelling kept as a hidden alias (``--output-dir``)."""
    table = _training_parser(monkeypatch)._option_string_actions
    commands = [(b.where, line) for page in pages() for b in page_blocks(page) for line in bash_commands(b.code)
                if "train_mask2former.py" in line]
    assert len(commands) >= 5
    for where, line in commands:
        words = [w.split("=")[0] for w in line.split("train_mask2former.py", 1)[1].split() if w.startswith("-")]
        unknown = [w for w in words if w not in table]
        assert not unknown, f"{where}: `{line}`: train_mask2former.py has no option {unknown}"
        old = [f"{w} (now {'/'.join(table[w].option_strings)})" for w in words if w not in table[w].option_strings]
        assert not old, f"{where}: `{line}` uses old option names: {', '.join(old)}"


def _inputs(args) -> list[str]:
    """The files and folders a parsed ``hf-noisy`` command of :data:`RUN_COMMANDS` reads."""
    if args.command == "convert":
        return [args.root]
    if args.command == "fit" and args.dataset:
        return [args.dataset]
    return [v for k in ("input", "clean", "noisy", "images", "dataset") if isinstance(v := getattr(args, k, None), str)]


def run_guide_bash(code: str, where: str, roots: dict) -> list[str]:
    """A guide's bash block (see the module docstring); returns the lines that ran."""
    ran = []
    for line in bash_commands(code):
        if not line.startswith("hf-noisy "):
            continue
        for literal, path in roots.items():  # the reader's dataset roots: the shipped tiny copies
            line = re.sub(rf"(?<![\w/.]){re.escape(literal)}(?=[/\s]|$)", str(path), line)
        args = parse_bash_line(line, where)
        if line.startswith(BASH_SETUP) or (args.command in RUN_COMMANDS and all(Path(p).exists() for p in _inputs(args))):
            run_bash_line(line)
            ran.append(line)
    return ran


#: extra checks for python blocks containing a key: what the block made must be what the page says
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
    metric, results = ns["metric"], ns["results"]
    assert metric.num_images == 16 and metric.state_nbytes() < 200 * metric.num_detections
    assert 0.3 < results["boundary"].stats["AP"] < results["segm"].stats["AP"] < 1.0  # 2 px off: boundaries suffer
    assert f"Boundary AP {results['boundary'].stats['AP']:.3f}" in out


def _check_readme_score(ns: dict, ws: Path, out: str) -> None:
    assert [float(v) for v in out.split()] == pytest.approx([1.0, 1.0])


def _check_audit(ns: dict, ws: Path, out: str) -> None:
    assert ns["worst"]["id"] == ns["gt"]["annotations"][0]["id"] and ns["worst"]["suspected"] == "class"
    assert ns["worst"]["suggested_category_id"] == 1


CHECKS = {"apply_noise(": _check_noise, "evaluate.load(": _check_metric, "NoiseTransform.for_coco_n(": _check_hub,
          "symmetric_cross_entropy(": _check_sce, "InstanceSegmentationAP(": _check_streaming_metric,
          "results = evaluate(gt, predictions": _check_readme_score, "audit_coco(gt, results)": _check_audit}


def _reset_accelerate() -> None:
    """A block's ``Accelerator`` is not the next block's (accelerate keeps its state per process)."""
    if "accelerate" in sys.modules:
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()


@pytest.mark.parametrize("page", _params(tutorial=False))
def test_guide_page_runs(page: Path, prebuilt: Prebuilt, tmp_path: Path, monkeypatch, capsys):
    blocks = [b for b in page_blocks(page) if not b.skip]
    roots = make_workspace(tmp_path, "\n".join(b.code for b in blocks), prebuilt)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # a block's sys.path.insert stays its own
    for block in blocks:
        if block.lang == "bash":
            run_guide_bash(block.code, block.where, roots)
            continue
        code = block.code
        for literal, path in roots.items():
            code = code.replace(f'"{literal}"', repr(str(path)))
        capsys.readouterr()
        namespace: dict = {"__name__": "__docs__"}
        try:
            exec(compile(code, block.where, "exec"), namespace)
        finally:
            _reset_accelerate()
        out = capsys.readouterr().out
        for key, check in CHECKS.items():
            if key in block.code:
                check(namespace, tmp_path, out)


# -- tutorial pages: exactly as written, in an empty folder -----------------------------------------------------------


def _tutorial_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if Path(hf_noisy.__file__).resolve().parents[1] == REPO:  # the tests run this checkout: so does its CLI
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_tutorial(page: Path, cwd: Path, monkeypatch) -> None:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace: dict = {"__name__": "__main__"}
    env = _tutorial_env()
    for block in page_blocks(page):
        if block.skip:
            continue
        if block.lang == "bash":
            proc = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", block.code], cwd=cwd, env=env,
                                  capture_output=True, text=True, timeout=1200)
            assert proc.returncode == 0, (f"{block.where}: exit {proc.returncode}\n"
                                          f"{(proc.stdout + proc.stderr)[-3000:]}")
        else:
            try:
                exec(compile(block.code, block.where, "exec"), namespace)
            finally:
                _reset_accelerate()


@pytest.mark.parametrize("page", _params(tutorial=True))
def test_tutorial_runs(page: Path, tmp_path: Path, monkeypatch):
    run_tutorial(page, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("page", _params(tutorial=True))
def test_tutorial_reruns(page: Path, tmp_path: Path, monkeypatch):
    run_tutorial(page, tmp_path, monkeypatch)
    run_tutorial(page, tmp_path, monkeypatch)


# -- the site ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path):
    if importlib.util.find_spec("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed (the test extra includes the docs extra)")
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WARNING" not in log, log[-4000:]
    assert "apply_noise" in (site / "reference" / "noise" / "index.html").read_text(encoding="utf-8")
    figures = sorted(p.name for p in (site / "assets" / "figures").glob("*.png"))
    assert "noise-hard.png" in figures and len(figures) >= 8
    assert (site / "assets" / "results" / "noise_ops" / "noise_ops.jpg").is_file()
