"""Noise dataset rows on the fly: a transform for ``Dataset.with_transform`` / ``Dataset.map(batched=True)``.

Each instance gets exactly what :func:`hf_noisy.noise.apply_noise` would give it for the same spec and
seed (the draws depend only on (seed, annotation id), via :class:`hf_noisy.noise.InstanceNoiser`), so noising
the ``clean`` COCO-N rows on the fly with the ``hard`` preset reproduces the ``hard`` config.

Column mapping (:class:`ColumnMap`) for your own instance-segmentation dataset: a row has an ``objects`` column
holding a list of instances (dicts) and ``height``/``width`` columns; each instance has a unique integer
``id`` (the noise seed key: give every instance in the dataset a distinct, stable id), a category (the values
of ``categories[i]["id"]``; for a ClassLabel use ``categories_from_names(names)``) and a ``segmentation``
(COCO polygons, uncompressed or compressed RLE). After the transform every instance's segmentation is
compressed RLE (``counts`` a str); ``bbox``/``area`` are updated if the instance has those keys; the
provenance keys ``noise_op``, ``noise_param`` (float or None), ``class_flipped``, ``original_category_id`` are added.
Instances that the spec drops (``empty_masks: drop``) are removed from the list. Every other column (``image``
included) passes through untouched: for an annotation-only build (Cityscapes-N's default) load the rows with
``load_coco_n(path, "clean", split=..., image_root=YOUR_SOURCE_ROOT)`` and your own images come along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import HfNoisyError
from ..masks import segmentation_to_rle

__all__ = ["ColumnMap", "NoiseTransform", "categories_from_names"]

_PROVENANCE = ("noise_op", "noise_param", "class_flipped", "original_category_id")


@dataclass(frozen=True)
class ColumnMap:
    """Where the transform finds things in a row (defaults: the COCO-N schema)."""

    objects: str = "objects"
    height: str = "height"
    width: str = "width"
    id: str = "id"
    category: str = "category_id"
    segmentation: str = "segmentation"


def categories_from_names(names: Sequence[str], supercategories: Sequence[str] | None = None) -> list[dict]:
    """Categories whose ``id`` is the ClassLabel index (for rows that store ClassLabel indices)."""
    supers = list(supercategories) if supercategories is not None else [""] * len(names)
    return [{"id": i, "name": n, "supercategory": s} for i, (n, s) in enumerate(zip(names, supers))]


class NoiseTransform:
    """``transform(batch) -> batch`` applying a :class:`~hf_noisy.noise.NoiseSpec` to each row's instances.

    ``categories`` lists the category values found in the rows (``{"id", "name", "supercategory"}``; the
    class-noise matrix follows its order). For COCO-N rows use :meth:`for_coco_n`. Works on a batch (a dict
    of column lists, as ``with_transform`` and ``map(batched=True)`` pass it); :meth:`row` noises one row.
    """

    def __init__(self, spec: Any, categories: Sequence[dict], columns: ColumnMap = ColumnMap()) -> None:
        from ..noise import InstanceNoiser

        self.columns = columns
        self._noiser = InstanceNoiser(spec, list(categories), allow_empty_masks=True)

    @classmethod
    def for_coco_n(cls, spec: Any, metadata: dict) -> "NoiseTransform":
        """For COCO-N rows (ClassLabel indices), from the build's ``hf_noisy_benchmark.json`` content."""
        cats = metadata["categories"]
        return cls(spec, categories_from_names([c["name"] for c in cats], [c["supercategory"] for c in cats]))

    def _instance(self, obj: dict, height: int, width: int) -> dict | None:
        c = self.columns
        if c.id not in obj or obj[c.id] is None:
            raise HfNoisyError(f"instance without '{c.id}': on-the-fly noise needs a unique integer id per instance")
        ann = {"id": obj[c.id], "category_id": obj[c.category], "segmentation": obj[c.segmentation],
               "iscrowd": obj.get("iscrowd", 0), "bbox": obj.get("bbox"), "area": obj.get("area")}
        noisy = self._noiser(ann, height, width)
        if noisy is None:
            return None
        out = dict(obj)
        out[c.category] = noisy["category_id"]
        out[c.segmentation] = segmentation_to_rle(noisy["segmentation"], height, width)
        for key in ("bbox", "area"):
            if key in obj:
                out[key] = noisy[key]
        out.update({key: noisy[key] for key in _PROVENANCE})
        out["noise_param"] = None if noisy["noise_param"] is None else float(noisy["noise_param"])  # as in COCO-N rows
        return out

    def row(self, row: dict) -> dict:
        """One row with its instances noised (a new dict; the input is not modified)."""
        c = self.columns
        height, width = int(row[c.height]), int(row[c.width])
        noisy = (self._instance(obj, height, width) for obj in row[c.objects])
        return {**row, c.objects: [obj for obj in noisy if obj is not None]}

    def __call__(self, batch: dict) -> dict:
        c = self.columns
        objects = [
            self.row({c.objects: objs, c.height: h, c.width: w})[c.objects]
            for objs, h, w in zip(batch[c.objects], batch[c.height], batch[c.width])
        ]
        return {**batch, c.objects: objects}
