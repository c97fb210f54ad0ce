"""What every source gives the builder: a split as a COCO instance dict plus the image file of each image."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import HfNoisyError

__all__ = ["SourceSplit", "source_folder"]


def source_folder(root: "str | os.PathLike", what: str) -> Path:
    """``root`` as a ``Path`` when it is a folder; else :class:`HfNoisyError` ``"ROOT: no such folder (WHAT)"``
    (or "not a folder"), naming the argument as the user wrote it."""
    path = Path(root)
    if not path.is_dir():
        raise HfNoisyError(f"{os.fspath(root)}: {'not a folder' if path.exists() else 'no such folder'} ({what})")
    return path


@dataclass(frozen=True)
class SourceSplit:
    """One split of a source dataset, ready for the builder.

    Attributes:
        data: a validated COCO instance dict (``images`` in row order, ``annotations``, ``categories``; extra
            fields such as LVIS's ``neg_category_ids`` are kept as they are).
        image_paths: the image file of each entry of ``data["images"]``, in the same order.
        provenance: where the annotations came from, for the card (e.g. ``{"annotations": "...json",
            "sha256": "..."}``); JSON-serialisable.
        inputs: the annotation files (or folders) the split was read from; with the image files, what a build
            must never write over.
    """

    data: dict
    image_paths: tuple[Path, ...]
    provenance: dict = field(default_factory=dict)
    inputs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if len(self.image_paths) != len(self.data["images"]):
            raise HfNoisyError(f"{len(self.data['images'])} images but {len(self.image_paths)} image paths")

    def head(self, count: int | None) -> "SourceSplit":
        """The first ``count`` images and their annotations (everything with ``None``)."""
        if count is None or count >= len(self.image_paths):
            return self
        images = self.data["images"][:count]
        kept = {image["id"] for image in images}
        data = dict(self.data, images=images, annotations=[a for a in self.data["annotations"] if a["image_id"] in kept])
        return replace(self, data=data, image_paths=self.image_paths[:count])

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
        found = first_image_problem(self.image_paths, self.data["images"], decode=decode, num_proc=num_proc)
        if found is not None:
            index, problem = found
            raise HfNoisyError(f"{self.image_paths[index]}: {problem} (image id {self.data['images'][index]['id']} "
                               f"in {where})")
