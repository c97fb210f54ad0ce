"""Per-instance training losses by noise provenance: the paper's Figure 7/10 view and a separability table.

Input: the parquet files that ``train/train_mask2former.py --log-instance-losses`` writes under
``RUN_DIR/instance_losses/`` (one row per Hungarian-matched ground-truth instance of a recorded step: ``step``,
``epoch``, ``class_loss``, ``mask_bce``, ``mask_dice``, ``noise_op``, ``class_flipped``, ...).

Groups (:func:`instance_groups`): ``clean`` (no spatial op, class kept), ``class flipped`` (the label was
changed, whatever the spatial op) and one group per spatial op for instances whose class was kept (``erode``,
``localization``, ...). The mask loss is ``mask_bce + mask_dice`` (both per pixel of the target, unweighted).

Separability: for each bucket (epoch, or a range of steps), noisy group and loss, the AUROC of "the loss is
higher for the noisy instance": the probability that a random noisy instance's loss exceeds a random clean
instance's (ties count half; Mann-Whitney U / (n_noisy x n_clean)). 0.5 means not separable by that loss; 1.0
means every noisy instance has a higher loss than every clean one.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..errors import HfNoisyError
from ._figure import save_png

__all__ = ["LossReport", "analyze_losses", "auroc", "instance_groups", "load_instance_losses"]

CLEAN, FLIPPED = "clean", "class flipped"
LOSSES = ("class_loss", "mask_loss", "mask_bce", "mask_dice")
_COLUMNS = ("step", "epoch", "class_loss", "mask_bce", "mask_dice", "noise_op", "class_flipped")


def load_instance_losses(run_dir: str | os.PathLike, *, progress: bool = False) -> dict[str, np.ndarray]:
    """Every rank's rows of ``run_dir/instance_losses`` (or of ``run_dir`` itself if it holds the parquet
    files), as column arrays sorted by ``(step, rank, micro_batch)`` file order; adds ``mask_loss``.
    ``progress``: a progress bar on stderr of the files read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..progress import progress_bar

    root = Path(run_dir)
    folder = root / "instance_losses" if (root / "instance_losses").is_dir() else root
    files = sorted(folder.glob("rank-*/steps-*.parquet"))
    if not files:
        raise HfNoisyError(f"{folder}: no instance-loss files (rank-*/steps-*.parquet); train with "
                           "--log-instance-losses")
    tables = []
    with progress_bar(progress, total=len(files), desc="reading losses", unit="file") as bar:
        for path in files:
            tables.append(pq.read_table(path, columns=list(_COLUMNS)))
            bar.update(1)
    table = pa.concat_tables(tables)
    if table.num_rows == 0:
        raise HfNoisyError(f"{folder}: the instance-loss files hold no rows")
    columns = {name: table[name].to_numpy(zero_copy_only=False) for name in _COLUMNS}
    columns["noise_op"] = np.array(["none" if op is None else str(op) for op in columns["noise_op"]], dtype=object)
    columns["class_flipped"] = np.array([bool(v) for v in columns["class_flipped"]])  # null: not flipped
    columns["mask_loss"] = columns["mask_bce"] + columns["mask_dice"]
    return columns


def instance_groups(noise_op: np.ndarray, class_flipped: np.ndarray) -> np.ndarray:
    """The group of each instance (module docstring): ``"clean"``, ``"class flipped"`` or the spatial op."""
    ops = np.asarray(noise_op, dtype=object)
    return np.where(np.asarray(class_flipped, bool), FLIPPED, np.where(ops == "none", CLEAN, ops)).astype(object)


def auroc(noisy: np.ndarray, clean: np.ndarray) -> float:
    """P(noisy > clean) + P(tie) / 2 over all pairs; ``nan`` when either side is empty."""
    noisy, clean = np.asarray(noisy, float), np.asarray(clean, float)
    if not len(noisy) or not len(clean):
        return float("nan")
    values = np.concatenate([noisy, clean])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # average ranks over ties (1-based)
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    u = ranks[: len(noisy)].sum() - len(noisy) * (len(noisy) + 1) / 2.0
    return float(u / (len(noisy) * len(clean)))


@dataclasses.dataclass
class LossReport:
    """``summary``: one dict per (bucket, group, loss) with ``n``, ``mean``, ``q25``, ``q75``; ``separability``:
    one dict per (bucket, noisy group) with ``n_noisy``, ``n_clean`` and the AUROC of each loss;
    ``buckets``: the bucket labels in order; ``figure``: the PNG written, if any."""

    by: str
    buckets: list[str]
    summary: list[dict]
    separability: list[dict]
    figure: Path | None = None

    def format_table(self) -> str:
        """The separability table as aligned text (AUROC of each loss, noisy vs clean)."""
        head = f"{self.by:>12} {'group':<16} {'n':>6} {'clean':>6} " + " ".join(f"{name:>10}" for name in LOSSES)
        lines = ["AUROC of each loss, noisy vs clean instances (0.5: not separable; 1.0: every noisy instance has "
                 "the higher loss)", head]
        for row in self.separability:
            values = " ".join(f"{row[name]:>10.3f}" for name in LOSSES)
            lines.append(f"{row['bucket']:>12} {row['group']:<16} {row['n_noisy']:>6} {row['n_clean']:>6} {values}")
        return "\n".join(lines)


def _buckets(columns: dict[str, np.ndarray], by: str, num_buckets: int) -> tuple[np.ndarray, list[str]]:
    if by == "epoch":
        values = columns["epoch"].astype(int)
        found = sorted(set(values.tolist()))
        return np.array([found.index(v) for v in values]), [str(v) for v in found]
    if by != "step":
        raise HfNoisyError(f"by must be 'epoch' or 'step', got {by!r}")
    steps = columns["step"].astype(int)
    lo, hi = int(steps.min()), int(steps.max())
    edges = np.linspace(lo, hi + 1, max(1, num_buckets) + 1)
    index = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, len(edges) - 2)
    used = sorted(set(index.tolist()))
    labels = [f"{int(np.ceil(edges[i]))}-{int(np.ceil(edges[i + 1])) - 1}" for i in used]
    return np.array([used.index(i) for i in index]), labels


def analyze_losses(run_dir: str | os.PathLike, *, figure: str | os.PathLike | None = None, by: str = "epoch",
                   num_buckets: int = 10, progress: bool = False) -> LossReport:
    """Summarise and (with ``figure``) draw a run's per-instance losses by group (module docstring).

    ``by="epoch"`` buckets rows by their epoch; ``by="step"`` by ``num_buckets`` equal ranges of steps.
    ``progress``: progress bars on stderr of the files read, then of the buckets summarised.
    """
    from ..progress import progress_bar

    columns = load_instance_losses(run_dir, progress=progress)
    bucket, labels = _buckets(columns, by, num_buckets)
    groups = instance_groups(columns["noise_op"], columns["class_flipped"])
    names = [CLEAN] + sorted(set(groups.tolist()) - {CLEAN, FLIPPED}) + ([FLIPPED] if FLIPPED in groups else [])
    summary, separability = [], []
    with progress_bar(progress, total=len(labels), desc="summarising", unit="bucket") as bar:
        for b, label in enumerate(labels):
            here = bucket == b
            for group in names:
                chosen = here & (groups == group)
                for loss in LOSSES:
                    values = columns[loss][chosen]
                    if len(values):
                        q25, q75 = np.percentile(values, [25, 75])
                        summary.append({"bucket": label, "group": group, "loss": loss, "n": int(len(values)),
                                        "mean": float(values.mean()), "q25": float(q25), "q75": float(q75)})
            clean = here & (groups == CLEAN)
            for group in names[1:]:
                noisy = here & (groups == group)
                if noisy.any():
                    aurocs = {loss: auroc(columns[loss][noisy], columns[loss][clean]) for loss in LOSSES}
                    separability.append({"bucket": label, "group": group, "n_noisy": int(noisy.sum()),
                                         "n_clean": int(clean.sum()), **aurocs})
            bar.update(1)
    report = LossReport(by, labels, summary, separability)
    if figure is not None:
        report.figure = _draw(report, names, Path(figure))
    return report


def _draw(report: LossReport, names: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    x = np.arange(len(report.buckets))
    colours = plt.get_cmap("tab10")
    for ax, loss, title in ((axes[0], "class_loss", "class loss"), (axes[1], "mask_loss", "mask loss (BCE + dice)")):
        for k, group in enumerate(names):
            rows = {r["bucket"]: r for r in report.summary if r["group"] == group and r["loss"] == loss}
            where = [i for i, b in enumerate(report.buckets) if b in rows]
            if not where:
                continue
            got = [rows[report.buckets[i]] for i in where]
            colour = "black" if group == CLEAN else colours(k % 10)
            # a small sideways offset per group keeps the quartile bars apart
            at = x[where] + (k - (len(names) - 1) / 2) * 0.08
            means = np.array([r["mean"] for r in got])
            band = np.array([[m - r["q25"] for m, r in zip(means, got)], [r["q75"] - m for m, r in zip(means, got)]])
            ax.errorbar(at, means, yerr=np.clip(band, 0, None), marker="o", ms=3, capsize=2, color=colour,
                        lw=2.2 if group == CLEAN else 1.4, label=f"{group} (n={sum(r['n'] for r in got)})")
            ax.fill_between(at, [r["q25"] for r in got], [r["q75"] for r in got], color=colour, alpha=0.12)
        ax.set_title(f"{title}: mean and 25-75% band")
        ax.set_xticks(x, report.buckets, rotation=45 if len(x) > 8 else 0)
        ax.set_xlabel(report.by)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    save_png(fig, path)
    return path
