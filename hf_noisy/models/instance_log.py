"""``--log-instance-losses``: per-instance training losses with each instance's noise provenance, as parquet.

Layout: ``OUTPUT_DIR/instance_losses/rank-<R>/steps-<first>-<last>.parquet``, one folder per rank (each rank
writes only its own rows, so ranks never write the same file). Rows are buffered in memory and written,
atomically, just before each checkpoint and at the end, so the files on disk always cover whole steps up to
(at least) the latest checkpoint. ``--resume`` from step ``S`` first drops this rank's rows of steps ``> S``
(they belong to the abandoned continuation), then appends: a resumed run's rows equal an uninterrupted run's.

One row per Hungarian-matched ground-truth instance of a recorded step (see :data:`SCHEMA`); the losses are
those of :meth:`hf_noisy.models.losses.NoisyLabelLoss.instance_losses` (last decoder layer). Provenance columns come from the
training row's object (``noise_op``, ``noise_param``, ``class_flipped``; ``sam_prompt`` on COCO-WAN) and are
null where the dataset has no such field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["PROVENANCE", "SCHEMA", "InstanceLossLog", "provenance_of"]

#: Columns of every instance-loss file. ``category_id``: the training label as a ClassLabel index (the noisy
#: label when the class was flipped); losses are float64 copies of float32 values.
SCHEMA = pa.schema([
    ("rank", pa.int32()), ("step", pa.int64()), ("epoch", pa.int64()), ("micro_batch", pa.int32()),
    ("image_id", pa.int64()), ("annotation_id", pa.int64()), ("query", pa.int32()), ("category_id", pa.int32()),
    ("class_loss", pa.float64()), ("mask_bce", pa.float64()), ("mask_dice", pa.float64()),
    ("noise_op", pa.string()), ("noise_param", pa.float64()), ("class_flipped", pa.bool_()),
    ("sam_prompt", pa.list_(pa.float64())),
])
PROVENANCE = ("noise_op", "noise_param", "class_flipped", "sam_prompt")


def provenance_of(rows: Any) -> dict[int, dict]:
    """Annotation id -> its provenance fields (missing fields: ``None``) for every object of ``rows``."""
    table: dict[int, dict] = {}
    for objects in rows.select_columns(["objects"])["objects"]:
        for obj in objects:
            table[int(obj["id"])] = {key: obj.get(key) for key in PROVENANCE}
    return table


class InstanceLossLog:
    """One rank's instance-loss writer (see the module docstring)."""

    def __init__(self, output_dir: Path, rank: int, provenance: dict[int, dict]) -> None:
        self.folder = Path(output_dir) / "instance_losses" / f"rank-{rank:03d}"
        self.rank, self.provenance = rank, provenance
        self.rows: list[dict] = []

    @classmethod
    def resume(cls, output_dir: Path, rank: int, rows: Any, step: int) -> "InstanceLossLog":
        """A writer for a run at ``step`` (0: a fresh run) on training ``rows``: this rank's rows of later steps,
        from an abandoned continuation, are removed from disk first."""
        log = cls(output_dir, rank, provenance_of(rows))
        log.drop_after(step)
        return log

    def add(self, *, step: int, epoch: int, micro_batch: int, batch: dict, instances: list[dict]) -> int:
        """Buffer the rows of one micro-batch (``instances``: the criterion's ``last_instances``); returns
        how many rows were added."""
        added = 0
        for image_id, ids, labels, found in zip(batch["image_ids"], batch["annotation_ids"], batch["class_labels"],
                                                instances):
            for k in range(len(found["target"])):
                target = int(found["target"][k])
                annotation_id = int(ids[target])
                origin = self.provenance.get(annotation_id, {})
                prompt = origin.get("sam_prompt")
                self.rows.append({
                    "rank": self.rank, "step": step, "epoch": epoch, "micro_batch": micro_batch,
                    "image_id": int(image_id), "annotation_id": annotation_id, "query": int(found["query"][k]),
                    "category_id": int(labels[target]), "class_loss": float(found["class_loss"][k]),
                    "mask_bce": float(found["mask_bce"][k]), "mask_dice": float(found["mask_dice"][k]),
                    "noise_op": origin.get("noise_op"), "noise_param": origin.get("noise_param"),
                    "class_flipped": origin.get("class_flipped"),
                    "sam_prompt": None if prompt is None else [float(v) for v in prompt],
                })
                added += 1
        return added

    def flush(self) -> Path | None:
        """Write the buffered rows as one parquet file (atomically); ``None`` when there were none."""
        if not self.rows:
            return None
        table = pa.Table.from_pylist(self.rows, schema=SCHEMA)
        path = self.folder / f"steps-{self.rows[0]['step']:09d}-{self.rows[-1]['step']:09d}.parquet"
        _write(table, path)
        self.rows = []
        return path

    def drop_after(self, step: int) -> None:
        """Remove this rank's rows of steps ``> step`` from disk (resume from the checkpoint of ``step``)."""
        for path in sorted(self.folder.glob("steps-*.parquet")):
            first, last = (int(part) for part in path.stem.split("-")[1:3])
            if first > step:
                path.unlink()
            elif last > step:
                table = pq.read_table(path)
                kept = table.filter(pc.less_equal(table["step"], step))
                _write(kept, self.folder / f"steps-{first:09d}-{step:09d}.parquet")
                path.unlink()


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    os.replace(partial, path)
