"""Sources of the benchmarks: each reads a dataset's own layout and gives its splits as COCO dicts
(:class:`SourceSplit`: validated annotations + the image file of each image), with its licence and citation.

* :mod:`.coco`: COCO 2017 (COCO-N, COCO-WAN).
* :mod:`.lvis`: LVIS v1 / v0.5 over COCO 2017 images (LVIS-N).
"""

from .base import SourceSplit
from .coco import COCO_SPLITS, read_coco_split
from .lvis import lvis_image_name, read_lvis_split

__all__ = ["COCO_SPLITS", "SourceSplit", "lvis_image_name", "read_coco_split", "read_lvis_split"]
