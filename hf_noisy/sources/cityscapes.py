"""Cityscapes ``gtFine`` instances as a COCO instance dict.

Layout read (the official one; ``<frame>`` is ``<city>_<sequence>_<frame number>``, e.g.
``frankfurt_000000_000294``)::

    <root>/leftImg8bit/<split>/<city>/<frame>_leftImg8bit.png         the images (one frame each)
    <root>/gtFine/<split>/<city>/<frame>_gtFine_instanceIds.png       instance ids (preferred)
    <root>/gtFine/<split>/<city>/<frame>_gtFine_polygons.json         polygons (used when there is no png)

**Instances.** ``*_gtFine_instanceIds.png`` holds, per pixel, ``classId * 1000 + k`` for instance ``k`` of an
instance class and ``classId`` for a region of that class whose instances the annotators could not separate (a
"group", e.g. ``cargroup``). Each such value of one of the 8 evaluated instance classes
(:data:`CITYSCAPES_CATEGORIES`) becomes one annotation whose mask is exactly ``instanceIds == value``: an
instance (``iscrowd: 0``) or a group region (``iscrowd: 1``, an ignore region in COCO evaluation). Every other
value (stuff classes, ``caravan`` and ``trailer``, which Cityscapes does not evaluate) is ignored. A frame with
only ``*_gtFine_polygons.json`` gets its instance image from cityscapesScripts' own ``createInstanceImage``
(drawn in memory, in file order, so later objects occlude earlier ones, exactly as the released pngs were made).

**Ids.** ``image_id`` is computed from the frame name alone (:func:`cityscapes_image_id`): in decimal it reads
``CC SSSSSS FFFFFF`` (city code, sequence, frame number), so it is the same in every run and whatever other frames
are present. An annotation's id is ``image_id * 100000 + value`` with ``value`` its pixel value in
``instanceIds`` (``11000000000294_26001`` is car 1 of ``frankfurt_000000_000294``). Both fit in int64.

**Masks.** Compressed RLE (``counts`` a str), ``bbox`` ``[x, y, w, h]`` floats and ``area`` (pixel count) from the
mask, through :mod:`hf_noisy.masks`. Images are sorted by frame name, annotations by value within an image, so
the output is the same for the same input.

Pillow and cityscapesScripts (the ``cityscapes`` extra) are imported only when a frame is converted.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..coco import dumps_coco
from ..errors import HfNoisyError
from ..masks import Crop
from ..splits import canonical_split
from .base import SourceSplit

__all__ = [
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_CITATION",
    "CITYSCAPES_CITIES",
    "CITYSCAPES_HOMEPAGE",
    "CITYSCAPES_LICENSE",
    "CITYSCAPES_LICENSE_URL",
    "CITYSCAPES_SPLITS",
    "SPLITS",
    "cityscapes_frame_name",
    "cityscapes_image_id",
    "cityscapes_image_path",
    "convert_cityscapes",
    "read_cityscapes_split",
]

#: The 8 instance classes Cityscapes evaluates (``hasInstances`` and not ``ignoreInEval`` in cityscapesScripts'
#: ``helpers/labels.py``), with their label ids and their label ``category`` as COCO supercategory, so that
#: asymmetric class noise flips person <-> rider and among the vehicles. Treat as read-only.
CITYSCAPES_CATEGORIES: tuple[dict, ...] = (
    {"id": 24, "name": "person", "supercategory": "human"},
    {"id": 25, "name": "rider", "supercategory": "human"},
    {"id": 26, "name": "car", "supercategory": "vehicle"},
    {"id": 27, "name": "truck", "supercategory": "vehicle"},
    {"id": 28, "name": "bus", "supercategory": "vehicle"},
    {"id": 31, "name": "train", "supercategory": "vehicle"},
    {"id": 32, "name": "motorcycle", "supercategory": "vehicle"},
    {"id": 33, "name": "bicycle", "supercategory": "vehicle"},
)

#: The 27 cities with ``gtFine`` annotations (train 18, val 3, test 6), in alphabetical order. A city's code in
#: :func:`cityscapes_image_id` is its position here plus one. Fixed forever: append, never reorder.
CITYSCAPES_CITIES: tuple[str, ...] = (
    "aachen", "berlin", "bielefeld", "bochum", "bonn", "bremen", "cologne", "darmstadt", "dusseldorf",
    "erfurt", "frankfurt", "hamburg", "hanover", "jena", "krefeld", "leverkusen", "lindau", "mainz",
    "monchengladbach", "munich", "munster", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar", "zurich",
)  # fmt: skip

CITYSCAPES_HOMEPAGE = "https://www.cityscapes-dataset.com"
CITYSCAPES_LICENSE_URL = "https://www.cityscapes-dataset.com/license/"
#: For dataset cards: the terms the images and annotations come with (hf-noisy's code is Apache-2.0).
CITYSCAPES_LICENSE = (
    f"The Cityscapes images and annotations are distributed under the [Cityscapes terms of use]({CITYSCAPES_LICENSE_URL}): "
    "non-commercial research and teaching only, no redistribution, and publications using them must cite "
    "Cordts et al., CVPR 2016. Users must register and download the data themselves from "
    f"[cityscapes-dataset.com]({CITYSCAPES_HOMEPAGE}); hf-noisy only converts a local copy."
)
#: BibTeX of the Cityscapes paper, as its authors ask it to be cited.
CITYSCAPES_CITATION = """\
@inproceedings{Cordts2016Cityscapes,
  title     = {The Cityscapes Dataset for Semantic Urban Scene Understanding},
  author    = {Cordts, Marius and Omran, Mohamed and Ramos, Sebastian and Rehfeld, Timo and Enzweiler, Markus
               and Benenson, Rodrigo and Franke, Uwe and Roth, Stefan and Schiele, Bernt},
  booktitle = {Proc. of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2016}
}"""

#: Splits whose ``gtFine`` may be converted (the test split's released ``gtFine`` holds no instances).
SPLITS = ("train", "val", "test")
#: builder split (:func:`read_cityscapes_split`) -> Cityscapes split folder
CITYSCAPES_SPLITS = {"train": "train", "validation": "val"}
#: canonical split name (:func:`hf_noisy.splits.canonical_split`) -> Cityscapes folder name
_FOLDERS = {"train": "train", "validation": "val", "test": "test"}

_INSTANCE_CLASS_IDS = frozenset(category["id"] for category in CITYSCAPES_CATEGORIES)
_CITY_CODES = {city: code for code, city in enumerate(CITYSCAPES_CITIES, start=1)}
_FRAME_RE = re.compile(r"(?P<city>[a-z]+)_(?P<sequence>\d{6})_(?P<number>\d{6})")
_IMAGE_SUFFIX = "_leftImg8bit.png"
_INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
_POLYGONS_SUFFIX = "_gtFine_polygons.json"
#: annotation id = image_id * _ANN_ID_FACTOR + instanceIds value (values of instance classes are < 34000)
_ANN_ID_FACTOR = 100_000


def cityscapes_image_id(frame: str) -> int:
    """The COCO image id of a Cityscapes frame: ``city_code * 10**12 + sequence * 10**6 + frame_number``.

    ``city_code`` is the city's 1-based position in :data:`CITYSCAPES_CITIES`, so the id reads as the frame
    name in decimal: ``frankfurt_000000_000294`` -> ``11_000000_000294`` = ``11000000000294``. It depends on the
    name alone (stable across runs and subsets), is unique per frame and is below ``2.8 * 10**13``.

    Raises:
        HfNoisyError: ``frame`` is not ``<city>_<6 digits>_<6 digits>`` of a Cityscapes ``gtFine`` city.
    """
    match = _FRAME_RE.fullmatch(frame)
    if match is None:
        raise HfNoisyError(f"{frame!r} is not a Cityscapes frame name (<city>_<6 digits>_<6 digits>, "
                           "e.g. frankfurt_000000_000294)")
    code = _CITY_CODES.get(match["city"])
    if code is None:
        raise HfNoisyError(f"frame {frame!r}: {match['city']!r} is not one of the {len(CITYSCAPES_CITIES)} Cityscapes "
                           f"gtFine cities ({', '.join(CITYSCAPES_CITIES)}); image ids are defined for those only")
    return code * 10**12 + int(match["sequence"]) * 10**6 + int(match["number"])


def cityscapes_frame_name(image_id: int) -> str:
    """The frame name of an id made by :func:`cityscapes_image_id` (its inverse)."""
    code, rest = divmod(int(image_id), 10**12)
    if not 1 <= code <= len(CITYSCAPES_CITIES) or image_id < 0:
        raise HfNoisyError(f"{image_id} is not a Cityscapes image id (city code {code} out of range)")
    sequence, number = divmod(rest, 10**6)
    return f"{CITYSCAPES_CITIES[code - 1]}_{sequence:06d}_{number:06d}"


def cityscapes_image_path(root: str | os.PathLike, split: str, image: dict | str) -> Path:
    """Path of an image of :func:`convert_cityscapes`'s output: ``root/leftImg8bit/<split>/<file_name>``.

    ``image`` is the COCO image dict or its ``file_name`` (``<city>/<frame>_leftImg8bit.png``).
    """
    file_name = image["file_name"] if isinstance(image, dict) else image
    return Path(root) / "leftImg8bit" / _folder(split) / file_name


def _folder(split: str) -> str:
    """The Cityscapes folder of a split given in any spelling (``val`` or ``validation`` -> ``val``)."""
    return _FOLDERS[canonical_split(split)]


@dataclass(frozen=True)
class _Frame:
    """One frame to convert: its name, id and files (the label files may not exist)."""

    name: str
    city: str
    image_id: int
    image_path: Path
    instance_path: Path
    polygons_path: Path


def _list_frames(root: Path, split: str) -> list[_Frame]:
    """Every ``*_leftImg8bit.png`` of the split, sorted by frame name; clear errors for a missing folder."""
    if split not in SPLITS:
        raise HfNoisyError(f"unknown Cityscapes split {split!r}; expected one of {', '.join(SPLITS)}")
    if not root.is_dir():
        problem = "not a directory" if root.exists() else "no such directory"
        raise HfNoisyError(f"{root}: {problem} (expected a Cityscapes root holding leftImg8bit/ and gtFine/)")
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder, what in ((image_dir, "leftImg8bit_trainvaltest.zip"), (label_dir, "gtFine_trainvaltest.zip")):
        if not folder.is_dir():
            raise HfNoisyError(f"{folder}: no such directory; is {root} a Cityscapes root "
                               f"(unpack {what} from {CITYSCAPES_HOMEPAGE} into it)?")
    frames = []
    for city_dir in image_dir.iterdir():
        if not city_dir.is_dir():
            continue
        city = city_dir.name
        for path in city_dir.glob(f"*{_IMAGE_SUFFIX}"):
            name = path.name[: -len(_IMAGE_SUFFIX)]
            if not name.startswith(f"{city}_"):
                raise HfNoisyError(f"{path}: frame {name!r} lies in the folder of another city ({city!r})")
            try:
                image_id = cityscapes_image_id(name)
            except HfNoisyError as err:
                raise HfNoisyError(f"{path}: {err}") from None
            labels = label_dir / city / name
            frames.append(_Frame(name, city, image_id, path, Path(f"{labels}{_INSTANCE_SUFFIX}"),
                                 Path(f"{labels}{_POLYGONS_SUFFIX}")))
    if not frames:
        raise HfNoisyError(f"{image_dir}: no <city>/<frame>{_IMAGE_SUFFIX} images")
    frames.sort(key=lambda frame: frame.name)
    return frames


def _image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, after checking that the file is complete and its checksums hold
    (PIL's ``verify``: a few ms for a Cityscapes png, whose pixels are not decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            image.verify()
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as err:
        raise HfNoisyError(f"{path}: cannot read the image ({err})") from None
    return height, width


def _read_instance_ids(path: Path) -> np.ndarray:
    """The instance-id image of a ``*_gtFine_instanceIds.png`` (16- or 32-bit single channel)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode = image.mode
            ids = np.asarray(image) if mode.startswith("I") else None
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as err:
        raise HfNoisyError(f"{path}: cannot read the instanceIds png ({err})") from None
    if ids is None:
        raise HfNoisyError(f"{path}: an instanceIds png must be a 16- or 32-bit single-channel image, "
                           f"got PIL mode {mode!r}")
    return ids


def _draw_polygons(path: Path) -> np.ndarray:
    """The instance-id image of a ``*_gtFine_polygons.json``, drawn by cityscapesScripts (in memory)."""
    try:
        from cityscapesscripts.helpers.annotation import Annotation
        from cityscapesscripts.helpers.labels import name2label
        from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    except ModuleNotFoundError as err:
        raise HfNoisyError(f"{path}: drawing polygon annotations needs cityscapesScripts "
                           f"(pip install 'hf-noisy[cityscapes]'): {err}") from None
    annotation = Annotation()
    try:
        annotation.fromJsonText(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError) as err:
        raise HfNoisyError(f"{path}: not a Cityscapes polygon file ({type(err).__name__}: {err})") from None
    if annotation.imgWidth <= 0 or annotation.imgHeight <= 0:
        raise HfNoisyError(f"{path}: imgWidth and imgHeight must be positive, got "
                           f"{annotation.imgWidth}x{annotation.imgHeight}")
    for obj in annotation.objects:  # createInstanceImage would sys.exit() on an unknown label
        label = obj.label
        if label not in name2label and label.endswith("group"):
            label = label[: -len("group")]
        if not obj.deleted and label not in name2label:
            raise HfNoisyError(f"{path}: object {obj.id} has the unknown label {obj.label!r}")
    try:
        image = createInstanceImage(annotation, "ids")
    except (ValueError, TypeError) as err:
        raise HfNoisyError(f"{path}: cannot draw a polygon ({err})") from None
    return np.asarray(image)


def _window(mask: np.ndarray) -> Crop:
    """A non-empty boolean full-image mask as the crop of its bounding box (encoding it costs half as much)."""
    rows = np.flatnonzero(mask.any(axis=1))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y0:y1].any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    return Crop(mask[y0:y1, x0:x1].view(np.uint8), x0, y0, (int(mask.shape[0]), int(mask.shape[1])))


def _annotations(ids: np.ndarray, image_id: int) -> list[dict]:
    """One annotation per value of an instance class in ``ids``, in increasing value order."""
    annotations = []
    for value in np.unique(ids).tolist():
        class_id = value // 1000 if value >= 1000 else value
        if class_id not in _INSTANCE_CLASS_IDS:
            continue
        encoded = _window(ids == value).encode()
        annotations.append({
            "id": image_id * _ANN_ID_FACTOR + value,
            "image_id": image_id,
            "category_id": class_id,
            "segmentation": encoded.rle,
            "area": encoded.area,
            "bbox": encoded.bbox,
            "iscrowd": int(value < 1000),
        })
    return annotations


def _convert_frame(frame: _Frame) -> tuple[dict, list[dict], str]:
    """The COCO image entry, annotations and label source (``instanceIds`` or ``polygons``) of one frame."""
    height, width = _image_size(frame.image_path)
    if frame.instance_path.is_file():
        ids, label_path, source = _read_instance_ids(frame.instance_path), frame.instance_path, "instanceIds"
    elif frame.polygons_path.is_file():
        ids, label_path, source = _draw_polygons(frame.polygons_path), frame.polygons_path, "polygons"
    else:
        raise HfNoisyError(f"{frame.image_path}: no gtFine annotation for frame {frame.name} "
                           f"(neither {frame.instance_path} nor {frame.polygons_path} exists)")
    if ids.ndim != 2 or ids.shape != (height, width):
        raise HfNoisyError(f"{label_path}: labels are {'x'.join(map(str, ids.shape[::-1]))} but the image "
                           f"{frame.image_path} is {width}x{height}")
    image = {"id": frame.image_id, "file_name": f"{frame.city}/{frame.name}{_IMAGE_SUFFIX}",
             "height": height, "width": width}
    return image, _annotations(ids, frame.image_id), source


def convert_cityscapes(
    root: str | os.PathLike, split: str, *, progress: bool = False, num_proc: int = 1
) -> dict[str, Any]:
    """Cityscapes ``gtFine`` instances of one split as a COCO instance dict (see the module docstring).

    Args:
        root: the Cityscapes root, holding ``leftImg8bit/<split>/`` and ``gtFine/<split>/``. Nothing is
            written into it.
        split: ``train``, ``val`` (or ``validation``) or ``test``.
        progress: a tqdm progress bar over frames, on stderr.
        num_proc: worker processes (the output is the same for any value).

    Returns:
        ``{"info", "licenses", "images", "annotations", "categories"}``: images sorted by frame name with
        ``file_name`` relative to ``leftImg8bit/<split>/`` (see :func:`cityscapes_image_path`), the
        8 :data:`CITYSCAPES_CATEGORIES`, and per image its instances (``iscrowd: 0``) and group regions
        (``iscrowd: 1``) as compressed RLE. ``info["hf_noisy"]`` counts the frames read from each label source.

    Raises:
        HfNoisyError: naming the path: a missing root or split folder, a frame without ``instanceIds`` png and
            polygons json, an unreadable image or label file, labels whose size differs from the image's.
    """
    if num_proc < 1:
        raise HfNoisyError(f"num_proc must be >= 1, got {num_proc}")
    split = _folder(split)
    frames = _list_frames(Path(root), split)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(frames), desc=f"cityscapes {split}", unit="frame", dynamic_ncols=True)
    images, annotations, sources, pool = [], [], {"instanceIds": 0, "polygons": 0}, None
    try:
        processes = min(num_proc, len(frames), os.cpu_count() or num_proc)
        if processes == 1:
            results = map(_convert_frame, frames)
        else:
            from ..workers import worker_pool

            pool = worker_pool(processes)
            results = pool.imap(_convert_frame, frames, chunksize=4)
        for image, frame_annotations, source in results:
            images.append(image)
            annotations.extend(frame_annotations)
            sources[source] += 1
            if bar is not None:
                bar.update()
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    return {
        "info": {
            "description": f"Cityscapes gtFine {split} instances ({len(CITYSCAPES_CATEGORIES)} classes)",
            "url": CITYSCAPES_HOMEPAGE,
            "version": "gtFine",
            "year": 2016,
            "contributor": "Cordts et al., The Cityscapes Dataset for Semantic Urban Scene Understanding, CVPR 2016",
            "hf_noisy": {"source": "cityscapes", "split": split, "version": __version__, "frames": sources},
        },
        "licenses": [{"id": 1, "name": "Cityscapes terms of use", "url": CITYSCAPES_LICENSE_URL}],
        "images": images,
        "annotations": annotations,
        "categories": [dict(category) for category in CITYSCAPES_CATEGORIES],
    }


def read_cityscapes_split(
    root: str | os.PathLike, split: str, *, progress: bool = False, num_proc: int = 1
) -> SourceSplit:
    """A Cityscapes split for the builder: ``"train"`` or ``"validation"`` (also spelt ``"val"``), converted by
    :func:`convert_cityscapes`, with each image's file.

    ``provenance`` names the folders, counts the frames per label source and holds the SHA-256 of the converted
    COCO JSON (the bytes ``hf-noisy convert cityscapes`` writes for this split).
    """
    if canonical_split(split) not in CITYSCAPES_SPLITS:
        raise HfNoisyError(f"unknown split {split!r} for Cityscapes; expected one of {', '.join(CITYSCAPES_SPLITS)}")
    folder = CITYSCAPES_SPLITS[canonical_split(split)]
    data = convert_cityscapes(root, folder, progress=progress, num_proc=num_proc)
    paths = tuple(cityscapes_image_path(root, folder, image) for image in data["images"])
    provenance = {"annotations": f"gtFine/{folder}", "image_dir": f"leftImg8bit/{folder}",
                  "frames": dict(data["info"]["hf_noisy"]["frames"]),
                  "sha256": hashlib.sha256(dumps_coco(data)).hexdigest()}
    return SourceSplit.of(data, paths, provenance, inputs=(Path(root) / "gtFine" / folder,))
