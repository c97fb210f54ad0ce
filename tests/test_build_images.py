"""Images are checked at build time: header size against the JSON's width/height (always), a full decode (by
default, in the build's workers; --no-verify-images turns it off). A failure names the file and the reason, and
nothing is written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.errors import HfNoisyError
from hf_noisy.hub import build_benchmark

N = 3  # images per split in the builds below


@pytest.fixture
def coco_copy(coco_tiny: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A COCO root in tmp_path whose first N train images are copies (to break), and the second one's path."""
    root = tmp_path / "coco"
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").symlink_to(coco_tiny / "annotations")
    (root / "val2017").symlink_to(coco_tiny / "val2017")
    data = json.loads((coco_tiny / "annotations" / "instances_train2017.json").read_text())
    for image in data["images"]:
        source = coco_tiny / "train2017" / image["file_name"]
        target = root / "train2017" / image["file_name"]
        if len(list((root / "train2017").iterdir())) < N:
            shutil.copy(source, target)
        else:
            target.symlink_to(source)
    return root, root / "train2017" / data["images"][1]["file_name"]


def _nothing_written(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]  # no output folder, no hidden .partial


def test_a_truncated_jpeg_fails_the_build_naming_it(coco_copy, tmp_path: Path):
    root, victim = coco_copy
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(HfNoisyError, match=re.escape(f"{victim}: truncated or corrupt: image file is truncated")):
        build_benchmark("coco-n", tmp_path / "out", coco_root=root, max_images=N, configs=["clean"])
    _nothing_written(tmp_path)
    # the size in the header is right, so without the decode the broken file goes in (as on main today)
    build_benchmark("coco-n", tmp_path / "out", coco_root=root, max_images=N, configs=["clean"], verify_images=False)
    assert (tmp_path / "out" / "README.md").is_file()


def test_a_resized_image_fails_the_build_even_without_the_decode(coco_copy, tmp_path: Path, capsys):
    from PIL import Image

    root, victim = coco_copy
    with Image.open(victim) as image:
        width, height = image.size
        image.resize((width // 2, height // 2)).save(victim, quality=90)
    argv = ["build", "coco-n", "--coco-root", str(root), "--out", str(tmp_path / "out"), "--max-images", str(N),
            "--levels", "clean", "--no-verify-images"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{victim}: size mismatch: the file is {width // 2}x{height // 2} (width x height), the annotations say " \
           f"{width}x{height}" in err and f"image id {int(victim.stem)}" in err and err.count("\n") == 1
    _nothing_written(tmp_path)


def test_a_file_that_is_no_image_fails_the_build(coco_copy, tmp_path: Path):
    root, victim = coco_copy
    victim.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(HfNoisyError, match=re.escape(f"{victim}: unreadable")):
        build_benchmark("coco-n", tmp_path / "out", coco_root=root, max_images=N, configs=["clean"])
    _nothing_written(tmp_path)


def test_the_check_names_the_first_bad_image_for_any_num_proc(coco_copy):
    from hf_noisy.sources import read_coco_split

    root, _ = coco_copy
    split = read_coco_split(root, "train")
    assert len(split.image_paths) > 64  # more than one chunk of work, so the worker processes share it
    late = split.image_paths[70]
    late.unlink()
    late.write_bytes((split.image_paths[0]).read_bytes()[:2000])  # truncated, and another image's size
    messages = []
    for num_proc in (1, 2):
        with pytest.raises(HfNoisyError) as err:
            split.check_images(decode=True, num_proc=num_proc)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and messages[0].startswith(f"{late}: ")
