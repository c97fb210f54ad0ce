"""Sources: public datasets turned into COCO instance dicts, plus a way to find each image's file.

A source reads a dataset in its own layout and returns a plain COCO dict (``images``, ``annotations``,
``categories``; masks as compressed RLE through :mod:`hf_noisy.masks`) that :func:`hf_noisy.coco.validate_coco`
accepts. Sources sit below the builder (``hf_noisy.hub``) and never import ``datasets``.

* :mod:`hf_noisy.sources.cityscapes`: Cityscapes ``gtFine`` instances (8 classes), from ``*_instanceIds.png``
  or, where only polygons exist, from ``*_polygons.json`` drawn by the official cityscapesScripts.
"""

from __future__ import annotations

from .cityscapes import (
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_CITATION,
    CITYSCAPES_CITIES,
    CITYSCAPES_HOMEPAGE,
    CITYSCAPES_LICENSE,
    CITYSCAPES_LICENSE_URL,
    cityscapes_frame_name,
    cityscapes_image_id,
    cityscapes_image_path,
    convert_cityscapes,
)

__all__ = [
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_CITATION",
    "CITYSCAPES_CITIES",
    "CITYSCAPES_HOMEPAGE",
    "CITYSCAPES_LICENSE",
    "CITYSCAPES_LICENSE_URL",
    "cityscapes_frame_name",
    "cityscapes_image_id",
    "cityscapes_image_path",
    "convert_cityscapes",
]
