"""``hf-noisy fit``: a spec recovered from a clean/noisy pair, by round trip through the real noise engine on
coco-tiny (the paper's levels, single ops, the three class-noise kinds), without the provenance fields, with
renumbered ids, and through the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.noise import PRESETS, NoiseSpec, apply_noise, load_spec
from hf_noisy.noise.fit import FitError, fit_spec, match_annotations, wilson

PROVENANCE = ("noise_op", "noise_param", "class_flipped", "original_category_id")


@pytest.fixture(scope="module")
def clean(coco_tiny: Path) -> dict:
    from hf_noisy.coco import load_coco

    return load_coco(coco_tiny / "annotations" / "instances_train2017.json")


def _noised(clean: dict, spec: NoiseSpec) -> dict:
    return apply_noise(copy.deepcopy(clean), spec).data


def _stripped(data: dict) -> dict:
    return {**data, "info": {}, "annotations": [{k: v for k, v in a.items() if k not in PROVENANCE}
                                               for a in data["annotations"]]}


def _realised(noisy: dict) -> dict[str, float]:
    """Per-op shares of the non-crowd annotations, from the engine's provenance (the test's ground truth)."""
    anns = [a for a in noisy["annotations"] if not a.get("iscrowd", 0)]
    out: dict[str, float] = {}
    for a in anns:
        out[a["noise_op"]] = out.get(a["noise_op"], 0) + 1 / len(anns)
    out["class"] = sum(a["class_flipped"] for a in anns) / len(anns)
    return out


@pytest.fixture(scope="module")
def hard(clean: dict) -> tuple[dict, object]:
    noisy = _noised(clean, PRESETS["hard"])
    return noisy, fit_spec(clean, _stripped(noisy))


@pytest.mark.slow
def test_hard_round_trip_recovers_the_spec(clean: dict, hard):
    noisy, result = hard
    realised = _realised(noisy)
    spec = result.spec
    assert result.class_kind == "symmetric" and spec.class_noise.kind == "symmetric"
    assert abs(spec.class_noise.rate - 0.4) <= 0.03
    assert spec.class_noise.rate == pytest.approx(realised["class"], abs=1e-4)  # the realised flips, exactly
    ops = {op.op: op for op in spec.spatial}
    assert set(ops) == {"scale", "localization", "approximation"}
    assert ops["scale"].param == 7 and ops["approximation"].param == 15
    assert 3 < ops["localization"].param < 5  # within the preset grid's neighbours (sigma 3 / 5)
    for name in ("scale", "localization", "approximation"):
        assert abs(ops[name].prob - 0.3) <= 0.03, name
    # deterministic ops are replayed exactly, so the estimates are the realised shares, not just near them
    assert ops["scale"].prob == pytest.approx(realised["dilate"] + realised["erode"], abs=1e-4)
    assert ops["approximation"].prob == pytest.approx(realised["approximation"], abs=1e-4)
    assert ops["localization"].prob == pytest.approx(realised["localization"], abs=1e-4)
    # every number has its interval, and the interval holds it
    for fit in result.ops.values():
        assert fit.rate.low <= fit.rate.value <= fit.rate.high and fit.rate.n == result.eligible == 699
    sigma = result.ops["localization"]
    assert sigma.param_low < sigma.param < sigma.param_high


@pytest.mark.slow
def test_the_fitted_spec_is_a_valid_spec_that_noises_alike(clean: dict, hard):
    _, result = hard
    again = NoiseSpec.from_dict(json.loads(result.spec.to_json()))
    assert again == result.spec
    refit = fit_spec(clean, _stripped(_noised(clean, again.with_seed(5))))
    assert abs(refit.spec.class_noise.rate - result.spec.class_noise.rate) <= 0.06


@pytest.mark.slow
def test_provenance_fields_are_never_read(clean: dict, hard):
    noisy, result = hard
    with_provenance = fit_spec(clean, noisy)
    assert with_provenance.to_dict() == result.to_dict()
    # lying provenance changes nothing either
    lies = {**noisy, "annotations": [dict(a, noise_op="none", class_flipped=False, noise_param=None,
                                          original_category_id=a["category_id"]) for a in noisy["annotations"]]}
    assert fit_spec(clean, lies).to_dict() == result.to_dict()


@pytest.mark.slow
def test_renumbered_ids_are_matched_by_iou(clean: dict, hard):
    noisy, by_id = hard
    renumbered = _stripped(noisy)
    renumbered["annotations"] = [dict(a, id=a["id"] + 10**9) for a in renumbered["annotations"]]
    matching = match_annotations(clean, renumbered)
    assert matching.by_id == 0 and matching.by_iou == len(matching.pairs) >= 0.97 * len(clean["annotations"])
    # the IoU pairs are the true pairs (same clean id behind the renumbered one)
    assert sum(c["id"] + 10**9 == n["id"] for c, n in matching.pairs) >= 0.99 * len(matching.pairs)
    result = fit_spec(clean, renumbered)
    ops, truth = {op.op: op for op in result.spec.spatial}, {op.op: op for op in by_id.spec.spatial}
    # masks that noise emptied (or shrank below IoU 0.1) have no IoU partner: they can only count as missing
    missing = ops.pop("missing").prob
    assert missing == pytest.approx(len(matching.unmatched_clean) / 699, abs=0.002) and missing <= 0.03
    assert ops.keys() == truth.keys()
    for name in ops:
        assert abs(ops[name].prob - truth[name].prob) <= 0.03 and abs(ops[name].param - truth[name].param) <= 0.5
    assert abs(result.spec.class_noise.rate - by_id.spec.class_noise.rate) <= 0.03


@pytest.mark.parametrize("op, param, expected", [
    ("dilate", 5, {"dilate"}), ("erode", 3, {"erode"}), ("scale", 5, {"scale"}),
    ("localization", 2.0, {"localization"}), ("approximation", 10.0, {"approximation"}),
])
@pytest.mark.slow
def test_single_ops_are_found_alone(clean: dict, op: str, param, expected: set):
    key = {"localization": "sigma", "approximation": "tolerance"}.get(op, "kernel")
    spec = NoiseSpec.from_dict({"seed": 3, "spatial": [{"op": op, "prob": 0.3, key: param}]})
    noisy = _noised(clean, spec)
    result = fit_spec(clean, _stripped(noisy))
    fitted = {o.op: o for o in result.spec.spatial}
    assert set(fitted) == expected and result.spec.class_noise is None and result.class_kind == "none"
    (got,) = fitted.values()
    realised = 1 - _realised(noisy)["none"]
    assert abs(got.prob - 0.3) <= 0.03 and got.prob == pytest.approx(realised, abs=1e-4)
    if op == "localization":
        assert 1.0 < got.param < 3.0
    else:
        assert got.param == param


@pytest.mark.slow
def test_class_noise_kinds(clean: dict, tmp_path: Path):
    asym = fit_spec(clean, _stripped(_noised(clean, NoiseSpec.from_dict(
        {"class_noise": {"kind": "asymmetric", "rate": 0.3}}))))
    assert asym.class_kind == "asymmetric" and abs(asym.spec.class_noise.rate - 0.3) <= 0.03
    assert asym.class_loglik["symmetric"] < asym.class_loglik["asymmetric"]
    n = len(clean["categories"])
    cyclic = [[0.7 if j == i else 0.3 if j == (i + 1) % n else 0.0 for j in range(n)] for i in range(n)]
    (tmp_path / "m.json").write_text(json.dumps(cyclic))
    noisy = _noised(clean, NoiseSpec.from_dict({"class_noise": {"kind": "matrix", "matrix": str(tmp_path / "m.json")}}))
    result = fit_spec(clean, _stripped(noisy))
    assert result.class_kind == "matrix" and result.spec.class_noise.kind == "matrix"
    # every flip lands on the next category, as the matrix says
    flips = [(i, j) for i, row in enumerate(result.confusion) for j, count in enumerate(row) if count and i != j]
    assert flips and all(j == (i + 1) % n for i, j in flips)
    assert abs(result.class_rate.value - 0.3) <= 0.03


def test_clean_against_itself_is_no_noise(clean: dict):
    result = fit_spec(clean, copy.deepcopy(clean))
    assert result.spec.class_noise is None and result.spec.spatial == () and result.class_kind == "none"
    assert result.ops["none"].rate.value == 1.0 and len(result.matching.pairs) == len(clean["annotations"])


@pytest.mark.slow
def test_fit_is_deterministic(clean: dict, hard):
    noisy, result = hard
    assert fit_spec(clean, _stripped(noisy)).to_dict() == result.to_dict()


def test_wilson_interval():
    assert (wilson(0, 10).low, round(wilson(0, 10).high, 4)) == (0.0, 0.2775)
    e = wilson(30, 100)
    assert e.value == 0.3 and round(e.low, 4) == 0.2189 and round(e.high, 4) == 0.3958


def test_a_file_of_other_images_is_refused(clean: dict):
    other = copy.deepcopy(clean)
    other["images"][0]["height"] += 1
    with pytest.raises(FitError, match="noisy image .* is not in the clean file with the same size"):
        fit_spec(clean, other)


@pytest.mark.slow
def test_cli_writes_a_spec_that_load_spec_reads(coco_tiny: Path, tmp_path: Path, capsys):
    train = coco_tiny / "annotations" / "instances_train2017.json"
    noisy = tmp_path / "medium.json"
    assert main(["noise", str(train), "-o", str(noisy), "--spec", "medium"]) == 0
    capsys.readouterr()
    out = tmp_path / "fitted.yaml"
    assert main(["fit", str(train), str(noisy), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "class noise (symmetric)" in printed and "95% interval" in printed and f"wrote {out}" in printed
    spec = load_spec(out)
    assert {op.op for op in spec.spatial} == {"scale", "localization", "approximation"}
    assert {op.op: op.param for op in spec.spatial}["scale"] == 5
    assert main(["fit", str(train), str(noisy), "-o", str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    assert main(["fit", str(train), str(noisy), "-o", str(train), "--overwrite"]) == 2  # never an input
    assert main(["fit", str(train), str(noisy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["class_kind"] == "symmetric" and report["eligible"] == 699


@pytest.mark.slow
def test_cli_matrix_kind_writes_its_matrix_beside_the_spec(clean: dict, coco_tiny: Path, tmp_path: Path, capsys):
    from hf_noisy.coco import write_coco

    n = len(clean["categories"])
    (tmp_path / "m.json").write_text(json.dumps([[0.6 if j == i else 0.4 if j == (i + 1) % n else 0.0
                                                  for j in range(n)] for i in range(n)]))
    noisy = _noised(clean, NoiseSpec.from_dict({"class_noise": {"kind": "matrix", "matrix": str(tmp_path / "m.json")}}))
    write_coco(noisy, tmp_path / "noisy.json")
    out = tmp_path / "out" / "fitted.yaml"
    out.parent.mkdir()
    assert main(["fit", str(coco_tiny / "annotations" / "instances_train2017.json"), str(tmp_path / "noisy.json"),
                 "-o", str(out)]) == 0
    spec = load_spec(out)
    assert spec.class_noise.kind == "matrix" and Path(spec.class_noise.matrix) == out.with_suffix(".matrix.json")
    matrix = json.loads(out.with_suffix(".matrix.json").read_text())
    assert len(matrix) == n and all(abs(sum(row) - 1) < 1e-9 for row in matrix)


NEW_OPS = {
    "missing": {}, "duplicate": {"max_offset": 0.2}, "merge": {}, "split": {}, "box": {},
    "shift": {"max_offset": 0.2}, "vertex_dropout": {"fraction": 0.3}, "crowd_flip": {},
}
#: provenance the annotation-error ops add (never read by fit either)
NEW_PROVENANCE = ("noise_source_ids", "noise_offset")


def _applied(noisy: dict, op: str) -> int:
    """How many clean instances the engine visibly changed with ``op`` (from its provenance: the test's truth)."""
    anns = noisy["annotations"]
    if op in ("missing", "merge"):
        return noisy["info"]["hf_noisy"]["summary"]["ops"].get(op, 0)
    if op in ("duplicate", "split"):  # the added instances
        return sum(a["noise_op"] == op for a in anns) - (op == "split") * sum(
            a["noise_op"] == "split" for a in anns) // 2
    if op == "shift":  # a small box may draw a (0, 0) move
        return sum(a["noise_op"] == op and a["noise_offset"] != [0, 0] for a in anns)
    return sum(a["noise_op"] == op for a in anns)


@pytest.mark.slow
@pytest.mark.parametrize("op", list(NEW_OPS))
def test_each_annotation_error_op_alone(clean: dict, op: str):
    spec = NoiseSpec.from_dict({"seed": 1, "spatial": [{"op": op, "prob": 0.3, **NEW_OPS[op]}]})
    noisy = apply_noise(copy.deepcopy(clean), spec).data
    stripped = _stripped(noisy)
    stripped["annotations"] = [{k: v for k, v in a.items() if k not in NEW_PROVENANCE} for a in stripped["annotations"]]
    result = fit_spec(clean, stripped)
    fitted = {o.op: o for o in result.spec.spatial}
    assert set(fitted) <= {op, "missing", "localization"}, fitted  # nothing else invented
    got = fitted[op]
    # the instances the op visibly changed are found, within two (a shift by (0, 0) or a box of a box looks unchanged)
    assert abs(result.ops[op].rate.value * result.eligible - _applied(noisy, op)) <= 2.001
    if op != "merge":  # a merge needs a same-class neighbour: about 2/3 of the draws find one here
        assert abs(got.prob - 0.3) <= 0.03
    for other in set(fitted) - {op}:
        assert fitted[other].prob <= 0.003
    if NEW_OPS[op]:
        ((name, value),) = NEW_OPS[op].items()
        assert abs(got.param - value) <= 0.02, (name, got.param)


@pytest.mark.slow
def test_annotation_error_ops_together_with_the_paper_level(clean: dict):
    spatial = [{"op": op, "prob": 0.05, **params} for op, params in NEW_OPS.items()]
    spatial += [{"op": "scale", "prob": 0.1, "kernel": 5}, {"op": "approximation", "prob": 0.1, "tolerance": 10}]
    spec = NoiseSpec.from_dict({"seed": 2, "class_noise": {"kind": "symmetric", "rate": 0.2}, "spatial": spatial})
    noisy = apply_noise(copy.deepcopy(clean), spec).data
    result = fit_spec(clean, _stripped(noisy))
    fitted = {o.op: o for o in result.spec.spatial}
    assert set(NEW_OPS) <= set(fitted) and fitted["scale"].param == 5 and fitted["approximation"].param == 10
    for op in NEW_OPS:
        assert abs(result.ops[op].rate.value * result.eligible - _applied(noisy, op)) <= 2.001, op
    assert result.class_kind == "symmetric" and abs(result.class_rate.value - 0.2) <= 0.03


@pytest.mark.slow
def test_max_images_fits_a_sample(clean: dict, hard):
    noisy, _ = hard
    keep = {image["id"] for image in clean["images"][:40]}
    result = fit_spec(clean, _stripped(noisy), max_images=40)
    assert result.eligible == sum(a["image_id"] in keep and not a["iscrowd"] for a in clean["annotations"]) < 699
    assert {op.op for op in result.spec.spatial} == {"scale", "localization", "approximation"}
    with pytest.raises(FitError, match="max_images must be >= 1"):
        fit_spec(clean, noisy, max_images=0)
