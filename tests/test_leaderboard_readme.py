"""The leaderboard guide's first section (docs/guide/leaderboard.md) runs as written, against the loopback Hub
(on a COCO-N folder built from coco-tiny); tests/test_docs.py only parses its commands."""

from __future__ import annotations

import gzip
import re
import shlex
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions

from hf_noisy.cli import main
from hf_noisy.leaderboard import list_results, list_submissions

PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "leaderboard.md"


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## Submit from the Hub")
    return text[start:text.index("\n## ", start + 3)]


@pytest.mark.slow
def test_the_leaderboard_section_runs(coco_tiny: Path, tmp_path: Path, monkeypatch, capsys, hub):
    """The section's commands, as written, against the loopback Hub: the results file pushed to alice's repo,
    submitted by its reference (the placeholder <commit> replaced by the commit upload-results printed),
    scored; then the Python example with a local file."""
    from hf_noisy.hub import build_benchmark, export_coco
    from hf_noisy.leaderboard.hosted import parse_hosted

    section = _section()
    bash = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    build_benchmark("coco-n", "coco-n", coco_root=coco_tiny, configs=["clean"], max_images=6)
    gt = export_coco("coco-n", "clean", "validation")
    Path("results.json.gz").write_bytes(gzip.compress(dumps(predictions(gt, seed=9))))
    Path("hard.json.gz").write_bytes(gzip.compress(dumps(predictions(gt, seed=10))))

    commands = [shlex.split(line, comments=True) for line in bash.splitlines() if line.startswith("hf-noisy")]
    assert [c[2] for c in commands] == ["init", "upload-results", "submit", "evaluate", "serve"]
    for command in commands[:2]:
        assert main(command[1:]) == 0, command
    reference = parse_hosted(capsys.readouterr().out.strip().splitlines()[-1])
    for command in commands[2:4]:  # serve blocks: the browser test covers it
        assert main([part.replace("<commit>", reference.revision) for part in command[1:]]) == 0, command
    out = capsys.readouterr().out
    assert "done    coco-n/hard/alice/" in out
    (submission,) = list_submissions("board")
    assert submission.hosted == str(reference) and not list(Path("board").rglob("*.json.gz"))

    # The Python example: another submission by the same user and name is a duplicate; as "bob" it goes through.
    python = python.replace('submitter="alice"', 'submitter="bob"')
    namespace: dict = {}
    exec(compile(python, str(PAGE), "exec"), namespace)
    (record,) = namespace["records"]
    assert record["status"] == "done" and record["metrics"]["segm"]["AP"] > 0.1
    assert len(list_results("board")) == 2
