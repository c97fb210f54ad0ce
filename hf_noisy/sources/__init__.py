"""Sources of the benchmarks: each reads a dataset's own layout and gives its splits as COCO dicts
(:class:`SourceSplit`: validated annotations + the image file of each image), with its licence and citation.
Sources sit below the builder (``hf_noisy.hub``) and never import ``datasets``.

* :mod:`.coco`: COCO 2017 (COCO-N, COCO-WAN).
* :mod:`.lvis`: LVIS v1 / v0.5 over COCO 2017 images (LVIS-N).
* :mod:`.cityscapes`: Cityscapes ``gtFine`` instances (8 classes) converted from ``*_instanceIds.png`` or, where
  only polygons exist, from ``*_polygons.json`` drawn by the official cityscapesScripts (Cityscapes-N).
* :mod:`.images`: each image file checked against its entry (pixel size; a full decode) before a build stores it.
"""

from .base import SourceSplit
from .cityscapes import (
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_SPLITS,
    cityscapes_frame_name,
    cityscapes_image_id,
    cityscapes_image_path,
    convert_cityscapes,
    read_cityscapes_split,
)
from .coco import COCO_SPLITS, read_coco_split
from .lvis import lvis_image_name, read_lvis_split

__all__ = [
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_SPLITS",
    "COCO_SPLITS",
    "SourceSplit",
    "cityscapes_frame_name",
    "cityscapes_image_id",
    "cityscapes_image_path",
    "convert_cityscapes",
    "lvis_image_name",
    "read_cityscapes_split",
    "read_coco_split",
    "read_lvis_split",
]
