"""The README's Leaderboard section runs as written (on a COCO-N folder built from coco-tiny)."""

from __future__ import annotations

import gzip
import re
import shlex
from pathlib import Path

from _leaderboard import dumps, predictions

from hf_noisy.cli import main
from hf_noisy.leaderboard import list_results

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Leaderboard"):text.index("\n## ", text.index("## Leaderboard") + 3)]


def test_the_leaderboard_section_runs(coco_tiny: Path, tmp_path: Path, monkeypatch, capsys):
    from hf_noisy.hub import build_coco_n, export_coco

    section = _section()
    bash = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    build_coco_n(coco_tiny, "coco-n", levels=["clean"], max_images=6)
    gt = export_coco("coco-n", "clean", "validation")
    Path("results.json.gz").write_bytes(gzip.compress(dumps(predictions(gt, seed=9))))

    commands = [shlex.split(line, comments=True) for line in bash.splitlines() if line.startswith("hf-noisy")]
    assert [c[2] for c in commands] == ["init", "submit", "evaluate", "serve"]
    for command in commands[:3]:  # serve blocks: the browser test covers it
        assert main(command[1:]) == 0, command
    assert "done    coco-n/hard/alice/" in capsys.readouterr().out

    # The Python example: another submission by the same user and name is a duplicate; as "bob" it goes through.
    python = python.replace('submitter="alice"', 'submitter="bob"')
    namespace: dict = {}
    exec(compile(python, str(README), "exec"), namespace)
    (record,) = namespace["records"]
    assert record["status"] == "done" and record["metrics"]["segm"]["AP"] > 0.1
    assert len(list_results("board")) == 2
