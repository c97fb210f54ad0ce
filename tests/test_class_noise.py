"""Class noise, statistically: >= 1e5 draws per check; rates within binomial bounds, uniformity by chi-square."""

import json
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from hf_noisy.noise import ClassNoise, InstanceNoiser, NoiseSpec, SpecError
from hf_noisy.noise.labels import transition_matrix

N_DRAWS = 100_000
CATEGORIES = [
    {"id": 1, "name": "a1", "supercategory": "A"},
    {"id": 2, "name": "a2", "supercategory": "A"},
    {"id": 5, "name": "a3", "supercategory": "A"},
    {"id": 7, "name": "b1", "supercategory": "B"},
    {"id": 9, "name": "c1", "supercategory": "C"},
    {"id": 11, "name": "c2", "supercategory": "C"},
]
SQUARE = [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]]


def _draw(class_noise: ClassNoise, source: int, n: int = N_DRAWS, seed: int = 3) -> list[int]:
    noiser = InstanceNoiser(NoiseSpec(seed=seed, class_noise=class_noise), CATEGORIES)
    ann = {"image_id": 1, "category_id": source, "segmentation": SQUARE, "iscrowd": 0}
    return [noiser({**ann, "id": i}, 8, 8)["category_id"] for i in range(n)]


def _assert_rate(successes: int, n: int, p: float) -> None:
    bound = 5 * np.sqrt(p * (1 - p) / n) + 1e-12  # 5 sigma: a correct sampler fails this ~1 in 2 million
    assert abs(successes / n - p) <= bound, (successes / n, p)


def test_symmetric_flips_with_probability_p_uniformly_to_the_others():
    labels = _draw(ClassNoise("symmetric", 0.4), source=2)
    counts = Counter(labels)
    _assert_rate(N_DRAWS - counts[2], N_DRAWS, 0.4)  # the paper's Eq. 1, not the reference's p (N-1)/N
    others = [counts[c["id"]] for c in CATEGORIES if c["id"] != 2]
    assert len(others) == 5 and min(others) > 0
    assert stats.chisquare(others).pvalue > 1e-4


def test_reference_uniform_mix_would_fail_this_rate():
    # the released generator's matrix p*J/N + (1-p)*I changes a label with probability p*(N-1)/N
    p, n = 0.4, len(CATEGORIES)
    assert abs(p * (n - 1) / n - 0.4) > 5 * np.sqrt(0.24 / N_DRAWS)


def test_asymmetric_stays_in_the_supercategory():
    labels = Counter(_draw(ClassNoise("asymmetric", 0.3), source=1))
    assert set(labels) <= {1, 2, 5}
    _assert_rate(N_DRAWS - labels[1], N_DRAWS, 0.3)
    assert stats.chisquare([labels[2], labels[5]]).pvalue > 1e-4
    alone = Counter(_draw(ClassNoise("asymmetric", 0.3), source=7, n=2000))
    assert alone == {7: 2000}  # alone in its supercategory: never flips


def test_matrix_class_noise_follows_the_rows(tmp_path):
    matrix = np.eye(6)
    matrix[3] = [0.1, 0.0, 0.2, 0.5, 0.0, 0.2]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(matrix.tolist()))
    labels = Counter(_draw(ClassNoise("matrix", matrix=str(path)), source=7))
    for column, category in enumerate(CATEGORIES):
        _assert_rate(labels[category["id"]], N_DRAWS, matrix[3, column])


@pytest.mark.parametrize(
    "content, message",
    [("[[1, 0], [0, 1]]", "6 categories"), ("[[0.5]*6]", "JSON list"), (json.dumps([[0.5] * 6] * 6), "sums to 3")],
)
def test_bad_matrix_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(SpecError, match=message):
        transition_matrix(ClassNoise("matrix", matrix=str(path)), CATEGORIES)


def test_draws_are_reproducible_and_seed_dependent():
    a = _draw(ClassNoise("symmetric", 0.5), source=1, n=500, seed=1)
    assert a == _draw(ClassNoise("symmetric", 0.5), source=1, n=500, seed=1)
    assert a != _draw(ClassNoise("symmetric", 0.5), source=1, n=500, seed=2)


def test_noise_never_writes_over_the_matrix_its_spec_reads(tmp_path, capsys):
    """Issue 23, H: ``noise -o MATRIX --overwrite`` is refused (the matrix is an input), the matrix kept."""
    from hf_noisy.cli import main
    from hf_noisy.coco import write_coco
    from hf_noisy.noise import noise_file

    matrix = tmp_path / "m.json"
    matrix.write_text(json.dumps(np.eye(len(CATEGORIES)).tolist()))
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nclass_noise: {kind: matrix, matrix: m.json}\n")
    source = tmp_path / "in.json"
    write_coco({"images": [{"id": 1, "file_name": "a.png", "height": 8, "width": 8}], "categories": CATEGORIES,
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": SQUARE, "iscrowd": 0,
                                 "area": 16.0, "bbox": [0.0, 0.0, 4.0, 4.0]}]}, source)
    kept = matrix.read_bytes()
    assert main(["noise", str(source), "--spec", str(spec), "-o", str(matrix), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err and matrix.read_bytes() == kept
    from hf_noisy.noise import load_spec

    with pytest.raises(Exception, match="is the input"):
        noise_file(source, matrix, load_spec(str(spec)), overwrite=True)
    assert matrix.read_bytes() == kept
