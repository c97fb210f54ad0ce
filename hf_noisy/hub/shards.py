"""Write one parquet shard of COCO-N rows (run in worker processes; the bytes depend only on the task).

A shard's parquet schema carries the ``datasets`` features (``huggingface`` schema metadata), so
``load_dataset`` restores ``Image`` and ``ClassLabel`` without any loading script.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from ..masks import mask_iou, segmentation_to_rle
from .schema import coco_n_features, image_row

__all__ = ["ShardTask", "ShardStats", "write_shard"]

#: Rows per parquet row group: the unit that streaming reads (``datasets`` uses 100 for image data).
ROW_GROUP_ROWS = {True: 100, False: 1000}


@dataclass(frozen=True)
class ShardTask:
    """What one shard holds.

    ``images``: COCO image entries in row order; ``annotations``: for each image, its annotations (noisy or
    clean) in output order; ``clean``: for a noisy shard, ``{annotation id: clean annotation}`` to measure
    mask IoU against (``None`` for a clean shard); ``image_dir``: where the image files are, or ``None`` for
    annotation-only rows.
    """

    path: Path
    images: list[dict]
    annotations: list[list[dict]]
    category_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    image_dir: Path | None
    clean: dict[int, dict] | None


@dataclass(frozen=True)
class ShardStats:
    """Rows written and the summed mask IoU (noisy vs clean) over the shard's instances."""

    rows: int
    instances: int
    iou_sum: float


def _iou(noisy: dict, clean: dict, height: int, width: int) -> float:
    if noisy.get("noise_op", "none") == "none":
        return 1.0
    a = segmentation_to_rle(noisy["segmentation"], height, width)
    b = segmentation_to_rle(clean["segmentation"], height, width)
    return mask_iou(a, b)


def write_shard(task: ShardTask) -> ShardStats:
    """Write ``task.path`` (zstd parquet) and return its statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    index_of = {cid: i for i, cid in enumerate(task.category_ids)}
    with_image = task.image_dir is not None
    rows, iou_sum, instances = [], 0.0, 0
    for image, anns in zip(task.images, task.annotations):
        data = (task.image_dir / image["file_name"]).read_bytes() if with_image else None
        rows.append(image_row(image, anns, index_of, data))
        instances += len(anns)
        if task.clean is not None:
            iou_sum += sum(_iou(ann, task.clean[ann["id"]], image["height"], image["width"]) for ann in anns)
    schema = coco_n_features(task.category_names, with_image=with_image).arrow_schema
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, task.path, row_group_size=ROW_GROUP_ROWS[with_image], compression="zstd")
    return ShardStats(len(rows), instances, iou_sum if task.clean is not None else float(instances))
