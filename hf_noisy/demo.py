"""The main job on built-in data: make the synthetic shapes dataset, noise it at each paper level, summarise.

Everything goes into one folder, written atomically (a failed run leaves the previous folder as it was)::

    hf-noisy-demo/
      data/images/*.png, data/annotations/instances.json   clean synthetic dataset
      noisy/{easy,medium,hard}.json                          noisy COCO files with provenance
      overlays/<image_id>.png                                clean vs hard, side by side
      summary.md                                             the table printed at the end
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .fsutil import atomic_directory, atomic_write_text
from .noise import PRESETS, NoiseSummary, noise_file
from .synthetic import make_shapes_dataset
from .viz import render_overlays

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    out_dir: Path
    summaries: dict[str, NoiseSummary]
    table: str


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
    levels: tuple[str, ...] = ("easy", "medium", "hard"),
    num_images: int = 12,
    seed: int = 1,
    num_proc: int = 1,
) -> DemoReport:
    """Build the demo folder (replacing an earlier one) and return what was applied per level."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=True) as tmp:
        clean = make_shapes_dataset(tmp / "data", num_images=num_images, seed=0)
        summaries = {}
        for level in levels:
            result = noise_file(clean, tmp / "noisy" / f"{level}.json", PRESETS[level].with_seed(seed), num_proc=num_proc)
            summaries[level] = result.summary
        if levels:
            from .coco import load_coco

            render_overlays(load_coco(clean), load_coco(tmp / "noisy" / f"{levels[-1]}.json", allow_empty_masks=True),
                            tmp / "data" / "images", tmp / "overlays", num_images=4, title=levels[-1])
        table = _table(summaries)
        atomic_write_text(tmp / "summary.md", f"# hf-noisy demo (seed {seed})\n\n{table}\n")
    return DemoReport(out_dir, summaries, table)
