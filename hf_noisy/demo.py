"""The main job on built-in data: the synthetic shapes dataset, noised at each paper level, published as a
COCO-N-style Hugging Face dataset folder, loaded back, and summarised.

Everything goes into one folder, written atomically (a failed run leaves the previous folder as it was)::

    hf-noisy-demo/
      coco/                               clean synthetic dataset laid out like COCO 2017
      noisy/{easy,medium,hard}.json       noisy train annotations with provenance (hf-noisy noise)
      overlays/<image_id>.png             clean vs hard, side by side (hf-noisy show)
      shapes-n/                           parquet configs clean/easy/medium/hard + dataset card (hf-noisy build);
                                          only with the ``hub`` extra (``datasets`` installed)
      summary.md                          the tables printed at the end
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from .coco import load_coco
from .fsutil import atomic_directory, atomic_write_text
from .noise import PRESETS, NoiseSummary, noise_file
from .synthetic import make_shapes_coco
from .viz import render_overlays

__all__ = ["DemoReport", "run_demo"]

LEVELS = ("easy", "medium", "hard")


@dataclass
class DemoReport:
    """What the demo made: the folder, the noise summary per level, and the printed tables."""

    out_dir: Path
    summaries: dict[str, NoiseSummary]
    table: str
    hub_rows: dict[str, int] = field(default_factory=dict)  # config -> train rows loaded back with load_dataset


def _table(summaries: dict[str, NoiseSummary]) -> str:
    ops = ["none", "dilate", "erode", "localization", "approximation"]
    head = "| level | instances | " + " | ".join(ops) + " | class flipped | emptied |"
    rule = "|" + "---|" * (len(ops) + 4)
    rows = []
    for level, s in summaries.items():
        cells = [str(s.ops.get(op, 0)) for op in ops]
        rows.append(f"| {level} | {s.annotations} | " + " | ".join(cells) + f" | {s.class_flipped} | {s.emptied} |")
    return "\n".join([head, rule, *rows])


def run_demo(
    out_dir: str | os.PathLike = "hf-noisy-demo",
    *,
    num_images: int = 12,
    seed: int = 1,
    num_proc: int = 1,
    hub: bool | None = None,
    overwrite: bool = False,
) -> DemoReport:
    """Build the demo folder and return what was made; an existing folder is replaced only with ``overwrite``.

    ``hub=None`` builds the Hugging Face dataset folder when ``datasets`` is installed, ``True`` requires it.
    """
    if hub is None:
        hub = importlib.util.find_spec("datasets") is not None
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        root = make_shapes_coco(tmp / "coco", num_train=num_images, num_val=max(2, num_images // 3))
        clean = root / "annotations" / "instances_train2017.json"
        summaries = {}
        for level in LEVELS:
            summaries[level] = noise_file(clean, tmp / "noisy" / f"{level}.json", PRESETS[level].with_seed(seed), num_proc=num_proc)
        render_overlays(load_coco(clean), load_coco(tmp / "noisy" / "hard.json", allow_empty_masks=True),
                        root / "train2017", tmp / "overlays", num_images=4, title="hard")
        table = "Noise applied to the train split (instances per op):\n\n" + _table(summaries)
        hub_rows: dict[str, int] = {}
        if hub:
            from .hub import build_coco_n, load_coco_n

            import datasets

            built = build_coco_n(root, tmp / "shapes-n", seed=seed, num_proc=num_proc)
            quiet = datasets.are_progress_bars_disabled()
            datasets.disable_progress_bars()  # the tables are the output; restored below
            try:
                for config in ("clean", *LEVELS):
                    rows = load_coco_n(built.path, config, split="train")
                    hub_rows[config] = len(rows)
                    if rows[0]["image"] is None or not rows[0]["objects"]:
                        raise RuntimeError(f"config {config!r} loaded back without images or objects")
            finally:
                if not quiet:
                    datasets.enable_progress_bars()
            table += (
                "\n\nHugging Face dataset folder shapes-n/ (load_dataset(folder, config) for "
                f"{', '.join(hub_rows)}; mean IoU = mean mask IoU of noisy to clean):\n\n" + built.summary()
            )
        else:
            table += "\n\n(install the hub extra, pip install -e '.[hub]', to also build the Hugging Face dataset folder)"
        atomic_write_text(tmp / "summary.md", f"# hf-noisy demo (seed {seed})\n\n{table}\n")
    return DemoReport(out_dir, summaries, table, hub_rows)
