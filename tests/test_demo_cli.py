import json
import subprocess
import sys

import pytest

from hf_noisy.cli import build_parser, main
from hf_noisy.coco import load_coco
from hf_noisy.demo import run_demo


def test_demo_builds_everything_and_is_deterministic(tmp_path):
    first = run_demo(tmp_path / "a", num_images=4)
    second = run_demo(tmp_path / "b", num_images=4, hub=False)
    for level in ("easy", "medium", "hard"):
        a = (tmp_path / "a/noisy" / f"{level}.json").read_bytes()
        assert a == (tmp_path / "b/noisy" / f"{level}.json").read_bytes()
        noisy = json.loads(a)
        assert noisy["info"]["hf_noisy"]["summary"] == first.summaries[level].to_dict()
    clean = load_coco(tmp_path / "a/coco/annotations/instances_train2017.json")
    assert any(a["iscrowd"] for a in clean["annotations"])  # crowd regions
    assert any(isinstance(a["segmentation"], dict) and not a["iscrowd"] for a in clean["annotations"])  # rings (holes)
    assert any(len(a["segmentation"]) == 2 for a in clean["annotations"] if isinstance(a["segmentation"], list))
    assert len(list((tmp_path / "a/overlays").glob("*.png"))) == 4
    assert "| hard |" in second.table
    # the Hugging Face dataset folder was built and every config loads back with images
    assert first.hub_rows == {"clean": 4, "easy": 4, "medium": 4, "hard": 4}
    assert (tmp_path / "a/demo-shapes/README.md").is_file() and not (tmp_path / "b/demo-shapes").exists()
    assert "mean IoU" in first.table
    # harder levels change more instances
    unchanged = [first.summaries[level].ops["none"] for level in ("easy", "medium", "hard")]
    assert unchanged[0] > unchanged[1] > unchanged[2]


def test_demo_replaces_the_folder_atomically(tmp_path):
    out = tmp_path / "demo"
    run_demo(out, num_images=2, hub=False)
    (out / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match=r"pass overwrite=True to replace it"):
        run_demo(out, num_images=2, hub=False)  # a user's folder is never replaced without asking
    assert (out / "stale.txt").exists()
    run_demo(out, num_images=2, hub=False, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_cli_help_lists_commands_and_runs_as_module():
    help_text = build_parser().format_help()
    for command in ("demo", "noise", "show"):
        assert command in help_text
    out = subprocess.run([sys.executable, "-m", "hf_noisy.cli", "noise", "--help"], capture_output=True, text=True, check=True)
    assert "Table 7" in out.stdout and "--num-proc" in out.stdout


def test_show_writes_overlays(tmp_path, capsys):
    run_demo(tmp_path / "d", num_images=3, hub=False)
    out = tmp_path / "png"
    clean = str(tmp_path / "d/coco/annotations/instances_train2017.json")
    assert main(["show", clean, str(tmp_path / "d/noisy/hard.json"),
                 "--images", str(tmp_path / "d/coco/train2017"), "-o", str(out), "--num", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1000.png", "1001.png"]
    assert main(["show", clean, str(tmp_path / "d/noisy/hard.json"),
                 "--images", ".", "-o", str(out), "--image-ids", "5"]) == 2


def test_spec_command_round_trips_a_preset(tmp_path, capsys):
    assert main(["spec", "medium"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert main(["spec", str(path), "--seed", "4"]) == 0
    again = capsys.readouterr().out
    from hf_noisy.noise import PRESETS

    assert text.startswith(f"# sha256: {PRESETS['medium'].sha256}")
    assert "seed: 4" in again and "kernel: 5" in again
