"""Read a benchmark dataset (a local build folder or a Hub id): rows with images, masks, back to COCO.

``path`` is anything ``datasets.load_dataset`` accepts: a folder written by the builder
(:func:`hf_noisy.hub.build_coco_n` and friends) or a Hub id such as ``"noisy-seg/coco-n"`` (with
``revision="v1.0"``). With the default ``embedded`` image storage a plain ``load_dataset`` is all you need;
:func:`load_coco_n` also joins the images of a ``shared``-storage build back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..coco import write_coco
from ..errors import HfNoisyError
from ..fsutil import check_output
from ..masks import decode
from ..splits import canonical_split
from .build import METADATA_FILE
from .schema import IMAGE_EXTRAS, OBJECT_EXTRAS

__all__ = ["load_coco_n", "to_masks", "export_coco", "read_metadata", "rows_to_coco"]


def read_metadata(path: str | os.PathLike, *, revision: str | None = None) -> dict:
    """The build's ``hf_noisy_benchmark.json`` (from the folder, or downloaded from the Hub)."""
    local = Path(path) / METADATA_FILE
    if Path(path).is_dir():
        return json.loads(local.read_text(encoding="utf-8"))
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(str(path), METADATA_FILE, repo_type="dataset", revision=revision)).read_text("utf-8"))


def _join(images: Any, rows: Any, streaming: bool) -> Any:
    """``image`` from the clean config's rows next to a noisy config's rows (same order, checked by image_id)."""
    from datasets import concatenate_datasets

    images = images.rename_column("image_id", "_image_id")
    if not streaming:
        if list(images["_image_id"]) != list(rows["image_id"]):
            raise ValueError("the clean and noisy configs do not list the same images in the same order")
        return concatenate_datasets([images.remove_columns("_image_id"), rows], axis=1)

    def check(row: dict) -> dict:
        if row["_image_id"] != row["image_id"]:
            raise ValueError(f"image rows out of step: clean {row['_image_id']} vs noisy {row['image_id']}")
        return row

    return concatenate_datasets([images, rows], axis=1).map(check).remove_columns("_image_id")


def _user_images(rows: Any, image_root: str | os.PathLike, image_dir: str, streaming: bool) -> Any:
    """``image`` from the user's own files next to annotation-only rows: ``image_root/image_dir/file_name``."""
    from datasets import Image

    folder = Path(image_root).expanduser() / image_dir
    if not streaming:
        paths = [str(folder / name) for name in rows["file_name"]]
        missing = [path for path in paths if not os.path.isfile(path)]
        if missing:
            raise HfNoisyError(f"{len(missing)} image file(s) of this build are missing under {folder}, "
                               f"e.g. {missing[0]} (image_root must be the source root the build was made from)")
        return rows.add_column("image", paths).cast_column("image", Image())
    features = rows.features.copy()
    features["image"] = Image()
    return rows.map(lambda row: {"image": {"path": str(folder / row["file_name"]), "bytes": None}},
                    features=features).decode(True)


def load_coco_n(path: str | os.PathLike, config: str = "clean", split: str | None = None, *,
                streaming: bool = False, image_root: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """``load_dataset(path, config, split=..., streaming=...)`` whose rows always have ``image``.

    A noisy config of a ``shared``-storage build holds no image bytes; its ``image`` column is joined from the
    ``clean`` config by position (both list the same images in the same order; ``image_id`` is checked).
    An annotation-only build (``images="none"``, Cityscapes-N's default: its terms forbid redistributing the
    images) holds no image bytes at all: pass ``image_root``, your own copy of the source as given to the build
    (e.g. the Cityscapes root), and each row's ``image`` is read from ``image_root / <the split's image_dir in
    the build metadata> / file_name`` (e.g. ``leftImg8bit/train/aachen/..._leftImg8bit.png``); without
    ``image_root`` the rows come without ``image``. ``split`` may be spelt ``val`` or ``validation``.
    Extra ``kwargs`` go to ``load_dataset`` (e.g. ``revision``). Returns a ``Dataset``/``IterableDataset``
    with ``split``, else a ``DatasetDict``/``IterableDatasetDict``.
    """
    from datasets import DatasetDict, IterableDatasetDict, load_dataset

    split = None if split is None else canonical_split(split)
    rows = load_dataset(str(path), config, split=split, streaming=streaming, **kwargs)
    parts = {split: rows} if split is not None else dict(rows)
    if all("image" in part.features for part in parts.values()):
        return rows
    metadata = read_metadata(path, revision=kwargs.get("revision"))
    if metadata.get("images") == "none" and image_root is None:
        return rows
    joined = {}
    for name, part in parts.items():
        if metadata.get("images") == "none":
            split_name = name.partition("[")[0]
            joined[name] = _user_images(part, image_root, metadata["source"][split_name]["image_dir"], streaming)
            continue
        images = load_dataset(str(path), "clean", split=name, streaming=streaming, columns=["image", "image_id"], **kwargs)
        joined[name] = _join(images, part, streaming)
    if split is not None:
        return joined[split]
    return (IterableDatasetDict if streaming else DatasetDict)(joined)


def to_masks(row: dict) -> np.ndarray:
    """The row's instance masks as a ``(N, height, width)`` ``uint8`` {0, 1} array, in ``objects`` order.

    ``row`` is one COCO-N row (``objects`` a list of dicts with an RLE ``segmentation``, plus ``height`` and
    ``width``); a row without objects gives shape ``(0, height, width)``.
    """
    objects = row["objects"]
    if not objects:
        return np.zeros((0, int(row["height"]), int(row["width"])), np.uint8)
    return np.stack([decode(obj["segmentation"]) for obj in objects])


def _annotation(obj: dict, image_id: int, ids: list[int], kernel_ops: tuple[str, ...]) -> dict:
    param = obj["noise_param"]
    if param is not None and obj["noise_op"] in kernel_ops:
        param = int(param)
    extras = {name: obj[name] for name in OBJECT_EXTRAS if obj.get(name) is not None}
    return {
        "id": obj["id"],
        "image_id": image_id,
        "category_id": ids[obj["category_id"]],
        "segmentation": {"size": list(obj["segmentation"]["size"]), "counts": obj["segmentation"]["counts"]},
        "area": obj["area"],
        "bbox": list(obj["bbox"]),
        "iscrowd": obj["iscrowd"],
        "noise_op": obj["noise_op"],
        "noise_param": param,
        "class_flipped": obj["class_flipped"],
        "original_category_id": ids[obj["original_category_id"]],
        **extras,
    }


def rows_to_coco(rows: Any, categories: list[dict]) -> dict:
    """Benchmark rows (a ``Dataset``, ``IterableDataset`` or list of row dicts) as a COCO instance dict with the
    source's category ids: ``{"images", "annotations", "categories"}``. ``categories`` is the build metadata's
    list (``read_metadata(path)["categories"]``: ClassLabel index ``i`` is ``categories[i]``). Image bytes are
    never read: a dataset is narrowed to the annotation columns first. LVIS's per-image category lists come back
    as source ids when the rows carry them."""
    from ..noise.spec import KERNEL_OPS

    if hasattr(rows, "select_columns") and rows.column_names is not None:
        wanted = ["image_id", "file_name", "width", "height", *IMAGE_EXTRAS, "objects"]
        rows = rows.select_columns([name for name in wanted if name in rows.column_names])
    ids = [c["id"] for c in categories]
    images, annotations = [], []
    for row in rows:
        extras = [name for name in IMAGE_EXTRAS if name in row]
        images.append({"id": row["image_id"], "file_name": row["file_name"], "width": row["width"], "height": row["height"],
                       **{name: [ids[i] for i in row[name]] for name in extras}})
        annotations.extend(_annotation(obj, row["image_id"], ids, KERNEL_OPS) for obj in row["objects"])
    return {"images": images, "annotations": annotations, "categories": list(categories)}


def export_coco(path: str | os.PathLike, config: str, split: str, output: str | os.PathLike | None = None, *,
                overwrite: bool = False, **kwargs: Any) -> dict:
    """A config's split as a COCO instance dict (written atomically to ``output`` if given; an existing
    ``output`` only with ``overwrite``, and never a file inside the dataset folder).

    Category ids are the source ids (from ``hf_noisy_benchmark.json``; so are LVIS's ``neg_category_ids`` and
    ``not_exhaustive_category_ids``, which makes an exported LVIS-N validation split a valid LVIS ground truth
    with the categories' ``frequency``); segmentations are compressed RLE
    (detectron2: set ``INPUT.MASK_FORMAT=bitmask``; MMDetection reads RLE as is); the provenance fields stay
    on each annotation; ``info.hf_noisy`` records the benchmark version and spec hash. ``split`` may be spelt
    ``val`` or ``validation``.
    """
    if output is not None:
        check_output(output, [path], overwrite=overwrite)
    from datasets import load_dataset

    split = canonical_split(split)
    metadata = read_metadata(path, revision=kwargs.get("revision"))
    if config not in metadata["configs"] or split not in metadata["configs"][config]["splits"]:
        raise HfNoisyError(f"{path} has no config/split {config}/{split}; it has configs {', '.join(metadata['configs'])}"
                           f" with splits train, validation")
    extras = [name for name in metadata.get("row_extras", {}).get("image", []) if name in IMAGE_EXTRAS]
    rows = load_dataset(str(path), config, split=split,
                        columns=["image_id", "file_name", "width", "height", *extras, "objects"], **kwargs)
    data = rows_to_coco(rows, metadata["categories"])
    entry = metadata["configs"][config]
    data = {
        "info": {"hf_noisy": {
            "benchmark": metadata["benchmark"], "benchmark_version": metadata["benchmark_version"],
            "config": config, "split": split, "spec": entry["spec"] if split == "train" else None,
            "spec_sha256": entry["spec_sha256"] if split == "train" else None,
        }},
        **data,
    }
    if output is not None:
        write_coco(data, output, overwrite=overwrite)
    return data
