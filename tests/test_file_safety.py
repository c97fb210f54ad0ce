"""Users' files are never destroyed: no output over an input, no silent overwrite, the user's umask, no leftovers
of killed runs, and an --overwrite swap that leaves a complete folder (old or new) whenever it is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.fsutil import atomic_directory, atomic_write_text, check_output, recover
from hf_noisy.noise import PRESETS

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, *args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ,
                          timeout=300, **kwargs)


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def coco_file(coco_tiny: Path, tmp_path: Path) -> Path:
    path = tmp_path / "clean.json"
    shutil.copy(coco_tiny / "annotations" / "instances_val2017.json", path)
    return path


# -- an output that is an input is refused, even with --overwrite ---------------------------------------------
@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "dotted"])
def test_noise_refuses_to_write_over_its_input(coco_file: Path, tmp_path: Path, capsys, alias: str):
    before = coco_file.read_bytes()
    output = {"same": coco_file, "dotted": tmp_path / "." / "clean.json", "symlink": tmp_path / "link.json",
              "hardlink": tmp_path / "hard.json"}[alias]
    if alias == "symlink":
        output.symlink_to(coco_file)
    elif alias == "hardlink":
        os.link(coco_file, output)
    assert main(["noise", str(coco_file), "-o", str(output), "--spec", "easy", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is the input" in err and err.count("\n") == 1
    assert coco_file.read_bytes() == before


def test_commands_refuse_outputs_that_are_inputs(shared_dir: Path, coco_tiny: Path, coco_file: Path, tmp_path: Path,
                                                 capsys):
    spec = tmp_path / "spec.yaml"
    assert main(["spec", "easy"]) == 0
    spec.write_text(capsys.readouterr().out)
    spec_bytes = spec.read_bytes()
    cityscapes = shared_dir / "data" / "cityscapes-tiny"
    label = next((cityscapes / "gtFine").rglob("*_instanceIds.png"))
    cases = [
        (["noise", str(coco_file), "-o", str(spec), "--spec", str(spec), "--overwrite"], "is the input"),
        (["convert", "cityscapes", "--root", str(cityscapes), "--split", "val", "-o", str(cityscapes), "--overwrite"],
         "holds the input"),
        (["convert", "cityscapes", "--root", str(cityscapes), "--split", "val", "-o", str(label), "--overwrite"],
         "inside the input folder"),
        (["wan", str(coco_file), "--images", str(tmp_path), "-o", str(coco_file), "--prompt", "box", "--overwrite"],
         "is the input"),
        (["build", "coco-n", "--coco-root", str(tmp_path / "coco"), "--out", str(tmp_path / "coco"), "--overwrite"],
         "holds the input"),
    ]
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    for name in ("train2017", "val2017"):
        (tmp_path / "coco" / name).symlink_to(coco_tiny / name)
        (tmp_path / "coco" / "annotations" / f"instances_{name}.json").symlink_to(
            coco_tiny / "annotations" / f"instances_{name}.json")
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert spec.read_bytes() == spec_bytes and (tmp_path / "coco" / "train2017").is_symlink()


def test_a_build_never_replaces_a_folder_holding_its_annotation_files(coco_tiny: Path, tmp_path: Path):
    from hf_noisy.hub import benchmark_info, build_dataset
    from hf_noisy.hub.build import Clean
    from hf_noisy.sources import read_coco_split

    mine = tmp_path / "my-annotations"  # annotations kept apart from the images (as LVIS's are)
    mine.mkdir()
    for split, name in (("train", "train2017"), ("validation", "val2017")):
        shutil.copy(coco_tiny / "annotations" / f"instances_{name}.json", mine / f"{split}.json")
    splits = {split: read_coco_split(coco_tiny, split, annotations=mine / f"{split}.json").head(1)
              for split in ("train", "validation")}
    with pytest.raises(HfNoisyError, match="holds the input"):
        build_dataset(benchmark_info("coco-n"), splits, {"clean": Clean()}, mine, overwrite=True)
    assert sorted(p.name for p in mine.iterdir()) == ["train.json", "validation.json"]


def test_show_never_writes_over_an_image(tmp_path: Path, capsys):
    from hf_noisy.synthetic import make_shapes_coco

    root = make_shapes_coco(tmp_path / "shapes", num_train=2, num_val=2)
    clean = root / "annotations" / "instances_train2017.json"
    images = root / "train2017"
    image_id = json.loads(clean.read_text())["images"][0]["id"]
    victim = images / f"{image_id}.png"  # an image named as the overlay would be
    shutil.copy(next(images.glob("*.png")), victim)
    before = victim.read_bytes()
    argv = ["show", str(clean), str(clean), "--images", str(images), "-o", str(images), "--num", "1"]
    assert main([*argv, "--overwrite"]) == 2
    assert "inside the input folder" in capsys.readouterr().err and victim.read_bytes() == before


def test_check_output_compares_files_not_spellings(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.json").write_text("{}")
    check_output(tmp_path / "new.json", [data / "a.json"])  # a new file beside an input is fine
    check_output(data / "new.json", [data])  # ... and a new file inside an input folder
    check_output(tmp_path / "out", [tmp_path / "out-other", None, "facebook/sam-vit-huge"])
    with pytest.raises(HfNoisyError, match="is the input"):
        check_output(tmp_path / "x" / ".." / "data" / "a.json", [data / "a.json"], overwrite=True)
    with pytest.raises(HfNoisyError, match="holds the input"):
        check_output(tmp_path, [data / "a.json"], overwrite=True)
    with pytest.raises(FileExistsError, match=r"pass overwrite=True to replace it\)$"):
        check_output(data / "a.json", [])


# -- an existing output is refused without --overwrite ---------------------------------------------------------
@pytest.fixture(scope="module")
def small_build(coco_tiny: Path, tmp_path_factory) -> Path:
    from hf_noisy.hub import build_benchmark

    return build_benchmark("coco-n", tmp_path_factory.mktemp("files") / "cn", coco_root=coco_tiny, max_images=1,
                           configs=["clean"]).path


def test_the_python_api_says_overwrite_true_and_the_cli_says_dash_dash_overwrite(coco_file: Path, tmp_path: Path,
                                                                                 capsys):
    import pickle

    from hf_noisy.errors import OutputExistsError, user_error
    from hf_noisy.noise import noise_file

    target = tmp_path / "noisy.json"
    target.write_text("my own work")
    with pytest.raises(FileExistsError) as caught:  # the Python API names its own keyword, no CLI option
        noise_file(coco_file, target, PRESETS["easy"])
    assert str(caught.value) == f"{target} already exists (pass overwrite=True to replace it)"
    assert "--" not in str(caught.value) and isinstance(caught.value, OutputExistsError)
    assert user_error(caught.value) == (f"{target} already exists (pass --overwrite to replace it)", 2)
    again = pickle.loads(pickle.dumps(caught.value))  # as it comes back from a worker process
    assert type(again) is OutputExistsError and str(again) == str(caught.value) and again.path == str(target)
    assert main(["noise", str(coco_file), "-o", str(target), "--spec", "easy", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"hf-noisy noise: error: {target} already exists (pass --overwrite to replace it)\n"
    assert target.read_text() == "my own work"


def test_existing_outputs_are_kept_without_overwrite(coco_file: Path, small_build: Path, tmp_path: Path, capsys):
    target = tmp_path / "out" / "mine.json"
    target.parent.mkdir()
    target.write_text("my own work")
    commands = [
        ["noise", str(coco_file), "-o", str(target), "--spec", "easy"],
        ["export", str(small_build), "--config", "clean", "--split", "train", "-o", str(target)],
        ["convert", "cityscapes", "--root", str(tmp_path / "cityscapes"), "--split", "val", "-o", str(target)],
        ["wan", str(coco_file), "--images", str(tmp_path / "images"), "-o", str(target), "--prompt", "box"],
        ["demo", "--out", str(target.parent)],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "already exists (pass --overwrite to replace it)" in err and err.count("\n") == 1, (argv, err)
    assert target.read_text() == "my own work"
    assert main(["noise", str(coco_file), "-o", str(target), "--spec", "easy", "--overwrite", "--no-progress"]) == 0
    assert json.loads(target.read_text())["info"]["hf_noisy"]["spec_sha256"] == PRESETS["easy"].sha256
    assert main(["export", str(small_build), "--config", "clean", "-o", str(target), "--overwrite"]) == 0
    assert json.loads(target.read_text())["info"]["hf_noisy"]["config"] == "clean"
    readme = small_build / "README.md"
    card = readme.read_bytes()
    assert main(["export", str(small_build), "--config", "clean", "-o", str(readme), "--overwrite"]) == 2
    assert "inside the input folder" in capsys.readouterr().err and readme.read_bytes() == card


def test_show_keeps_existing_overlays_without_overwrite(tmp_path: Path, capsys):
    from hf_noisy.synthetic import make_shapes_coco

    root = make_shapes_coco(tmp_path / "shapes", num_train=2, num_val=2)
    clean = str(root / "annotations" / "instances_train2017.json")
    argv = ["show", clean, clean, "--images", str(root / "train2017"), "-o", str(tmp_path / "png"), "--num", "2"]
    assert main(argv) == 0
    first, second = sorted((tmp_path / "png").iterdir())
    second.write_bytes(b"mine")
    first.unlink()
    assert main(argv) == 2 and "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "png").iterdir()] == [second.name]  # checked all before writing any
    assert main([*argv, "--overwrite"]) == 0 and second.read_bytes() != b"mine" and first.is_file()


# -- the user's umask ------------------------------------------------------------------------------------------
@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_files_and_folders_follow_the_umask(umask: int, coco_file: Path, tmp_path: Path):
    from hf_noisy.noise import noise_file

    noise_file(coco_file, tmp_path / "noisy.json", PRESETS["easy"])
    atomic_write_text(tmp_path / "note.txt", "hi")
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "sub").mkdir()
        atomic_write_text(tmp / "sub" / "file.txt", "hi")
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    for path in (tmp_path / "noisy.json", tmp_path / "note.txt", tmp_path / "folder" / "sub" / "file.txt"):
        assert path.stat().st_mode & 0o777 == file_mode, path
    for path in (tmp_path / "folder", tmp_path / "folder" / "sub"):
        assert path.stat().st_mode & 0o777 == dir_mode, path


def test_a_build_follows_the_umask(coco_tiny: Path, tmp_path: Path):
    from hf_noisy.hub import build_benchmark

    old = os.umask(0o027)
    try:
        out = build_benchmark("coco-n", tmp_path / "cn", coco_root=coco_tiny, max_images=1, configs=["clean"]).path
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    assert modes.pop(".") == 0o750 and modes["data"] == 0o750
    assert modes["README.md"] == 0o640 and modes["hf_noisy_benchmark.json"] == 0o640
    assert all(mode in (0o640, 0o750) for mode in modes.values()), modes


# -- stale .partial folders ------------------------------------------------------------------------------------
KILLED_INSIDE = """
import os, signal, sys
from hf_noisy.fsutil import atomic_directory
with atomic_directory(sys.argv[1]) as tmp:
    (tmp / "shard.parquet").write_bytes(b"x" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""

PAUSED_BUILD = """
import sys
from hf_noisy.hub import build as builder, build_benchmark

write_shard = builder.write_shard

def paused(task):  # the first shard waits for a line on stdin: the build is alive, its folder half-written
    stats = write_shard(task)
    if task.path.name.startswith("train"):
        print(task.path.parents[2], flush=True)
        sys.stdin.readline()
    return stats

builder.write_shard = paused
build_benchmark("coco-n", sys.argv[2], coco_root=sys.argv[1], max_images=2, configs=["clean"], overwrite=True)
"""


@pytest.mark.slow
def test_a_build_removes_folders_of_killed_runs_only(coco_tiny: Path, tmp_path: Path):
    from hf_noisy.hub import build_benchmark

    out = tmp_path / "cn"
    for _ in range(2):
        assert _run(KILLED_INSIDE, str(out)).returncode == -signal.SIGKILL
    # the second run already removed the first one's folder; its own is left, as a kill leaves it
    assert len([n for n in _hidden(tmp_path) if n.endswith(".partial")]) == 1 and not out.exists()
    (tmp_path / ".cn.a1b2c3d4.partial").mkdir()  # left by hf-noisy <= 0.1 (no lock file at all)
    other = subprocess.Popen([sys.executable, "-c", PAUSED_BUILD, str(coco_tiny), str(out)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        live = Path(other.stdout.readline().strip())
        assert live.name.endswith(".partial"), live
        written = sorted(p.relative_to(live) for p in live.rglob("*"))
        build_benchmark("coco-n", out, coco_root=coco_tiny, max_images=1,
                        configs=["clean"])  # a second build while `other` is alive
        assert _hidden(tmp_path) == sorted([live.name, live.name.replace(".partial", ".lock")])
        assert sorted(p.relative_to(live) for p in live.rglob("*")) == written and written
        other.communicate("\n", timeout=120)
    finally:
        other.kill()
    assert other.returncode == 0 and _hidden(tmp_path) == []
    assert json.loads((out / "hf_noisy_benchmark.json").read_text())["max_images"] == 2  # the other build's


# -- --overwrite: killed at each step of the swap, the output is a complete folder, old or new --------------
SWAP = """
import sys
from hf_noisy.fsutil import atomic_directory
with atomic_directory(sys.argv[1], overwrite=True) as tmp:
    (tmp / "payload").write_bytes(b"n" * 1_000_000)
    (tmp / "version").write_text("new")
"""

#: (swap, step at which the process is killed, what the output holds after the next run's recovery)
STEPS = [("exchange", "ready", "old"), ("exchange", "exchanged", "new"), ("exchange", "old-removed", "new"),
         ("rename", "ready", "old"), ("rename", "journaled", "old"), ("rename", "moved-aside", "new"),
         ("rename", "moved-in", "new"), ("rename", "old-removed", "new")]


def _folder(version: str, path: Path) -> None:
    path.mkdir()
    (path / "payload").write_bytes(version[0].encode() * 1_000_000)
    (path / "version").write_text(version)


def _complete(path: Path) -> str:
    version = (path / "version").read_text()
    assert (path / "payload").read_bytes() == version[0].encode() * 1_000_000
    assert sorted(p.name for p in path.iterdir()) == ["payload", "version"]
    return version


@pytest.mark.parametrize("swap,step,expected", STEPS)
def test_a_killed_swap_leaves_a_complete_folder(tmp_path: Path, swap: str, step: str, expected: str):
    out = tmp_path / "out"
    _folder("old", out)
    killed = _run(SWAP, str(out), env={"HF_NOISY_FAULT_POINT": step, "HF_NOISY_SWAP": swap})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if (swap, step) != ("rename", "moved-aside"):  # the one moment the rename-aside swap has no folder there
        assert _complete(out) in ("old", "new")
    assert _hidden(tmp_path)  # the killed run's leftovers, for the next run
    recover(out)
    assert _complete(out) == expected and _hidden(tmp_path) == []
    assert _run(SWAP, str(out), env={"HF_NOISY_SWAP": swap}).returncode == 0  # and the next run works
    assert _complete(out) == "new" and _hidden(tmp_path) == []


@pytest.fixture(scope="module")
def old_build(coco_tiny: Path, tmp_path_factory) -> Path:
    from hf_noisy.hub import build_benchmark

    return build_benchmark("coco-n", tmp_path_factory.mktemp("old") / "cn", coco_root=coco_tiny, max_images=1,
                           configs=["clean"]).path


@pytest.mark.parametrize("swap,step,expected", [("exchange", "ready", 1), ("exchange", "exchanged", 2),
                                                ("exchange", "old-removed", 2), ("rename", "moved-aside", 2)])
@pytest.mark.slow
def test_killed_build_overwrite_keeps_a_loadable_dataset(coco_tiny: Path, old_build: Path, tmp_path: Path,
                                                         swap: str, step: str, expected: int):
    from datasets import load_dataset

    out = tmp_path / "cn"
    shutil.copytree(old_build, out)
    argv = ["build", "coco-n", "--coco-root", str(coco_tiny), "--out", str(out), "--max-images", "2",
            "--levels", "clean", "--overwrite", "--no-progress"]
    killed = _run("import sys; from hf_noisy.cli import main; sys.exit(main(sys.argv[1:]))", *argv,
                  env={"HF_NOISY_FAULT_POINT": step, "HF_NOISY_SWAP": swap})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _hidden(tmp_path)
    recover(out)  # what the next build of `out` does first
    assert _hidden(tmp_path) == []
    meta = json.loads((out / "hf_noisy_benchmark.json").read_text())
    assert meta["max_images"] == expected
    assert load_dataset(str(out), "clean", split="train").num_rows == expected


def test_a_killed_old_style_swap_is_restored(tmp_path: Path):
    """hf-noisy <= 0.1 moved the old folder to .NAME.XXXX.old/previous first: a kill there left no folder."""
    out = tmp_path / "out"
    (tmp_path / ".out.k2j4h1xz.old").mkdir()
    _folder("old", tmp_path / ".out.k2j4h1xz.old" / "previous")
    (tmp_path / ".out.q9w8e7r6.partial").mkdir()
    recover(out)
    assert _complete(out) == "old" and _hidden(tmp_path) == []


def test_an_error_during_the_rename_swap_puts_the_old_folder_back(tmp_path: Path, monkeypatch):
    from hf_noisy import fsutil

    def fail(step: str) -> None:
        if step == "moved-aside":
            raise OSError("disk gone")

    out = tmp_path / "out"
    _folder("old", out)
    monkeypatch.setenv("HF_NOISY_SWAP", "rename")
    monkeypatch.setattr(fsutil, "_fault_point", fail)
    with pytest.raises(OSError, match="disk gone"):
        with atomic_directory(out, overwrite=True) as tmp:
            (tmp / "version").write_text("new")
    assert _complete(out) == "old" and _hidden(tmp_path) == []


def test_a_killed_writes_temporary_file_is_swept_by_the_next_write_and_a_live_one_is_not(tmp_path):
    """Issue 23, J: ``.NAME.<token>.tmp`` left by a killed atomic write (up to the file's whole size) is removed
    by the next write to the folder, once provably dead (its lock free, a minute old); a write in progress
    (lock held) and a fresh file are never touched."""
    import fcntl
    import time

    from hf_noisy.fsutil import atomic_write_bytes

    folder = tmp_path / "out"
    folder.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from hf_noisy.fsutil import atomic_write_bytes\n"
        "class Slow:\n"
        "    def read(self, n=-1):\n"
        "        time.sleep(0.05)\n"
        "        return b'x' * 65536\n"
        f"atomic_write_bytes({str(folder / 'big.json')!r}, Slow())\n")])
    deadline = time.monotonic() + 60
    while not [p for p in folder.iterdir() if p.name.endswith(".tmp") and p.stat().st_size > 0]:
        assert time.monotonic() < deadline and writer.poll() is None, "the writer never started"
        time.sleep(0.05)
    writer.kill()
    writer.wait()
    (killed,) = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    live = folder / ".live.json.0123456789ab.tmp"
    live.write_bytes(b"y")
    fresh = folder / ".fresh.json.abcdef012345.tmp"
    fresh.write_bytes(b"z")
    old = time.time() - 3600
    for path in (killed, live):
        os.utime(path, (old, old))
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a write still running, in another open file
    try:
        atomic_write_bytes(folder / "other.json", b"{}")
        assert not killed.exists()  # dead: swept
        assert live.exists() and fresh.exists()  # alive, or too new to tell: kept
    finally:
        os.close(holder)
    assert sorted(p.name for p in folder.iterdir()) == [".fresh.json.abcdef012345.tmp",
                                                       ".live.json.0123456789ab.tmp", "other.json"]
