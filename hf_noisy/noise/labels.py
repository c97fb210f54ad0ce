"""Class noise as a label-transition matrix over the dataset's categories.

Rows and columns follow the order of the file's ``categories`` list. ``T[i, j]`` is the probability that an
instance of category ``i`` is labelled ``j``. Conventions versus the paper's released generator:

* **symmetric** (paper Eq. 1): ``T = (1 - p) I + p / (N - 1) (J - I)``: the label changes with probability
  exactly ``p``. The released generator mixes with a uniform matrix over all N classes *including* the true
  one (``p * J / N + (1 - p) I``), so its labels change only with probability ``p (N - 1) / N``.
* **asymmetric** (Eq. 3): the label moves with probability ``p`` to one of the other categories of the same
  ``supercategory``, uniformly; a category alone in its supercategory keeps its label. Categories without any
  ``supercategory`` (LVIS) are an error: asymmetric noise would silently change nothing; use a matrix.
* **matrix**: any row-stochastic ``C x C`` matrix, read from a JSON file (a list of ``C`` rows).
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .spec import ClassNoise, SpecError

__all__ = ["transition_matrix", "draw_label"]


def transition_matrix(noise: ClassNoise, categories: Sequence[dict]) -> np.ndarray:
    """The ``C x C`` row-stochastic label-transition matrix of ``noise`` for these categories."""
    n = len(categories)
    if noise.kind == "symmetric":
        if n == 1:
            return np.ones((1, 1))
        matrix = np.full((n, n), noise.rate / (n - 1))
        np.fill_diagonal(matrix, 1.0 - noise.rate)
        return matrix
    if noise.kind == "asymmetric":
        if not any(category.get("supercategory") for category in categories):
            raise SpecError(f"asymmetric class noise moves labels within a supercategory, but none of the {n} categories "
                            "has one (e.g. LVIS); use symmetric noise or a matrix (class_noise: {kind: matrix, matrix: PATH})")
        groups: dict[str, list[int]] = {}
        for index, category in enumerate(categories):
            groups.setdefault(category.get("supercategory", category["name"]), []).append(index)
        matrix = np.eye(n)
        for members in groups.values():
            if len(members) > 1:
                block = np.ix_(members, members)
                matrix[block] = noise.rate / (len(members) - 1)
                matrix[members, members] = 1.0 - noise.rate
        return matrix
    return _read_matrix(Path(noise.matrix), n)


def _read_matrix(path: Path, n: int) -> np.ndarray:
    try:
        matrix = np.asarray(json.loads(path.read_text(encoding="utf-8")), dtype=float)
    except FileNotFoundError:
        raise SpecError(f"class-noise matrix file {path} not found") from None
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise SpecError(f"{path}: the class-noise matrix must be a JSON list of {n} rows of {n} numbers ({err})") from None
    if matrix.shape != (n, n):
        raise SpecError(f"{path}: the class-noise matrix is {'x'.join(map(str, matrix.shape))}, the file has {n} categories")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise SpecError(f"{path}: the class-noise matrix must hold finite, non-negative numbers")
    sums = matrix.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise SpecError(f"{path}: row {row} of the class-noise matrix sums to {sums[row]:.6g}, not 1")
    return matrix


def draw_label(cumulative_row: Sequence[float], uniform: float) -> int:
    """The label index drawn by ``uniform`` in [0, 1) from one row of ``T.cumsum(axis=1)`` (a list or array)."""
    return min(bisect.bisect_right(cumulative_row, uniform * cumulative_row[-1]), len(cumulative_row) - 1)
