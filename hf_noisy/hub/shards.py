"""Write one parquet shard of benchmark rows (run in worker processes; the bytes depend only on the task).

A shard's parquet schema carries the ``datasets`` features (``huggingface`` schema metadata), so
``load_dataset`` restores ``Image`` and ``ClassLabel`` without any loading script.

Shards are written with pyarrow's content-defined chunking (as ``datasets`` does since 4.x): data pages are cut
where the content says, not at fixed sizes, so the ``image`` column of an embedded config is stored as the
same bytes in every config (same rows, same row groups, same pages). Content-addressed storage such as the
Hub's Xet then keeps the repeated image bytes once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..masks import mask_iou
from .schema import annotation_rle, image_row, row_features

__all__ = ["ShardTask", "ShardStats", "write_shard"]

#: Rows per parquet row group: the unit that streaming reads (``datasets`` uses 100 for image data).
ROW_GROUP_ROWS = {True: 100, False: 1000}


@dataclass(frozen=True)
class ShardTask:
    """What one shard holds.

    ``images``: COCO image entries in row order; ``annotations``: for each image, its annotations (noisy or
    clean) in output order; ``clean``: for a derived (noisy) shard, ``{annotation id: clean annotation}`` to
    measure mask IoU against (``None`` for a clean shard); ``image_paths``: the image file of each row, or
    ``None`` for annotation-only rows; ``image_extras`` / ``object_extras``: optional columns
    (:mod:`hf_noisy.hub.schema`); ``clean_rles``: optionally, the RLE of each clean annotation already
    computed (annotation id -> ``(segmentation, RLE)``), used wherever that segmentation recurs (rows of the
    clean annotations, unchanged masks of noisy ones, the clean side of each IoU).
    """

    path: Path
    images: list[dict]
    annotations: list[list[dict]]
    category_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    image_paths: tuple[Path, ...] | None
    clean: dict[int, dict] | None
    image_extras: tuple[str, ...] = ()
    object_extras: tuple[str, ...] = ()
    clean_rles: Mapping[int, tuple[Any, dict]] | None = None


@dataclass(frozen=True)
class ShardStats:
    """Rows written, the summed mask IoU (derived vs clean) over the shard's instances, and the rows' size in
    memory (Arrow bytes, what ``datasets`` reports as a split's ``num_bytes``)."""

    rows: int
    instances: int
    iou_sum: float
    arrow_bytes: int


def _iou(derived: dict, clean: dict | None, height: int, width: int, known: Mapping[int, tuple[Any, dict]]) -> float:
    """Mask IoU to the clean annotation of the same id (0 without one: a file that does not keep clean ids)."""
    if clean is None:
        return 0.0
    if derived.get("noise_op", "none") == "none" and derived["segmentation"] == clean["segmentation"]:
        return 1.0
    return mask_iou(annotation_rle(derived, height, width, known), annotation_rle(clean, height, width, known))


def write_shard(task: ShardTask) -> ShardStats:
    """Write ``task.path`` (zstd parquet, content-defined chunking) and return its statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    index_of = {cid: i for i, cid in enumerate(task.category_ids)}
    known = task.clean_rles or {}
    with_image = task.image_paths is not None
    rows, iou_sum, instances = [], 0.0, 0
    for k, (image, anns) in enumerate(zip(task.images, task.annotations)):
        data = task.image_paths[k].read_bytes() if with_image else None
        rows.append(image_row(image, anns, index_of, data, image_extras=task.image_extras,
                              object_extras=task.object_extras, known_rles=known))
        instances += len(anns)
        if task.clean is not None:
            iou_sum += sum(_iou(ann, task.clean.get(ann["id"]), image["height"], image["width"], known) for ann in anns)
    features = row_features(task.category_names, with_image=with_image, image_extras=task.image_extras,
                            object_extras=task.object_extras)
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema)
    pq.write_table(table, task.path, row_group_size=ROW_GROUP_ROWS[with_image], compression="zstd",
                   use_content_defined_chunking=True)
    return ShardStats(len(rows), instances, iou_sum if task.clean is not None else float(instances), table.nbytes)
