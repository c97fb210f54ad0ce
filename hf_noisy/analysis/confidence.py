"""Detection confidence under label noise: the paper's Figure 6 view.

Each input is a COCO results file (a JSON list of detections with a ``score``; ``.gz`` allowed), e.g. the
``--predictions-out`` of one training run per noise level. For each run: the number of detections, the mean
score, and the share of detections whose score is above ``threshold`` (0.5); the figure overlays the
histograms of the scores above the threshold (as the paper plots them), one outline per run, with a legend.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import orjson

from ..errors import HfNoisyError
from ._figure import save_png

__all__ = ["ConfidenceReport", "analyze_confidence"]


@dataclasses.dataclass
class ConfidenceReport:
    """``runs``: one dict per input (``name``, ``path``, ``detections``, ``mean_score``, ``share_above``,
    ``scores``: the sorted scores); ``threshold``; ``figure``: the PNG written, if any."""

    threshold: float
    runs: list[dict]
    figure: Path | None = None

    def format_table(self) -> str:
        lines = [f"{'run':<28} {'detections':>10} {'mean score':>10} {'> ' + str(self.threshold):>8}"]
        for run in self.runs:
            lines.append(f"{run['name']:<28} {run['detections']:>10} {run['mean_score']:>10.4f} "
                         f"{run['share_above']:>8.1%}")
        return "\n".join(lines)


def _scores(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise HfNoisyError(f"{path}: not JSON ({err})") from None
    if not isinstance(data, list):
        raise HfNoisyError(f"{path}: a results file is a JSON list of detections")
    scores = []
    for index, det in enumerate(data):
        score = det.get("score") if isinstance(det, dict) else None
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not np.isfinite(score):
            raise HfNoisyError(f"{path}: detection #{index} has no finite numeric score")
        scores.append(float(score))
    return np.sort(np.asarray(scores, float))


def analyze_confidence(results: Sequence[str | os.PathLike], *, names: Sequence[str] | None = None,
                       threshold: float = 0.5, bins: int = 20,
                       figure: str | os.PathLike | None = None, progress: bool = False) -> ConfidenceReport:
    """Score statistics of each results file and (with ``figure``) one histogram figure with a legend.

    ``names`` label the runs (default: each file's parent folder and name); ``bins`` equal bins over
    ``(threshold, 1]``. ``progress``: a progress bar on stderr of the bytes of the files read.
    """
    from ..progress import progress_bar

    paths = [Path(p) for p in results]
    if not paths:
        raise HfNoisyError("give at least one results file")
    if names is not None and len(names) != len(paths):
        raise HfNoisyError(f"{len(names)} names for {len(paths)} results files")
    labels = list(names) if names is not None else [f"{p.parent.name}/{p.name}" if p.parent.name else p.name for p in paths]
    runs = []
    total = sum(path.stat().st_size for path in paths if path.is_file())
    with progress_bar(progress, total=total, desc="reading results", unit="B", unit_scale=True,
                      unit_divisor=1024) as bar:
        for label, path in zip(labels, paths):
            bar.set_postfix_str(label)
            scores = _scores(path)
            runs.append({"name": label, "path": str(path), "detections": int(len(scores)),
                         "mean_score": float(scores.mean()) if len(scores) else float("nan"),
                         "share_above": float((scores > threshold).mean()) if len(scores) else float("nan"),
                         "scores": scores})
            bar.update(path.stat().st_size)
    report = ConfidenceReport(threshold, runs)
    if figure is not None:
        report.figure = _draw(report, bins, Path(figure))
    return report


def _draw(report: ConfidenceReport, bins: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(report.threshold, 1.0, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for run in report.runs:
        above = run["scores"][run["scores"] > report.threshold]
        ax.hist(above, bins=edges, histtype="step", lw=1.8,
                label=f"{run['name']}: {len(above)} > {report.threshold}, mean {run['mean_score']:.3f}")
    ax.set_xlabel("detection score")
    ax.set_ylabel("detections")
    ax.set_title(f"Detection confidence (scores > {report.threshold})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_png(fig, path)
    return path
