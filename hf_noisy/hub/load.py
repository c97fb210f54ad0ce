"""Read a benchmark dataset (a local build folder or a Hub id): rows with images, masks, back to COCO.

``path`` is a folder written by the builder (:func:`hf_noisy.hub.build_benchmark`) or a Hub id such
as ``"noisy-seg/coco-n"`` (with ``revision="v1.0"``); :func:`resolve_dataset` is the one place that tells
which, checks the config name and fails at once, with "no such folder", for a local-looking path that does
not exist. With the default ``embedded`` image storage a plain ``load_dataset`` is all you need;
:func:`load_coco_n` also joins the images of a ``shared``-storage build back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import benchmarks
from ..coco import write_coco
from ..errors import HfNoisyError, NetworkError, network_error
from ..fsutil import check_output
from ..masks import decode
from ..paths import looks_local
from ..progress import datasets_bars
from ..splits import canonical_split
from .build import METADATA_FILE
from .schema import IMAGE_EXTRAS, OBJECT_EXTRAS

__all__ = ["ResolvedDataset", "build_folder", "load_coco_n", "locate_dataset", "resolve_dataset", "to_masks",
           "export_coco", "read_metadata", "rows_to_coco"]

def _source_hint(folder: Path, path: str | os.PathLike) -> str | None:
    """What a raw source folder is and the build command that makes a benchmark of it (the first benchmark of
    the registry whose source folder it looks like), or ``None``."""
    for name in benchmarks.ids():
        record = benchmarks.get(name)
        source = record.source_folder
        if source is not None and any((folder / mark).exists() for mark in source.marks):
            options = " ".join(f"--{option.replace('_', '-')} "
                               + (str(path) if option == source.option else option.removesuffix("_root").upper())
                               for option in record.needs)
            return f"{path} is {source.what}, not a benchmark built from it (no {METADATA_FILE}); build one " \
                   f"first: hf-noisy build {name} {options} --out {name}"
    return None


@dataclass(frozen=True)
class ResolvedDataset:
    """A benchmark dataset argument, resolved: ``path`` is what ``datasets.load_dataset`` gets (a local build
    folder or a Hub id), ``local`` says which, ``metadata`` is the build's ``hf_noisy_benchmark.json`` and
    ``revision`` the Hub revision (``None`` for a folder)."""

    path: str
    local: bool
    metadata: dict
    revision: str | None = None


def build_folder(path: str | os.PathLike) -> Path:
    """``path`` as an existing folder written by ``hf-noisy build``, or :class:`HfNoisyError` saying what it is
    instead: no such folder, a file, a raw source folder (with the build command that makes a benchmark of it),
    or a folder without ``hf_noisy_benchmark.json``. Touches only the local file system."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise HfNoisyError(f"{path}: no such folder")
    if not folder.is_dir():
        raise HfNoisyError(f"{path}: a file, not a dataset folder written by `hf-noisy build`")
    if not (folder / METADATA_FILE).is_file():
        raise HfNoisyError(_source_hint(folder, path)
                           or f"{path} is not a dataset folder written by `hf-noisy build` (no {METADATA_FILE})")
    return folder


def locate_dataset(path: str | os.PathLike) -> Path | str:
    """Where a dataset argument points, without any network access: an existing build folder (a ``Path``,
    see :func:`build_folder`) or a Hub dataset id (a ``str``, ``ORG/NAME``). A path that does not exist and looks
    local (starts with ``.``, ``~`` or a separator, has more than one ``/``, no ``ORG/`` part, or an ``ORG`` part
    that is a folder here) is :class:`HfNoisyError` "no such folder" at once, never a Hub request."""
    text = os.fspath(path)
    if Path(text).expanduser().exists() or looks_local(text):
        return build_folder(text)
    return text


def _check_hub_reachable() -> None:
    """Fail at once, in one line, when the Hub's host name does not resolve (no network), instead of after
    huggingface_hub's retries; offline mode (``HF_HUB_OFFLINE``) is left to the local cache."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError as err:
        raise NetworkError(f"cannot reach the Hugging Face Hub ({host}: {err}); check the network connection, "
                           "or set HF_HUB_OFFLINE=1 to use only the local cache") from None


def resolve_dataset(path: str | os.PathLike, config: str | None = None, split: str | None = None, *,
                    revision: str | None = None) -> ResolvedDataset:
    """The one way a benchmark dataset argument (CLI, training script, library) is resolved.

    ``path`` is a folder written by ``hf-noisy build`` or a Hub id (``ORG/NAME``, at ``revision``); see
    :func:`locate_dataset` for what counts as local (a missing local path fails at once with "no such
    folder"). The build's metadata is read (from the Hub for an id: no network is one
    :class:`~hf_noisy.errors.NetworkError` line). ``config`` and ``split``, when given, must be among the
    build's (``split`` may be spelt ``val`` or ``validation``); a wrong one is :class:`HfNoisyError` listing the
    known ones.
    """
    split = None if split is None else canonical_split(split)
    where = locate_dataset(path)
    if isinstance(where, Path):
        metadata = _read_json(where / METADATA_FILE)
        dataset = ResolvedDataset(os.fspath(where), True, metadata)
    else:
        _check_hub_reachable()
        from huggingface_hub import hf_hub_download

        try:
            file = hf_hub_download(where, METADATA_FILE, repo_type="dataset", revision=revision)
        except Exception as err:
            network = network_error(err)
            if network is not None:
                raise network from None
            raise
        metadata = _read_json(Path(file), name=f"{where}/{METADATA_FILE}")
        dataset = ResolvedDataset(where, False, metadata, revision)
    configs = dataset.metadata.get("configs")
    if not isinstance(configs, dict):
        raise HfNoisyError(f"{path}/{METADATA_FILE}: no 'configs'; rebuild the folder with `hf-noisy build`")
    if config is not None and config not in configs:
        raise HfNoisyError(f"{path} has no config {config!r}; its configs are {', '.join(configs)}")
    if split is not None and config is not None and split not in configs[config].get("splits", {}):
        raise HfNoisyError(f"{path} config {config!r} has no split {split!r}; its splits are "
                           f"{', '.join(configs[config].get('splits', {}))}")
    return dataset


def _read_json(file: Path, *, name: str | None = None) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as err:  # not JSON, or not UTF-8
        raise HfNoisyError(f"{name or file}: not valid JSON ({err}); rebuild the folder with `hf-noisy build`"
                           ) from None
    if not isinstance(data, dict):
        raise HfNoisyError(f"{name or file}: not a build's metadata (a JSON object)")
    return data


def read_metadata(path: str | os.PathLike, *, revision: str | None = None) -> dict:
    """The build's ``hf_noisy_benchmark.json`` (from the folder, or downloaded from the Hub; see
    :func:`resolve_dataset`)."""
    return resolve_dataset(path, revision=revision).metadata


def _join(images: Any, rows: Any, streaming: bool) -> Any:
    """``image`` from the clean config's rows next to a noisy config's rows (same order, checked by image_id)."""
    from datasets import concatenate_datasets

    images = images.rename_column("image_id", "_image_id")
    if not streaming:
        if list(images["_image_id"]) != list(rows["image_id"]):
            raise HfNoisyError("the clean and noisy configs do not list the same images in the same order")
        return concatenate_datasets([images.remove_columns("_image_id"), rows], axis=1)

    def check(row: dict) -> dict:
        if row["_image_id"] != row["image_id"]:
            raise HfNoisyError(f"image rows out of step: clean {row['_image_id']} vs noisy {row['image_id']}")
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
                streaming: bool = False, image_root: str | os.PathLike | None = None, progress: bool = False,
                **kwargs: Any) -> Any:
    """``load_dataset(path, config, split=..., streaming=...)`` whose rows always have ``image``.

    A noisy config of a ``shared``-storage build holds no image bytes; its ``image`` column is joined from the
    ``clean`` config by position (both list the same images in the same order; ``image_id`` is checked).
    An annotation-only build (``images="none"``, Cityscapes-N's default: its terms forbid redistributing the
    images) holds no image bytes at all: pass ``image_root``, your own copy of the source as given to the build
    (e.g. the Cityscapes root), and each row's ``image`` is read from ``image_root / <the split's image_dir in
    the build metadata> / file_name`` (e.g. ``leftImg8bit/train/aachen/..._leftImg8bit.png``); without
    ``image_root`` the rows come without ``image``. ``split`` may be spelt ``val`` or ``validation``.
    ``path`` is resolved by :func:`resolve_dataset` (a missing folder or a wrong config fails at once).
    ``progress``: the ``datasets`` library's own bars (generating splits, joining images); off by default, as
    hf-noisy's library functions are quiet unless asked (:func:`hf_noisy.progress.datasets_bars`).
    Extra ``kwargs`` go to ``load_dataset`` (e.g. ``revision``). Returns a ``Dataset``/``IterableDataset``
    with ``split``, else a ``DatasetDict``/``IterableDatasetDict``.
    """
    split = None if split is None else canonical_split(split)
    path = resolve_dataset(path, config, split, revision=kwargs.get("revision")).path  # before the heavy import
    with datasets_bars(progress):
        return _load_rows(path, config, split, streaming, image_root, kwargs)


def _load_rows(path: str, config: str, split: str | None, streaming: bool, image_root: str | os.PathLike | None,
               kwargs: dict[str, Any]) -> Any:
    """:func:`load_coco_n` once ``path`` is resolved."""
    from datasets import DatasetDict, IterableDatasetDict, load_dataset

    rows = load_dataset(path, config, split=split, streaming=streaming, **kwargs)
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
                overwrite: bool = False, progress: bool = False, **kwargs: Any) -> dict:
    """A config's split as a COCO instance dict (written atomically to ``output`` if given; an existing
    ``output`` only with ``overwrite``, and never a file inside the dataset folder).

    Category ids are the source ids (from ``hf_noisy_benchmark.json``; so are LVIS's ``neg_category_ids`` and
    ``not_exhaustive_category_ids``, which makes an exported LVIS-N validation split a valid LVIS ground truth
    with the categories' ``frequency``); segmentations are compressed RLE
    (detectron2: set ``INPUT.MASK_FORMAT=bitmask``; MMDetection reads RLE as is); the provenance fields stay
    on each annotation; ``info.hf_noisy`` records the benchmark version and spec hash. ``split`` may be spelt
    ``val`` or ``validation``. ``progress``: the ``datasets`` library's own bars while it reads the split (off
    by default: :func:`hf_noisy.progress.datasets_bars`).
    """
    if output is not None:
        check_output(output, [path], overwrite=overwrite)
    split = canonical_split(split)
    dataset = resolve_dataset(path, config, split, revision=kwargs.get("revision"))  # before the heavy import
    metadata, path = dataset.metadata, dataset.path
    from datasets import load_dataset

    extras = [name for name in metadata.get("row_extras", {}).get("image", []) if name in IMAGE_EXTRAS]
    with datasets_bars(progress):
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
