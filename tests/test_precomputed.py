"""``hf-noisy build coco-n --precomputed NAME=FILE``: a COCO file made elsewhere (a released noisy set, a
re-annotation) as a named config; it loads with ``datasets.load_dataset`` and ``quality`` / ``fit`` score it
against ``clean`` (``--build``). Stand-in files are made here from coco-tiny (nothing can be downloaded)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.coco import file_sha256, load_coco, write_coco

PROVENANCE = ("noise_op", "noise_param", "class_flipped", "original_category_id")


def _released(data: dict, *, renumber: bool) -> dict:
    """As a file from elsewhere: no hf-noisy info or provenance fields; ids renumbered (a re-annotation) or kept."""
    anns = [{k: v for k, v in a.items() if k not in PROVENANCE} for a in data["annotations"]]
    if renumber:
        anns = [dict(a, id=a["id"] + 10**9) for a in anns]
    return {"images": data["images"], "annotations": anns, "categories": data["categories"]}


@pytest.fixture(scope="module")
def files(coco_tiny: Path, tmp_path_factory) -> dict[str, Path]:
    from hf_noisy.noise import PRESETS, apply_noise

    tmp = tmp_path_factory.mktemp("released")
    clean = load_coco(coco_tiny / "annotations" / "instances_train2017.json")
    noisy = apply_noise(copy.deepcopy(clean), PRESETS["hard"]).data
    out = {"ours": tmp / "hard_ours.json", "same-ids": tmp / "hard_same_ids.json", "rem": tmp / "rem_like.json"}
    write_coco(noisy, out["ours"])
    write_coco(_released(noisy, renumber=False), out["same-ids"])
    write_coco(_released(noisy, renumber=True), out["rem"])
    return out


@pytest.fixture(scope="module")
def built(coco_tiny: Path, files: dict[str, Path], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "coco-n"
    assert main(["build", "coco-n", "--coco-root", str(coco_tiny), "--levels", "clean", "--images", "none",
                 "--precomputed", f"ours={files['ours']}", "--precomputed", f"same-ids={files['same-ids']}",
                 "--precomputed", f"rem={files['rem']}", "--out", str(out), "--no-progress"]) == 0
    return out


def test_the_config_loads_with_load_dataset(built: Path, files: dict[str, Path]):
    from datasets import load_dataset

    rows = load_dataset(str(built), "rem", split="train")
    source = json.loads(files["rem"].read_text())
    assert len(rows) == len(source["images"]) == 80
    assert sorted(obj["id"] for row in rows for obj in row["objects"]) == sorted(a["id"] for a in source["annotations"])
    assert len(load_dataset(str(built), "rem", split="validation")) > 0  # validation: the clean source split


def test_card_and_metadata_record_the_file_and_its_sha256(built: Path, files: dict[str, Path]):
    meta = json.loads((built / "hf_noisy_benchmark.json").read_text())
    card = (built / "README.md").read_text()
    assert meta["benchmark_version"] == "custom"
    for name in ("ours", "same-ids", "rem"):
        entry = meta["configs"][name]
        assert entry["rule"] == "precomputed" and entry["file"]["sha256"] == file_sha256(files[name])
        assert f"`{name}`" in card and file_sha256(files[name]) in card


def test_mean_iou_of_a_file_without_provenance_is_measured(built: Path):
    """The same masks with and without hf-noisy's provenance fields give the same mean IoU to clean (an
    annotation without ``noise_op`` is not assumed unchanged); a file of other ids has no same-id pairs."""
    configs = json.loads((built / "hf_noisy_benchmark.json").read_text())["configs"]
    ours, same = configs["ours"]["stats"]["mean_iou"], configs["same-ids"]["stats"]["mean_iou"]
    assert 0.5 < ours < 0.9 and same == pytest.approx(ours, abs=1e-12)
    assert configs["rem"]["stats"]["mean_iou"] == 0.0


def test_quality_scores_two_configs_of_the_build(built: Path, files: dict[str, Path], coco_tiny: Path, capsys):
    from hf_noisy.metrics import score_quality

    assert main(["quality", "--build", str(built), "--clean", "clean", "--noisy", "rem", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    clean = load_coco(coco_tiny / "annotations" / "instances_train2017.json")
    direct = score_quality(clean, load_coco(files["rem"], allow_empty_masks=True))
    assert 0.0 < report["groups"]["all"]["mask_AP"] < 0.5  # hard noise: far from clean
    assert report["groups"]["all"]["mask_AP"] == pytest.approx(direct.groups["all"].mask_AP, abs=1e-12)
    assert main(["quality", "--build", str(built), "--clean", "clean", "--noisy", "ours"]) == 0
    table = capsys.readouterr().out
    assert "dilate" in table and "localization" in table  # a config that keeps provenance is broken down per op


@pytest.mark.slow
def test_fit_runs_on_two_configs_of_the_build(built: Path, files: dict[str, Path], coco_tiny: Path, capsys):
    assert main(["fit", "--build", str(built), "clean", "rem", "--json"]) == 0
    from_build = json.loads(capsys.readouterr().out)
    assert main(["fit", str(coco_tiny / "annotations" / "instances_train2017.json"), str(files["rem"]), "--json"]) == 0
    from_files = json.loads(capsys.readouterr().out)
    assert from_build["spec"] == from_files["spec"] and from_build["by_iou"] == from_build["pairs"] > 650
    assert abs(from_build["spec"]["class_noise"]["rate"] - 0.4) <= 0.03


@pytest.mark.parametrize("change, message", [
    (lambda d: d["images"].pop(), "lacks 1 image(s) of the source's train split"),
    (lambda d: (d["images"][0].update(width=d["images"][0]["width"] + 1),  # its masks would not fit: none
                d.update(annotations=[a for a in d["annotations"] if a["image_id"] != d["images"][0]["id"]])),
     "has another size than in the source"),
    (lambda d: d["categories"][0].update(name="not-a-coco-name"), "is not a category of the source's train split"),
])
def test_a_file_not_for_the_source_is_refused(coco_tiny: Path, files: dict[str, Path], tmp_path: Path, capsys,
                                              change, message):
    data = json.loads(files["rem"].read_text())
    change(data)
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in {i["id"] for i in data["images"]}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["build", "coco-n", "--coco-root", str(coco_tiny), "--levels", "clean", "--images", "none",
                 "--precomputed", f"x={bad}", "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("argument, message", [
    ("clean={}", "precomputed config names must be new"),
    ("easy={}", "precomputed config names must be new"),
    ("x=/no/such/file.json", "no such file"),
    ("x", "--precomputed takes distinct NAME=FILE"),
])
def test_bad_precomputed_arguments(coco_tiny: Path, files: dict[str, Path], tmp_path: Path, capsys, argument, message):
    out = tmp_path / "out"
    assert main(["build", "coco-n", "--coco-root", str(coco_tiny), "--levels", "clean,easy", "--images", "none",
                 "--precomputed", argument.format(files["rem"]), "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_subset_of_the_categories_is_accepted(coco_tiny: Path, files: dict[str, Path], tmp_path: Path):
    from hf_noisy.hub import build_benchmark

    data = json.loads(files["rem"].read_text())
    data["categories"] = data["categories"][:40]  # a file of some classes only (same ids and names)
    kept = {c["id"] for c in data["categories"]}
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] in kept]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(data))
    result = build_benchmark("coco-n", tmp_path / "out", coco_root=coco_tiny, configs=["clean"], images="none",
                             precomputed={"subset": subset})
    assert result.metadata["configs"]["subset"]["stats"]["instances"] == len(data["annotations"])
