"""The COCO-N row schema: one row per image, its instances in ``objects``.

Conventions (recorded in the dataset card):

* ``category_id`` and ``original_category_id`` are :class:`datasets.ClassLabel` indices: index ``i`` is the
  ``i``-th entry of the source file's ``categories`` list (COCO ids are not contiguous: person=1 is index 0,
  toothbrush=90 is index 79). :class:`CategoryMap` converts both ways; the COCO ids are stored in the
  dataset's ``hf_noisy_benchmark.json`` and in the card.
* ``segmentation`` is always compressed RLE ``{"size": [height, width], "counts": str}``; polygons are
  rasterised with :func:`hf_noisy.masks.segmentation_to_rle` (exactly as ``COCO.annToRLE``).
* ``bbox`` is ``[x, y, w, h]`` floats and ``area`` a float, both as in the (noisy) COCO annotation.
* ``noise_param`` is a float (kernel size, sigma or tolerance in pixels) or null for ``noise_op == "none"``.
* ``image`` holds the source file's bytes unchanged (no re-encoding) and its COCO ``file_name`` as path.
* Optional columns a benchmark may add (:data:`IMAGE_EXTRAS`, :data:`OBJECT_EXTRAS`): LVIS's per-image
  ``neg_category_ids`` / ``not_exhaustive_category_ids`` (lists of ClassLabel indices), COCO-WAN's per-instance
  ``sam_prompt`` (the SAM prompt in pixels: ``[x0, y0, x1, y1]`` box or ``[x, y]`` point) and ``sam_iou``
  (SAM's predicted IoU); null where an instance has none (e.g. in ``clean``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..errors import HfNoisyError
from ..masks import segmentation_to_rle

__all__ = ["IMAGE_EXTRAS", "OBJECT_EXTRAS", "CategoryMap", "annotation_rle", "row_features", "image_row"]

#: optional per-image columns: name -> kind ("labels": a list of category ids stored as ClassLabel indices)
IMAGE_EXTRAS = {"neg_category_ids": "labels", "not_exhaustive_category_ids": "labels"}
#: optional per-instance fields: name -> kind ("floats": a list of float64, "float": one float64)
OBJECT_EXTRAS = {"sam_prompt": "floats", "sam_iou": "float"}
#: category fields kept besides id, name, supercategory when the source has them (LVIS)
_CATEGORY_EXTRAS = ("frequency", "synset")


@dataclass(frozen=True)
class CategoryMap:
    """COCO category ids <-> ClassLabel indices (index = position in ``categories``)."""

    categories: tuple[dict, ...]

    @classmethod
    def of(cls, categories: Sequence[dict]) -> "CategoryMap":
        names = [c["name"] for c in categories]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise HfNoisyError(f"category names must be unique to become ClassLabel names; repeated: {duplicates}")
        return cls(tuple(
            {"id": c["id"], "name": c["name"], "supercategory": c.get("supercategory", ""),
             **{key: c[key] for key in _CATEGORY_EXTRAS if key in c}}
            for c in categories
        ))

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.categories]

    @property
    def ids(self) -> list[int]:
        return [c["id"] for c in self.categories]


def row_features(category_names: Sequence[str], *, with_image: bool, image_extras: Sequence[str] = (),
                 object_extras: Sequence[str] = ()) -> "datasets.Features":  # noqa: F821
    """The row features; ``with_image=False`` gives annotation-only rows; extras are names from
    :data:`IMAGE_EXTRAS` / :data:`OBJECT_EXTRAS`."""
    from datasets import ClassLabel, Features, Image, List, Value

    label = ClassLabel(names=list(category_names))
    kinds = {"labels": List(label), "floats": List(Value("float64")), "float": Value("float64")}
    objects = List(
        {
            "id": Value("int64"),
            "category_id": label,
            "bbox": List(Value("float64")),
            "area": Value("float64"),
            "iscrowd": Value("int8"),
            "segmentation": {"size": List(Value("int32")), "counts": Value("string")},
            "noise_op": Value("string"),
            "noise_param": Value("float64"),
            "class_flipped": Value("bool"),
            "original_category_id": label,
            **{name: kinds[OBJECT_EXTRAS[name]] for name in object_extras},
        }
    )
    columns: dict[str, Any] = {"image": Image()} if with_image else {}
    columns.update(image_id=Value("int64"), file_name=Value("string"), width=Value("int32"), height=Value("int32"))
    columns.update({name: kinds[IMAGE_EXTRAS[name]] for name in image_extras})
    columns["objects"] = objects
    return Features(columns)


def annotation_rle(ann: dict, height: int, width: int, known: Mapping[int, tuple[Any, dict]]) -> dict:
    """The annotation's mask as compressed RLE (:func:`~hf_noisy.masks.segmentation_to_rle`), taken from
    ``known`` (annotation id -> ``(segmentation, its RLE)``) where that holds the same segmentation."""
    found = known.get(ann["id"])
    if found is not None and found[0] == ann["segmentation"]:
        return found[1]
    return segmentation_to_rle(ann["segmentation"], height, width)


def _object(ann: dict, height: int, width: int, index_of: dict[int, int], extras: Sequence[str],
            known: Mapping[int, tuple[Any, dict]]) -> dict:
    param = ann.get("noise_param")
    return {
        "id": ann["id"],
        "category_id": index_of[ann["category_id"]],
        "bbox": [float(v) for v in ann["bbox"]],
        "area": float(ann["area"]),
        "iscrowd": int(ann.get("iscrowd", 0)),
        "segmentation": annotation_rle(ann, height, width, known),
        "noise_op": ann.get("noise_op", "none"),
        "noise_param": None if param is None else float(param),
        "class_flipped": bool(ann.get("class_flipped", False)),
        "original_category_id": index_of[ann.get("original_category_id", ann["category_id"])],
        **{name: ann.get(name) for name in extras},
    }


def _labels(image: dict, name: str, index_of: dict[int, int]) -> list[int]:
    unknown = [cid for cid in image.get(name, ()) if cid not in index_of]
    if unknown:
        raise HfNoisyError(f"image {image['id']}: {name} lists unknown category id(s) {unknown[:5]}")
    return [index_of[cid] for cid in image.get(name, ())]


def image_row(image: dict, annotations: Iterable[dict], index_of: dict[int, int], image_bytes: bytes | None = None,
              *, image_extras: Sequence[str] = (), object_extras: Sequence[str] = (),
              known_rles: Mapping[int, tuple[Any, dict]] | None = None) -> dict:
    """One row from a COCO image entry and its (clean or noisy) annotations, in the given order.

    Clean annotations (no provenance fields) get ``noise_op="none"``, ``class_flipped=False`` and
    ``original_category_id = category_id``. With ``image_bytes`` the row has an ``image`` column.
    ``image_extras`` / ``object_extras`` name the optional columns the rows carry (see the module docstring).
    ``known_rles``: annotation id -> ``(segmentation, its RLE)`` already computed, used for an annotation whose
    segmentation equals it (the same row either way, without rasterising a mask twice).
    """
    height, width = int(image["height"]), int(image["width"])
    row: dict[str, Any] = {} if image_bytes is None else {"image": {"bytes": image_bytes, "path": image["file_name"]}}
    row.update(image_id=image["id"], file_name=image["file_name"], width=width, height=height)
    row.update({name: _labels(image, name, index_of) for name in image_extras})
    known = known_rles or {}
    row["objects"] = [_object(ann, height, width, index_of, object_extras, known) for ann in annotations]
    return row
