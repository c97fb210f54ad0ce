"""The README's Python example runs as written (on coco-tiny, with the files it names)."""

import json
import re
import shutil
from pathlib import Path

from hf_noisy.noise import PRESETS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(coco_tiny, tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert "noise_file(" in block and "apply_noise(" in block
    source = coco_tiny / "annotations/instances_train2017.json"
    shutil.copy(source, tmp_path / "instances_train2017.json")
    (tmp_path / "my_spec.yaml").write_text(PRESETS["medium"].to_yaml())
    monkeypatch.chdir(tmp_path)
    namespace = {"coco_dict": json.loads(source.read_text())}
    exec(compile(block, str(README), "exec"), namespace)
    assert "approximation" in capsys.readouterr().out  # the summary table was printed
    written = json.loads((tmp_path / "train_hard.json").read_text())
    assert written["info"]["hf_noisy"]["spec_sha256"] == PRESETS["hard"].sha256
    assert namespace["spec"].seed == 7
    assert len(namespace["noisy"]["annotations"]) == len(namespace["coco_dict"]["annotations"])
