"""Malformed input: a clear error naming where, exit code 2 from the CLI, and nothing written."""

import copy
import json
import re
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.noise import SpecError, load_spec

REPO = Path(__file__).resolve().parents[1]

GOOD = {
    "images": [{"id": 1, "height": 20, "width": 30, "file_name": "a.jpg"}],
    "categories": [{"id": 3, "name": "cat", "supercategory": "animal"}],
    "annotations": [
        {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [2, 2, 10, 10], "area": 100.0,
         "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 1, "bbox": [0, 0, 30, 20], "area": 600,
         "segmentation": {"size": [20, 30], "counts": [0, 600]}},
    ],
}


def _mutate(path, value):
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()
CASES = [
    ("missing annotations", _mutate(["annotations"], _DELETE), "field 'annotations': missing"),
    ("unknown image", _mutate(["annotations", 0, "image_id"], 99), "annotation 10: field 'image_id': unknown image id 99"),
    ("unknown category", _mutate(["annotations", 0, "category_id"], 4), "annotation 10: field 'category_id': unknown category"),
    ("two-point polygon", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, 5]]), "has 2 points"),
    ("odd coordinates", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, 5, 7]]), "odd number"),
    ("NaN vertex", _mutate(["annotations", 0, "segmentation"], [[1, 1, 5, float("nan"), 7, 7]]), "finite numbers"),
    ("out of bounds", _mutate(["annotations", 0, "segmentation"], [[1, 1, 50, 1, 50, 9]]), "outside the 30x20 image"),
    ("empty mask", _mutate(["annotations", 0, "segmentation"], [[3, 3, 3, 3, 3, 3]]), "mask is empty"),
    ("RLE size", _mutate(["annotations", 1, "segmentation", "size"], [20, 31]), "does not match the image"),
    ("RLE runs", _mutate(["annotations", 1, "segmentation", "counts"], [0, 599]), "cover 599 pixels"),
    ("RLE string", _mutate(["annotations", 1, "segmentation", "counts"], "ab{}"), "run-length string"),
    ("duplicate ann id", _mutate(["annotations", 1, "id"], 10), "duplicate annotation id"),
    ("duplicate image id", _mutate(["images"], GOOD["images"] * 2), "duplicate image id"),
    ("iscrowd 2", _mutate(["annotations", 0, "iscrowd"], 2), "must be 0 or 1"),
    ("negative bbox", _mutate(["annotations", 0, "bbox"], [1, 1, -3, 4]), "width and height must be >= 0"),
    ("zero height image", _mutate(["images", 0, "height"], 0), "positive integer"),
    ("top level list", [GOOD], "must be a JSON object"),
    ("50000x50000 image", _mutate(["images", 0], {"id": 1, "height": 50000, "width": 50000, "file_name": "a.jpg"}),
     "image 1: field 'height': 50000x50000 is more than 2,147,483,647 pixels"),
    ("list supercategory", _mutate(["categories", 0, "supercategory"], ["animal"]),
     "category 3: field 'supercategory': must be a string"),
    ("RLE size 5", _mutate(["annotations", 1, "segmentation", "size"], 5), "annotation 11: field 'segmentation': RLE size"),
    ("RLE size null", _mutate(["annotations", 1, "segmentation", "size"], None), "annotation 11: field 'segmentation': RLE size"),
    ("image id beyond int64", _mutate(["images", 0, "id"], 2**70), "image #0: field 'id': must be a 64-bit integer"),
]


@pytest.mark.parametrize("name, data, message", CASES, ids=[c[0] for c in CASES])
def test_malformed_coco_is_rejected_and_nothing_written(tmp_path, capsys, name, data, message):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    assert main(["noise", str(source), "-o", str(out), "--spec", "hard", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(source) in err and "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temp file left behind either
    with pytest.raises(CocoFormatError, match=message.split(": ")[-1][:20]):
        load_coco(source)


@pytest.mark.parametrize("spec", ["hard", "asym"])
def test_5000_digit_id_names_the_annotation(tmp_path, capsys, spec):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(GOOD).replace('"image_id": 1,', '"image_id": ' + "7" * 5000 + ",", 1))
    if spec == "asym":
        spec = tmp_path / "asym.yaml"
        spec.write_text("class_noise: {kind: asymmetric, rate: 0.5}")
    out = tmp_path / "out.json"
    assert main(["noise", str(source), "-o", str(out), "--spec", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{source}: annotation 10: field 'image_id': unknown image id <a 5000-digit number>" in err
    assert err.count("\n") == 1 and not out.exists()


BAD_DETECTIONS = [
    ("RLE size 5", {"segmentation": {"size": 5, "counts": "PPYo0"}}, "field 'segmentation': RLE size 5"),
    ("RLE size null", {"segmentation": {"size": None, "counts": "PPYo0"}}, "field 'segmentation': RLE size None"),
    ("RLE float counts", {"segmentation": {"size": [20, 30], "counts": [0.5, 599.5]}}, "counts must be integers"),
    ("list image id", {"image_id": [1]}, "field 'image_id': unknown image id [1]"),
    ("huge score", {"score": 10**400}, "field 'score': must be a finite number"),
    ("no mask, no box", {"segmentation": None}, "field 'segmentation'"),
]


@pytest.mark.parametrize("name, change, message", BAD_DETECTIONS, ids=[c[0] for c in BAD_DETECTIONS])
def test_bad_detection_is_one_line_naming_file_detection_and_field(tmp_path, capsys, name, change, message):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GOOD))
    detection = {"image_id": 1, "category_id": 3, "score": 0.5, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]}
    detection.update(change)
    if detection["segmentation"] is None:
        del detection["segmentation"]
    results = tmp_path / "results.json"
    results.write_text(json.dumps([detection]))
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{results}: detection #0: " in err and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_5000_digit_image_id_in_results(tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GOOD))
    results = tmp_path / "results.json"
    results.write_text('[{"image_id": ' + "9" * 5000 + ', "category_id": 3, "score": 1, "bbox": [1, 1, 2, 2]}]')
    assert main(["evaluate", "--gt", str(gt), "--predictions", str(results), "--iou-types", "bbox"]) == 2
    err = capsys.readouterr().err
    assert f"{results}: detection #0: field 'image_id': unknown image id <a 5000-digit number>" in err


def test_invalid_json_names_line_and_column(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text('{"images": [}')
    assert main(["noise", str(source), "-o", str(tmp_path / "o.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_good_input_passes(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(GOOD))
    assert main(["noise", str(source), "-o", str(tmp_path / "o.json"), "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "o.json").read_text())["annotations"]) == 2


def test_empty_masks_can_be_allowed(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_mutate(["annotations", 0, "segmentation"], [[3, 3, 3, 3, 3, 3]])))
    out = tmp_path / "o.json"
    assert main(["noise", str(source), "-o", str(out), "--allow-empty-masks", "--no-progress"]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("spatial: [{op: scale, prob: 0.6, kernel: 3}, {op: localization, prob: 0.6, sigma: 2}]", "add up to 1.2"),
        ("spatial: [{op: scale, prob: 0.2, kernel: 4}]", "odd integer"),
        ("spatial: [{op: blur, prob: 0.2}]", "must be one of"),
        ("class_noise: {kind: symmetric, rate: 1.5}", "in [0, 1]"),
        ("version: 2", "unsupported spec version"),
        ("sead: 3", "unknown key"),
        ("spatial: [{op: opening, prob: 0.5, kernel: 999999}]", "odd integer in [1, 101]"),
        ("spatial: [{op: localization, prob: 0.5, sigma: .inf}]", "finite number in [0, 1000]"),
        ("spatial: [{op: localization, prob: 0.5, sigma: .nan}]", "finite number in [0, 1000]"),
        ("spatial: [{op: approximation, prob: 0.5, tolerance: 1e9}]", "finite number in [0, 1000]"),
        (f"seed: {2**200}", "seed must be an integer in [0, 2**64 - 1]"),
        ("seed: -1", "seed must be an integer in [0, 2**64 - 1]"),
        ("class_noise: {rate: 0.2}", "needs 'kind'"),
        ("class_noise: {kind: matrix, matrix: 5}", "must be a file path"),
        ("spatial: [{op: scale, prob: 0.2, kernel: 3, 7: 1}]", "unknown key(s) 7"),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(path)


def test_seed_beyond_the_generator_is_one_line_and_nothing_written(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(GOOD))
    out = tmp_path / "o.json"
    assert main(["noise", str(source), "-o", str(out), "--seed", str(2**200), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed must be an integer in [0, 2**64 - 1]" in err
    assert not out.exists()
    assert load_spec("hard", seed=2**64 - 1).seed == 2**64 - 1  # the largest seed still works


def test_spec_file_that_is_not_utf8_or_too_big(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"seed: \xff\xfe")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(SpecError, match="larger than"):
        load_spec(path)


def test_show_with_a_missing_image_folder_fails_and_writes_nothing(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(GOOD))
    out = tmp_path / "overlays"
    assert main(["show", str(source), str(source), "--images", str(tmp_path / "nonexistent"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nonexistent: no such folder" in err and err.count("\n") == 1
    (tmp_path / "images").mkdir()  # the folder exists, the image does not
    assert main(["show", str(source), str(source), "--images", str(tmp_path / "images"), "-o", str(out)]) == 2
    assert "a.jpg: no such file (image 1)" in capsys.readouterr().err
    assert not out.exists()


# -- dataset arguments: local-looking paths, raw source folders, config names, no network ------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Every name lookup fails, as on a machine without network; ``calls`` records each attempt."""
    import socket

    calls = []

    def refuse(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


@pytest.fixture(scope="module")
def built(coco_tiny, tmp_path_factory):
    from hf_noisy.hub import build_benchmark

    return build_benchmark("coco-n", tmp_path_factory.mktemp("built") / "coco-n", coco_root=coco_tiny, max_images=2,
                           configs=["clean"]).path


LOCAL_LOOKING = ["./coco-n-tinyy", "coco-n-tinyy", "~/no-such-hf-noisy-folder", "/nonexistent/coco-n", "a/b/c",
                 "tests/coco-n"]  # the last: ORG/NAME in form, but its ORG part is a folder here


@pytest.mark.parametrize("path", LOCAL_LOOKING)
def test_a_missing_local_looking_path_is_no_such_folder_without_network(path, tmp_path, capsys, monkeypatch,
                                                                        no_network):
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub import export_coco, load_coco_n, read_metadata

    monkeypatch.chdir(REPO)
    out = tmp_path / "out.json"
    commands = [["export", path, "--config", "hard", "-o", str(out)], ["push", path, "--repo-id", "me/x"],
                ["leaderboard", "init", "--store", str(tmp_path / "board"), "--benchmark", f"coco-n={path}"]]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{path}: no such folder" in err and err.count("\n") == 1, err
    for call in (lambda: load_coco_n(path, "hard"), lambda: export_coco(path, "hard", "train"),
                 lambda: read_metadata(path)):
        with pytest.raises(HfNoisyError, match="no such folder"):
            call()
    assert no_network == [] and not out.exists() and not (tmp_path / "board").exists()


def test_a_raw_coco_folder_says_so_and_how_to_build(coco_tiny, tmp_path, capsys):
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub import load_coco_n

    assert main(["export", str(coco_tiny), "--config", "hard", "-o", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert f"{coco_tiny} is a COCO 2017 source folder" in err and f"--coco-root {coco_tiny}" in err
    with pytest.raises(HfNoisyError, match="not a benchmark built from it"):
        load_coco_n(coco_tiny, "clean", split="validation")


def test_a_wrong_config_lists_the_known_ones(built, tmp_path, capsys):
    from hf_noisy.errors import HfNoisyError
    from hf_noisy.hub import load_coco_n, resolve_dataset

    assert main(["export", str(built), "--config", "hardd", "-o", str(tmp_path / "o.json")]) == 2
    assert f"{built} has no config 'hardd'; its configs are clean" in capsys.readouterr().err
    with pytest.raises(HfNoisyError, match="its configs are clean"):
        load_coco_n(built, "hardd", split="train")
    assert resolve_dataset(built, "clean", "validation").local


def test_no_network_is_one_line(built, tmp_path, capsys, monkeypatch, no_network):
    monkeypatch.setenv("HF_TOKEN", "hf_some_token")  # a token, so that the push gets as far as the network
    assert main(["push", str(built), "--repo-id", "me/coco-n"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hf-noisy push: error: cannot reach the Hugging Face Hub") and err.count("\n") == 1
    assert main(["export", "noisy-seg/coco-n", "--config", "hard", "-o", str(tmp_path / "o.json")]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Hugging Face Hub" in err and err.count("\n") == 1 and no_network


def test_training_script_resolves_its_dataset_with_the_same_function(tmp_path, monkeypatch, no_network):
    pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    import importlib

    from hf_noisy.errors import HfNoisyError

    monkeypatch.syspath_prepend(str(REPO / "train"))
    m2f = importlib.import_module("train_mask2former")
    with pytest.raises(HfNoisyError, match="coco-n-tinyy: no such folder"):
        m2f.main(["--dataset", "./coco-n-tinyy", "--output-dir", str(tmp_path / "run")])
    assert no_network == [] and not (tmp_path / "run").exists()


def test_an_empty_crowd_region_is_refused_as_validation_refuses_it(tmp_path, capsys):
    """Found by tests/test_fuzz.py: crowd regions skip the noise, and skipped the emptiness check with it."""
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_mutate(["annotations", 1, "segmentation"], [[0, 0, 0, 0, 0, 0]])))
    out = tmp_path / "out.json"
    assert main(["noise", str(source), "-o", str(out), "--no-progress"]) == 2
    assert "annotation 11: field 'segmentation': the mask is empty" in capsys.readouterr().err
    assert not out.exists()
    assert main(["noise", str(source), "-o", str(out), "--no-progress", "--allow-empty-masks"]) == 0


@pytest.mark.parametrize("argv", [
    ["build", "coco-n", "--coco-root", "./nope", "--out", "OUT"],
    ["build", "lvis-n", "--lvis-root", "./nope", "--coco-root", "./nope", "--out", "OUT"],
    ["build", "coco-wan", "--coco-root", "./nope", "--wan-dir", "./nope", "--out", "OUT"],
    ["leaderboard", "evaluate", "--store", "./nope"],
    ["leaderboard", "submit", "RESULTS", "--store", "./nope", "--benchmark", "coco-n", "--trained-on", "hard",
     "--model-name", "m", "--submitter", "s"],
    ["wan", "GT", "--images", "IMAGES", "--model", "./sam-nope", "-o", "OUT", "--prompt", "box"],
], ids=["build coco-n", "build lvis-n", "build coco-wan", "leaderboard evaluate", "leaderboard submit", "wan --model"])
def test_every_command_says_no_such_folder(argv, tmp_path, capsys, monkeypatch, no_network):
    if argv[0] == "wan":
        pytest.importorskip("transformers")
    monkeypatch.chdir(tmp_path)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GOOD))
    (tmp_path / "images").mkdir()
    if argv[0] == "wan":
        import cv2
        import numpy as np

        cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    values = {"OUT": str(tmp_path / "out"), "RESULTS": str(gt), "GT": str(gt), "IMAGES": str(tmp_path / "images")}
    assert main([values.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json", "images"] and no_network == []


def test_no_such_folder_comes_before_any_heavy_import_or_hub_client(tmp_path):
    """Why it is fast (CPU-seconds, not wall time): the check runs before datasets or huggingface_hub load."""
    import resource
    import subprocess
    import sys

    code = ("import sys; from hf_noisy.cli import main; "
            "rc = main(['export', './coco-n-tinyy', '--config', 'hard', '-o', 'x.json']); "
            "print(rc, sorted(m for m in ('datasets', 'huggingface_hub', 'torch') if m in sys.modules))")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert run.stdout.split() == ["2", "[]"], run.stdout + run.stderr
    assert "./coco-n-tinyy: no such folder" in run.stderr
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 10  # generous: a loaded CI box
