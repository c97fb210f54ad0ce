"""The COCO-N dataset card (README.md): YAML header with ``configs:``, then what a user needs to know.

Rendered only from the build metadata (``hf_noisy_benchmark.json``), so the card and the metadata can never
disagree, and the same build gives the same card.
"""

from __future__ import annotations

import yaml

__all__ = ["render_card", "CITATION"]

CITATION = """\
@article{grad2024benchmarking,
  title   = {Benchmarking Label Noise in Instance Segmentation: Spatial Noise Matters},
  author  = {Grad, Eden and Kimhi, Moshe and Halika, Lion and Baskin, Chaim},
  journal = {arXiv preprint arXiv:2406.10891},
  year    = {2024}
}"""

_LEVEL_TEXT = {
    "clean": "the original COCO 2017 annotations (no noise); also holds the images in `shared` storage",
    "easy": "20% symmetric class noise; each instance gets one of: scale (random dilate/erode, k=3), "
    "localization (Gaussian vertex shift, sigma=2 px), approximation (polygon simplification, tolerance 5 px), "
    "each with p=0.20, else unchanged",
    "medium": "30% class noise; scale k=5, localization sigma=3, approximation 10 px, each p=0.25",
    "hard": "40% class noise; scale k=7, localization sigma=4, approximation 15 px, each p=0.30",
}


def _header(metadata: dict) -> str:
    configs = []
    for i, (name, config) in enumerate(metadata["configs"].items()):
        entry: dict = {"config_name": name}
        if i == 0:
            entry["default"] = True
        entry["data_files"] = [
            {"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in config["splits"]
        ]
        configs.append(entry)
    header = {
        "license": "cc-by-4.0",
        "pretty_name": "COCO-N: COCO 2017 with benchmark label noise",
        "task_categories": ["image-segmentation", "object-detection"],
        "tags": ["instance-segmentation", "label-noise", "coco", "hf-noisy"],
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def _stats_table(metadata: dict) -> str:
    ops = sorted({op for c in metadata["configs"].values() for op in c["stats"]["ops"]})
    head = "| config | instances | " + " | ".join(ops) + " | classes flipped | emptied | mean mask IoU to clean |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, config in metadata["configs"].items():
        s = config["stats"]
        cells = [str(s["ops"].get(op, 0)) for op in ops]
        lines.append(f"| {name} | {s['instances']} | " + " | ".join(cells)
                     + f" | {s['class_flipped']} | {s['emptied']} | {s['mean_iou']:.4f} |")
    return "\n".join(lines)


def _specs(metadata: dict) -> str:
    blocks = []
    for name, config in metadata["configs"].items():
        if config["spec"] is None:
            continue
        blocks.append(f"**{name}** (spec sha256 `{config['spec_sha256']}`):\n\n```yaml\n"
                      + yaml.safe_dump(config["spec"], sort_keys=False) + "```")
    return "\n\n".join(blocks) or "(no noisy configs in this build)"


def _storage(metadata: dict) -> str:
    if metadata["images"] == "embedded":
        return (
            "**Image storage: `embedded`.** Every config carries the image bytes, so each config is self-contained: "
            "`load_dataset(repo, \"hard\")` gives rows with `image`. The bytes repeat in every config "
            "(Xet storage on the Hub deduplicates them; a local copy of all configs is about that many times larger)."
        )
    return (
        "**Image storage: `shared`.** The image bytes (the original JPEG files, not re-encoded) are stored once, "
        "in the `clean` config. The noisy configs hold annotation rows only, in exactly the same row order and "
        "sharding as `clean`, so four levels cost one copy of the images. Parquet-only configs cannot reference "
        "another config's column, so **`load_dataset(repo, \"hard\")` alone gives rows without `image`**. Join "
        "it back with one call:\n\n"
        "```python\n"
        "from hf_noisy.hub import load_coco_n\n"
        "ds = load_coco_n(\"REPO_OR_DIR\", \"hard\", split=\"train\")                  # rows with image\n"
        "it = load_coco_n(\"REPO_OR_DIR\", \"hard\", split=\"train\", streaming=True)  # also streams\n"
        "```\n\n"
        "or without hf-noisy (the join is by position; `image_id` is equal row by row):\n\n"
        "```python\n"
        "from datasets import load_dataset, concatenate_datasets\n"
        "noisy = load_dataset(\"REPO_OR_DIR\", \"hard\", split=\"train\")\n"
        "images = load_dataset(\"REPO_OR_DIR\", \"clean\", split=\"train\", columns=[\"image\"])\n"
        "ds = concatenate_datasets([images, noisy], axis=1)\n"
        "```"
    )


def _categories(metadata: dict) -> str:
    cells = [f"{i}={c['id']}:{c['name']}" for i, c in enumerate(metadata["categories"])]
    return ", ".join(cells)


def render_card(metadata: dict) -> str:
    """README.md text for a build's metadata."""
    source = metadata["source"]
    inputs = "\n".join(
        f"- `{split}`: `{s['annotations']}` sha256 `{s['sha256']}` ({s['num_images']} images, "
        f"{s['num_annotations']} annotations)"
        for split, s in source.items()
    )
    levels = "\n".join(f"- `{name}`: {_LEVEL_TEXT[name]}" for name in metadata["configs"])
    subset = (f"\n\n**Subset build:** only the first {metadata['max_images']} images of each split."
              if metadata["max_images"] else "")
    return f"""{_header(metadata)}
# COCO-N: COCO 2017 instance segmentation with benchmark label noise

Benchmark version **{metadata['benchmark_version']}** (`v1.0` = the paper's Table 7 levels with seed 1),
noise seed **{metadata['seed']}**, built with hf-noisy **{metadata['hf_noisy_version']}**
(datasets {metadata['libraries']['datasets']}, pyarrow {metadata['libraries']['pyarrow']}).{subset}

COCO-N reproduces the noisy training sets of Grad et al. (2024), *Benchmarking Label Noise in Instance
Segmentation: Spatial Noise Matters*. Noise is applied to the **train** split only; **validation is always
the clean COCO val2017 annotations** (the paper evaluates on clean labels).

## Configs

{levels}

Each annotation's noise depends only on (seed, annotation id), so a level is reproducible from the spec
below and the input files' hashes. Exact specs:

{_specs(metadata)}

## Statistics (train split)

{_stats_table(metadata)}

`emptied` counts instances whose noisy mask is empty (kept, with bbox `[0, 0, 0, 0]` and area 0).

## Loading

```python
from datasets import load_dataset
ds = load_dataset("REPO_OR_DIR", "hard")                                   # DatasetDict: train, validation
it = load_dataset("REPO_OR_DIR", "hard", split="train", streaming=True)

from hf_noisy.hub import to_masks, export_coco
masks = to_masks(ds["train"][0])          # (N, H, W) uint8 masks of the row's objects
export_coco("REPO_OR_DIR", "hard", "train", "train_hard.json")   # COCO file for detectron2 / MMDetection
```

{_storage(metadata)}

## Row schema

One row per image: `image` (Image), `image_id`, `file_name` (COCO), `width`, `height`, and `objects`, a list of
instances with `id` (COCO annotation id), `category_id` (ClassLabel), `bbox` (`[x, y, w, h]` floats),
`area`, `iscrowd`, `segmentation` (COCO compressed RLE: `size` `[h, w]`, `counts` a string; polygons were
rasterised exactly as pycocotools' `annToRLE`), and the noise provenance: `noise_op` (`none`, `dilate`,
`erode`, `opening`, `localization`, `approximation`), `noise_param` (kernel size, sigma or tolerance in
pixels, as a float; null for `none`), `class_flipped`, `original_category_id` (ClassLabel, the clean class).

**Category ids.** COCO ids are not contiguous; the ClassLabel index is the position in the annotation file's
`categories` list. `index=COCO id:name`: {_categories(metadata)}. The same table, with supercategories, is
in `hf_noisy_benchmark.json`; `export_coco` writes COCO ids back.

## Provenance

{inputs}

`hf_noisy_benchmark.json` records the benchmark version, specs and their sha256, the input hashes, the
package and library versions, the data files of every config and split, and the statistics above.

## Licence

The COCO annotations (and so these noisy derivatives) are licensed under
[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) by the COCO Consortium. The images come from Flickr
and are subject to the [Flickr terms of use](https://www.flickr.com/creativecommons/); the COCO Consortium does
not own their copyright.

## Citation

```bibtex
{CITATION}
```

and COCO: Lin et al., *Microsoft COCO: Common Objects in Context*, ECCV 2014.
"""
