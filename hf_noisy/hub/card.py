"""The dataset card (README.md) of any benchmark: YAML header with ``configs:``, then what a user needs to know.

Rendered only from the build metadata (``hf_noisy_benchmark.json``) and the benchmark's fixed texts
(:class:`BenchmarkInfo`), so the card and the metadata can never disagree, and the same build gives the same card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import yaml

from ..metrics import DEFAULT_DILATION_RATIO

__all__ = ["BenchmarkInfo", "render_card", "CITATION"]

CITATION = """\
@article{grad2024benchmarking,
  title   = {Benchmarking Label Noise in Instance Segmentation: Spatial Noise Matters},
  author  = {Grad, Eden and Kimhi, Moshe and Halika, Lion and Baskin, Chaim},
  journal = {arXiv preprint arXiv:2406.10891},
  year    = {2024}
}"""


@dataclass(frozen=True)
class BenchmarkInfo:
    """What a benchmark's card says besides the build's own numbers.

    Attributes:
        name: the id used by the CLI and the Hub repo (``"coco-n"``).
        title: short name (``"COCO-N"``); ``pretty_name``: the card's title line.
        about: one paragraph: what the benchmark is and where it comes from in the paper.
        source_name: the source dataset (``"COCO 2017"``); ``source_url``: where users obtain it.
        license_tag: the Hub licence tag of the derived annotations (``"cc-by-4.0"``, ``"other"``).
        license_text: the source's licence and terms (markdown).
        source_citation: BibTeX of the source dataset (empty: nothing to cite, e.g. generated data).
        tags: extra Hub tags.
        image_extras / object_extras: optional row columns (see :mod:`hf_noisy.hub.schema`).
        config_text: config name -> description, for configs whose rule has no noise spec to describe.
        images_redistributable: whether the source's terms let anyone redistribute its images (COCO's and
            LVIS's Flickr images carry their own Creative Commons licences; Cityscapes forbids redistribution).
            ``hf-noisy push`` refuses a folder with image bytes from a source that forbids it unless told the
            uploader holds the rights.
        obtain_text: the card's paragraph on where the data comes from (default: users must obtain the source
            themselves from ``source_url`` and accept its terms).
    """

    name: str
    title: str
    pretty_name: str
    about: str
    source_name: str
    source_url: str
    license_tag: str
    license_text: str
    source_citation: str
    tags: tuple[str, ...] = ()
    image_extras: tuple[str, ...] = ()
    object_extras: tuple[str, ...] = ()
    config_text: Mapping[str, str] = field(default_factory=dict)
    images_redistributable: bool = True
    obtain_text: str | None = None


_OP_TEXT = {
    "scale": "scale (random dilate or erode, k={kernel})",
    "dilate": "dilate (k={kernel})",
    "erode": "erode (k={kernel})",
    "opening": "opening (k={kernel})",
    "localization": "localization (Gaussian vertex shift, sigma={sigma} px)",
    "approximation": "approximation (polygon simplification, tolerance {tolerance} px)",
    "missing": "missing (the annotation is dropped)",
    "duplicate": "duplicate (a copy shifted by up to {max_offset} of its box)",
    "merge": "merge (united with the nearest same-class neighbour)",
    "split": "split (cut in two across its principal axis)",
    "box": "box (the mask becomes its box)",
    "shift": "shift (moved by up to {max_offset} of its box)",
    "vertex_dropout": "vertex dropout ({fraction} of the polygon vertices dropped)",
    "crowd_flip": "crowd flip (iscrowd flipped)",
}


def describe_spec(spec: dict) -> str:
    """One line for a noise spec (as ``NoiseSpec.to_dict()`` gives it)."""
    parts = []
    noise = spec.get("class_noise")
    if noise:
        kind = noise["kind"]
        parts.append(f"{noise['rate']:.0%} {kind} class noise" if kind != "matrix" else "class noise from a matrix")
    ops = spec.get("spatial") or []
    if ops:
        probs = {op["prob"] for op in ops}
        texts = ", ".join(_OP_TEXT[op["op"]].format(**op) + ("" if len(probs) == 1 else f" p={op['prob']}") for op in ops)
        tail = f", each with p={next(iter(probs))}" if len(probs) == 1 else ""
        parts.append(f"each instance gets one of: {texts}{tail}, else unchanged")
    return "; ".join(parts) or "no noise"


def _header(metadata: dict, info: BenchmarkInfo) -> str:
    configs = []
    for i, (name, config) in enumerate(metadata["configs"].items()):
        entry: dict = {"config_name": name}
        if i == 0:
            entry["default"] = True
        entry["data_files"] = [
            {"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in config["splits"]
        ]
        configs.append(entry)
    # Rows and parquet bytes per config: `datasets` keys its cache of a local folder on this card (not on the data
    # files' contents or times), so without them a rebuilt folder, or another build in a folder of the same name,
    # would load the stale cached rows.
    dataset_info = [
        {"config_name": name,
         "splits": [{"name": split, "num_bytes": s["num_bytes"], "num_examples": s["num_rows"]}
                    for split, s in config["splits"].items()],
         "download_size": sum(s["parquet_bytes"] for s in config["splits"].values()),
         "dataset_size": sum(s["num_bytes"] for s in config["splits"].values())}
        for name, config in metadata["configs"].items()
    ]
    header = {
        "license": info.license_tag,
        "pretty_name": info.pretty_name,
        "task_categories": ["image-segmentation", "object-detection"],
        "tags": ["instance-segmentation", "label-noise", *info.tags, "hf-noisy"],
        "configs": configs,
        "dataset_info": dataset_info,
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def _config_line(name: str, config: dict, info: BenchmarkInfo) -> str:
    if config["rule"] == "clean":
        text = f"the original {info.source_name} annotations (no noise)"
    elif config["rule"] == "noise":
        text = describe_spec(config["spec"])
    else:
        made = config.get("file") or {}
        text = info.config_text.get(name, "annotations from a precomputed file")
        text += f" (file `{made.get('name')}`, sha256 `{made.get('sha256')}`)"
    return f"- `{name}`: {text}"


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


def _quality_table(metadata: dict) -> str:
    rows = [(name, c["quality"]["all"]) for name, c in metadata["configs"].items() if c.get("quality")]
    if not rows:
        return ""
    lines = [
        "## Annotation quality (train split, scored against the clean annotations)",
        "",
        "The derived annotations as detections (score 1) against the clean ones (`hf-noisy quality`): mask AP, "
        f"Boundary AP (dilation ratio {DEFAULT_DILATION_RATIO:g}), and the mean IoUs of each instance with its clean "
        "mask.",
        "",
        "| config | mask AP | Boundary AP | mean mask IoU | mean boundary IoU |",
        "|---|---|---|---|---|",
    ]
    for name, q in rows:
        cells = [q["mask_AP"], q["boundary_AP"], q["mean_mask_iou"], q["mean_boundary_iou"]]
        lines.append(f"| {name} | " + " | ".join("n/a" if v is None else f"{v:.4f}" for v in cells) + " |")
    return "\n".join(lines) + "\n\n"


def _specs(metadata: dict) -> str:
    blocks = []
    for name, config in metadata["configs"].items():
        if config["spec"] is None:
            continue
        blocks.append(f"**{name}** (spec sha256 `{config['spec_sha256']}`):\n\n```yaml\n"
                      + yaml.safe_dump(config["spec"], sort_keys=False) + "```")
    return ("Exact specs:\n\n" + "\n\n".join(blocks)) if blocks else ""


#: image mode -> the card's one-line statement of what the folder holds
_MODE_TEXT = {
    "embedded": "**embedded images**: every config carries the {source} image bytes",
    "shared": "**embedded images, stored once**: the `clean` config carries the {source} image bytes, the other "
              "configs refer to them",
    "none": "**annotation-only**: no config holds image bytes; join your own copy of the {source} images",
}


def _mode(metadata: dict, info: BenchmarkInfo) -> str:
    """Which mode the folder is in, and what that means for publishing it under the source's terms."""
    text = "**Mode:** " + _MODE_TEXT[metadata["images"]].format(source=info.source_name) + "."
    if metadata["images"] != "none" and not metadata.get("images_redistributable", info.images_redistributable):
        text += (f" {info.source_name}'s terms do not allow redistributing its images: keep this folder private to "
                 "people who accepted them (`hf-noisy push` refuses it without `--i-have-redistribution-rights`); "
                 "build with `--image-storage none` to publish the annotations.")
    return text


def _storage(metadata: dict) -> str:
    if metadata["images"] == "none":
        return (
            "**Image storage: `none` (annotation-only).** The rows hold `file_name`, `width`, `height` and the "
            "annotations, no image bytes. Join your own copy of the images (the source root the build was made "
            "from; each split's image folder is in `hf_noisy_benchmark.json`):\n\n"
            "```python\n"
            "from hf_noisy.hub import load_coco_n\n"
            "ds = load_coco_n(\"REPO_OR_DIR\", \"hard\", split=\"train\", image_root=\"/data/source\")   # rows with image\n"
            "```"
        )
    if metadata["images"] == "embedded":
        return (
            "**Image storage: `embedded`.** Every config carries the image bytes (the original files, not "
            "re-encoded), so each config is self-contained. The shards are written with content-defined chunking "
            "and the `image` column is laid out identically in every config, so the Hub's Xet storage keeps the "
            "repeated image bytes once. Already have the images? Read the annotations only:\n\n"
            "```python\n"
            "cols = [\"image_id\", \"file_name\", \"width\", \"height\", \"objects\"]\n"
            "ds = load_dataset(\"REPO_OR_DIR\", \"hard\", split=\"train\", columns=cols)        # no image bytes read\n"
            "it = load_dataset(\"REPO_OR_DIR\", \"hard\", split=\"train\", streaming=True, columns=cols)\n"
            "```"
        )
    return (
        "**Image storage: `shared`.** The image bytes are stored once, in the `clean` config; the other configs "
        "hold annotation rows only, in exactly the same row order and sharding as `clean`. Parquet-only configs "
        "cannot reference another config's column, so **`load_dataset(repo, \"hard\")` alone gives rows without "
        "`image`**. Join it back with one call:\n\n"
        "```python\n"
        "from hf_noisy.hub import load_coco_n\n"
        "ds = load_coco_n(\"REPO_OR_DIR\", \"hard\", split=\"train\")                  # rows with image\n"
        "it = load_coco_n(\"REPO_OR_DIR\", \"hard\", split=\"train\", streaming=True)  # also streams\n"
        "```"
    )


def _extras(info: BenchmarkInfo) -> str:
    text = []
    if info.image_extras:
        text.append("Per image also " + ", ".join(f"`{n}`" for n in info.image_extras)
                    + " (lists of ClassLabel indices, as in the source's image entries).")
    if info.object_extras:
        text.append("Per instance also " + ", ".join(f"`{n}`" for n in info.object_extras)
                    + " (`sam_prompt`: the SAM prompt in pixels, `[x0, y0, x1, y1]` box or `[x, y]` point; "
                    "`sam_iou`: SAM's predicted IoU of the kept mask; null in `clean`).")
    return (" " + " ".join(text)) if text else ""


def _categories(metadata: dict) -> str:
    cells = [f"{i}={c['id']}:{c['name']}" for i, c in enumerate(metadata["categories"])]
    if len(cells) > 100:
        return ", ".join(cells[:20]) + f", ... ({len(cells)} categories; all in `hf_noisy_benchmark.json`)"
    return ", ".join(cells)


def _obtain(info: BenchmarkInfo) -> str:
    if info.obtain_text is not None:
        return info.obtain_text
    return (f"**You must obtain {info.source_name} yourself** from [{info.source_url}]({info.source_url}) and "
            "accept its\nterms before using this dataset; see the licence below.")


def _subset(metadata: dict, info: BenchmarkInfo) -> str:
    """The card's line on a build from part of its source (``source_subset``, ``max_images``)."""
    counts = metadata.get("source_subset")
    line = "**Subset build:** "
    if counts:
        line += " and ".join(f"{n['images']:,} of the {n['of']:,} {split} images" for split, n in counts.items())
        line += f" of {info.source_name}"
        if metadata.get("max_images"):
            line += f" (the first {metadata['max_images']} of each split, `--max-images`)"
        return line + "; the official benchmark version is built from the whole source."
    return line + f"only the first {metadata['max_images']} images of each split."


def render_card(metadata: dict, info: BenchmarkInfo) -> str:
    """README.md text for a build's metadata."""
    inputs = "\n".join(
        f"- `{split}`: `{s.get('annotations')}` sha256 `{s.get('sha256')}` ({s['num_images']} images, "
        f"{s['num_annotations']} annotations)"
        for split, s in metadata["source"].items()
    )
    configs = "\n".join(_config_line(name, c, info) for name, c in metadata["configs"].items())
    subset = f"\n\n{_subset(metadata, info)}" if metadata.get("source_subset") or metadata.get("max_images") else ""
    seed = f"noise seed **{metadata['seed']}**, " if "seed" in metadata else ""
    return f"""{_header(metadata, info)}
# {info.pretty_name}

Benchmark version **{metadata['benchmark_version']}**, {seed}built with hf-noisy **{metadata['hf_noisy_version']}**
(datasets {metadata['libraries']['datasets']}, pyarrow {metadata['libraries']['pyarrow']}).{subset}

{info.about}

Derived annotations are on the **train** split only; **validation is always the clean {info.source_name}
validation annotations** (the paper evaluates on clean labels).

{_obtain(info)}

{_mode(metadata, info)}

## Configs

{configs}

{_specs(metadata)}

## Statistics (train split)

{_stats_table(metadata)}

`emptied` counts instances whose derived mask is empty (kept with bbox `[0, 0, 0, 0]` and area 0, or dropped).

{_quality_table(metadata)}## Loading

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

One row per image: `image` (Image), `image_id`, `file_name`, `width`, `height`, and `objects`, a list of
instances with `id` (source annotation id), `category_id` (ClassLabel), `bbox` (`[x, y, w, h]` floats),
`area`, `iscrowd`, `segmentation` (COCO compressed RLE: `size` `[h, w]`, `counts` a string; polygons were
rasterised exactly as pycocotools' `annToRLE`), and the provenance: `noise_op` (`none`, `dilate`, `erode`,
`opening`, `localization`, `approximation`, `sam_box`, `sam_point`), `noise_param` (kernel size, sigma or
tolerance in pixels, as a float; null otherwise), `class_flipped`, `original_category_id` (ClassLabel, the
clean class).{_extras(info)}

**Category ids.** The ClassLabel index is the position in the source file's `categories` list (source ids need
not be contiguous). `index=source id:name`: {_categories(metadata)}. The same table is in
`hf_noisy_benchmark.json`; `export_coco` writes source ids back.

## Provenance

{inputs}

`hf_noisy_benchmark.json` records the benchmark version, each config's rule (spec and sha256, or source file
and sha256), the input hashes, the package and library versions, the data files of every config and split,
and the statistics above.

## Licence

{info.license_text}

## Citation

```bibtex
{CITATION}
```
{_source_citation(info)}"""


def _source_citation(info: BenchmarkInfo) -> str:
    if not info.source_citation:
        return ""
    return f"\nand {info.source_name}:\n\n```bibtex\n{info.source_citation}\n```\n"
