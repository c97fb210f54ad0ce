"""What every source gives the builder: a split's COCO annotations plus the image file of each image."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Sequence

from ..errors import HfNoisyError

__all__ = ["SourceSplit", "read_annotation_file", "source_folder"]


def source_folder(root: "str | os.PathLike", what: str) -> Path:
    """``root`` as a ``Path`` when it is a folder; else :class:`HfNoisyError` ``"ROOT: no such folder (WHAT)"``
    (or "not a folder"), naming the argument as the user wrote it."""
    path = Path(root)
    if not path.is_dir():
        raise HfNoisyError(f"{os.fspath(root)}: {'not a folder' if path.exists() else 'no such folder'} ({what})")
    return path


def read_annotation_file(path: Path, *, defaults: tuple = ()) -> tuple[dict, Sequence[dict], str]:
    """A COCO file validated (as :func:`hf_noisy.coco.load_coco`), its annotations left in the file: its
    top-level values but ``annotations``, the annotations (an :class:`~hf_noisy.coco_stream.AnnotationFile`,
    or a list where the streaming reader does not follow the file, which is then read whole) and its SHA-256.
    ``defaults``: ``(key, value)`` pairs each annotation gets where it lacks the key."""
    from ..coco import file_sha256, load_coco
    from ..coco_stream import NotStreamable, read_coco_header

    try:
        head, annotations = read_coco_header(path, defaults=defaults)
        return head, annotations, annotations.layout.sha256
    except (NotStreamable, OSError):  # read whole: it words the problem (a missing file...) or accepts the file
        pass
    data = load_coco(path)
    for ann in data["annotations"]:
        for key, value in defaults:
            ann.setdefault(key, value)
    annotations = data.pop("annotations")
    return data, annotations, file_sha256(path)


@dataclass(frozen=True)
class SourceSplit:
    """One split of a source dataset, ready for the builder.

    Attributes:
        header: the split's validated COCO dict without ``annotations`` (``images`` in row order,
            ``categories``; extra fields such as LVIS's ``neg_category_ids`` are kept as they are).
        annotations: its annotations: a list, or for a split read from a file an
            :class:`~hf_noisy.coco_stream.AnnotationFile` that reads them from it when asked (the builder reads
            them a chunk of images at a time, so a split costs its images, not its annotations).
        image_paths: the image file of each entry of ``header["images"]``, in the same order.
        provenance: where the annotations came from, for the card (e.g. ``{"annotations": "...json",
            "sha256": "..."}``); JSON-serialisable.
        inputs: the annotation files (or folders) the split was read from; with the image files, what a build
            must never write over.
    """

    header: dict
    annotations: Sequence[dict]
    image_paths: tuple[Path, ...]
    provenance: dict = field(default_factory=dict)
    inputs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if len(self.image_paths) != len(self.header["images"]):
            raise HfNoisyError(f"{len(self.header['images'])} images but {len(self.image_paths)} image paths")

    @classmethod
    def of(cls, data: dict, image_paths: tuple[Path, ...], provenance: dict | None = None,
           inputs: tuple[Path, ...] = ()) -> "SourceSplit":
        """A split held in memory: ``data`` a validated COCO dict."""
        header = {key: value for key, value in data.items() if key != "annotations"}
        return cls(header, data["annotations"], tuple(image_paths), dict(provenance or {}), tuple(inputs))

    @property
    def images(self) -> list[dict]:
        """The image entries, in row order."""
        return self.header["images"]

    @cached_property
    def data(self) -> dict:
        """The split as one COCO dict (a file's annotations are read whole on first use: for small splits)."""
        annotations = self.annotations if isinstance(self.annotations, list) else list(self.annotations)
        return {**self.header, "annotations": annotations}

    def head(self, count: int | None) -> "SourceSplit":
        """The first ``count`` images and their annotations (everything with ``None``)."""
        if count is None or count >= len(self.image_paths):
            return self
        images = self.images[:count]
        if isinstance(self.annotations, list):
            kept = {image["id"] for image in images}
            annotations = [a for a in self.annotations if a["image_id"] in kept]
        else:
            annotations = self.annotations.head(count)
        return replace(self, header=dict(self.header, images=images), annotations=annotations,
                       image_paths=self.image_paths[:count])

    def check_images(self, *, decode: bool = False, num_proc: int = 1) -> None:
        """Check every image file against its entry; raise :class:`HfNoisyError` naming the first bad one.

        Missing files are reported first (with how many are missing); then each file's pixel size must equal
        the entry's ``width`` x ``height`` (header read), and with ``decode`` the whole image must decode
        (:mod:`hf_noisy.sources.images`; ``num_proc`` worker processes).
        """
        from .images import first_image_problem

        where = self.provenance.get("annotations", "the annotations")
        missing = [path for path in self.image_paths if not path.is_file()]
        if missing:
            raise HfNoisyError(f"{len(missing)} image file(s) listed in {where} are missing, e.g. {missing[0]}")
        found = first_image_problem(self.image_paths, self.images, decode=decode, num_proc=num_proc)
        if found is not None:
            index, problem = found
            raise HfNoisyError(f"{self.image_paths[index]}: {problem} (image id {self.images[index]['id']} "
                               f"in {where})")
