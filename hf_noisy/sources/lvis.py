"""LVIS (v1 and v0.5): COCO-format annotation files over COCO 2017 images.

Files under the LVIS root: ``lvis_v1_{train,val}.json`` (preferred) or ``lvis_v0.5_{train,val}.json``.
Images are COCO 2017's, found by the basename of each image's ``coco_url`` (v1 has no ``file_name``) in
``train2017/`` or ``val2017/`` of the COCO root (LVIS v1 val uses some COCO train images). v0.5's
``file_name`` (``COCO_val2014_000000397133.jpg``) is accepted too, mapped to the 2017 name
(``000000397133.jpg``). Image entries keep LVIS's ``neg_category_ids`` and ``not_exhaustive_category_ids``,
categories their ``frequency`` and ``synset``; annotations have no ``iscrowd`` (it is 0).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from ..errors import HfNoisyError
from ..splits import canonical_split
from .base import SourceSplit, read_annotation_file, source_folder

__all__ = ["LVIS_FILES", "LVIS_LICENSE", "LVIS_CITATION", "lvis_file", "lvis_image_name", "read_lvis_split"]

#: split -> candidate annotation files under the LVIS root, newest version first
LVIS_FILES = {
    "train": ("lvis_v1_train.json", "lvis_v0.5_train.json"),
    "validation": ("lvis_v1_val.json", "lvis_v0.5_val.json"),
}
_COCO_IMAGE_DIRS = ("train2017", "val2017")
_V05_NAME = re.compile(r"^COCO_(?:train|val)2014_(\d{12}\.jpg)$")

LVIS_LICENSE = (
    "The LVIS annotations are licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/) "
    "(Gupta, Dollar and Girshick). The images are COCO 2017's, from Flickr, subject to the "
    "[Flickr terms of use](https://www.flickr.com/creativecommons/)."
)
LVIS_CITATION = """\
@inproceedings{gupta2019lvis,
  title     = {{LVIS}: A Dataset for Large Vocabulary Instance Segmentation},
  author    = {Gupta, Agrim and Doll{\\'a}r, Piotr and Girshick, Ross},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2019}
}"""


def lvis_file(lvis_root: str | os.PathLike, split: str) -> Path:
    """The split's LVIS annotation file under ``lvis_root`` (v1 preferred over v0.5); ``split`` is ``train`` or
    ``validation`` (also spelt ``val``)."""
    root = source_folder(lvis_root, "a folder with the LVIS JSON files")
    split = canonical_split(split)
    if split not in LVIS_FILES:
        raise HfNoisyError(f"unknown split {split!r} for LVIS; expected one of {', '.join(LVIS_FILES)}")
    for name in LVIS_FILES[split]:
        if (root / name).is_file():
            return root / name
    raise HfNoisyError(f"{root}: no LVIS {split} annotations (looked for {', '.join(LVIS_FILES[split])})")


def lvis_image_name(image: dict) -> str:
    """The COCO 2017 file name of an LVIS image entry (from ``coco_url``, else v0.5's ``file_name``)."""
    if image.get("coco_url"):
        return PurePosixPath(image["coco_url"]).name
    name = str(image.get("file_name", ""))
    match = _V05_NAME.match(name)
    if match:
        return match.group(1)
    if name:
        return PurePosixPath(name).name
    raise HfNoisyError(f"LVIS image {image.get('id')} has neither coco_url nor file_name")


def read_lvis_split(lvis_root: str | os.PathLike, coco_root: str | os.PathLike, split: str) -> SourceSplit:
    """An LVIS split with its images located in the COCO 2017 root; each image gets a ``file_name``."""
    split = canonical_split(split)
    path = lvis_file(lvis_root, split)
    header, annotations, sha256 = read_annotation_file(path, defaults=(("iscrowd", 0),))
    coco_root = Path(coco_root)
    images, paths = [], []
    for image in header["images"]:
        name = lvis_image_name(image)
        found = next((coco_root / d / name for d in _COCO_IMAGE_DIRS if (coco_root / d / name).is_file()), None)
        paths.append(found or coco_root / _COCO_IMAGE_DIRS[split == "validation"] / name)
        images.append(dict(image, file_name=name))
    header = dict(header, images=images)
    return SourceSplit(header, annotations, tuple(paths),
                       {"annotations": path.name, "sha256": sha256, "image_dir": "COCO 2017"}, inputs=(path,))
