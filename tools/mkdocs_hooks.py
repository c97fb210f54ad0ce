"""mkdocs hooks (``hooks:`` in mkdocs.yml): files the site publishes that are not written under ``docs/``.

* ``assets/figures/*.png``: the noise model's figures, drawn at build time with the library's own overlay
  code (:func:`hf_noisy.viz.render_pair`) on the built-in synthetic dataset
  (:func:`hf_noisy.synthetic.make_shapes_coco`), so they always show what the installed code does. Nothing is
  written to the repository; each build draws them again (a few seconds).
* ``assets/results/...``: the measured figures kept under ``benchmarks/results/`` (pages link them as
  ``../assets/results/<path under benchmarks/results>``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: figure name -> (title on the noisy side, spec as a dict): each spatial op on every instance, at the hard
#: level's parameter, then the class noise alone and the three levels of the paper's Table 7
FIGURES = {
    "dilate": ("dilate, k = 7", {"seed": 1, "spatial": [{"op": "dilate", "prob": 1.0, "kernel": 7}]}),
    "erode": ("erode, k = 7", {"seed": 1, "spatial": [{"op": "erode", "prob": 1.0, "kernel": 7}]}),
    "localization": ("localization, sigma = 4", {"seed": 1, "spatial": [{"op": "localization", "prob": 1.0, "sigma": 4}]}),
    "approximation": ("approximation, d = 15",
                      {"seed": 1, "spatial": [{"op": "approximation", "prob": 1.0, "tolerance": 15}]}),
    "class": ("symmetric class noise, 40%", {"seed": 1, "class_noise": {"kind": "symmetric", "rate": 0.4}}),
    "easy": ("easy", "easy"),
    "medium": ("medium", "medium"),
    "hard": ("hard", "hard"),
}
#: the synthetic train image the figures show (holes, thin bars, touching objects)
FIGURE_IMAGE_INDEX = 0


def draw_figures(work_dir: Path) -> dict[str, bytes]:
    """``{"noise-<name>.png": PNG bytes}`` for every entry of :data:`FIGURES` (the synthetic data is written
    under ``work_dir``)."""
    import json

    import cv2

    from hf_noisy.noise import PRESETS, NoiseSpec, apply_noise
    from hf_noisy.synthetic import make_shapes_coco
    from hf_noisy.viz import render_pair

    root = make_shapes_coco(work_dir / "shapes", num_train=2, num_val=1)
    clean = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    image = clean["images"][FIGURE_IMAGE_INDEX]
    picture = cv2.imread(str(root / "train2017" / image["file_name"]), cv2.IMREAD_COLOR)
    names = {c["id"]: c["name"] for c in clean["categories"]}
    mine = [a for a in clean["annotations"] if a["image_id"] == image["id"]]
    figures = {}
    for name, (title, spec) in FIGURES.items():
        spec = PRESETS[spec] if isinstance(spec, str) else NoiseSpec.from_dict(spec)
        noisy = apply_noise(clean, spec).data
        theirs = [a for a in noisy["annotations"] if a["image_id"] == image["id"]]
        ok, png = cv2.imencode(".png", render_pair(picture, mine, theirs, names, title, mark_removed=True))
        figures[f"noise-{name}.png"] = png.tobytes()
    return figures


def on_files(files: Files, config) -> Files:
    with tempfile.TemporaryDirectory(prefix="hf-noisy-docs-") as work_dir:
        figures = draw_figures(Path(work_dir))
    for name, png in figures.items():
        files.append(File.generated(config, f"assets/figures/{name}", content=png))
    for path in sorted(RESULTS.rglob("*")):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".svg"}:
            uri = f"assets/results/{path.relative_to(RESULTS).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
