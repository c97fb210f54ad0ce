"""COCO 2017: ``annotations/instances_{train,val}2017.json`` with images in ``train2017/`` and ``val2017/``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import HfNoisyError
from ..splits import canonical_split
from .base import SourceSplit, read_annotation_file, source_folder

__all__ = ["COCO_SPLITS", "COCO_LICENSE", "COCO_CITATION", "read_coco_split"]

#: split -> (annotation file, image folder) under a COCO 2017 root
COCO_SPLITS = {
    "train": ("annotations/instances_train2017.json", "train2017"),
    "validation": ("annotations/instances_val2017.json", "val2017"),
}

COCO_LICENSE = (
    "The COCO annotations are licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) by the COCO "
    "Consortium. The images come from Flickr and are subject to the "
    "[Flickr terms of use](https://www.flickr.com/creativecommons/); the COCO Consortium does not own their copyright."
)
COCO_CITATION = """\
@inproceedings{lin2014coco,
  title     = {Microsoft {COCO}: Common Objects in Context},
  author    = {Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and Perona, Pietro and
               Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2014}
}"""


def read_coco_split(root: str | os.PathLike, split: str, *, annotations: str | os.PathLike | None = None) -> SourceSplit:
    """A COCO 2017 split (``"train"`` or ``"validation"``, also spelt ``"val"``) of ``root``, validated, images located.

    ``annotations`` replaces the split's annotation file (e.g. a precomputed noisy train file); the images
    are still those of the split's folder.
    """
    root = source_folder(root, "a COCO 2017 root: annotations/, train2017/, val2017/")
    if canonical_split(split) not in COCO_SPLITS:
        raise HfNoisyError(f"unknown split {split!r} for COCO 2017; expected one of {', '.join(COCO_SPLITS)}")
    default_file, image_dir = COCO_SPLITS[canonical_split(split)]
    path = Path(annotations) if annotations is not None else root / default_file
    label = default_file if annotations is None else path.name
    header, rows, sha256 = read_annotation_file(path)
    paths = tuple(root / image_dir / image["file_name"] for image in header["images"])
    return SourceSplit(header, rows, paths, {"annotations": label, "sha256": sha256, "image_dir": image_dir},
                       inputs=(path,))
