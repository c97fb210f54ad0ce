"""Image files checked against their annotations before a build stores them.

Two checks per image, both reading only the file:

* **size** (always; cheap, Pillow reads the header only): the file's pixel size must equal the COCO entry's
  ``width`` x ``height``, or the masks would not line up with the image.
* **decode** (optional, on by default in the builder): the whole image is decoded, so a truncated or corrupt
  file fails here, naming the file, and not later at row access (``OSError: image file is truncated``).

Sizes are compared as stored in the file (no EXIF rotation), as COCO records them. Pillow's decompression-bomb
limit (``PIL.Image.MAX_IMAGE_PIXELS``) applies: a larger image is reported, not decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..workers import worker_pool

__all__ = ["image_problem", "first_image_problem"]

#: images per task sent to a worker process
_CHUNK = 64


def image_problem(path: Path, width: int, height: int, decode: bool = True) -> str | None:
    """Why the image file at ``path`` is unfit for a ``width`` x ``height`` (pixels) entry, or ``None``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            size = image.size
            if size != (width, height):
                return (f"size mismatch: the file is {size[0]}x{size[1]} (width x height), the annotations say "
                        f"{width}x{height}")
            if decode:
                image.load()
    except FileNotFoundError:
        return "missing"
    except UnidentifiedImageError:
        return "unreadable: not an image file Pillow can identify"
    except Image.DecompressionBombError as err:
        return f"too large to decode: {err}"
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's truncated / broken-data errors
        return f"truncated or corrupt: {err}"
    return None


def _check_chunk(items: Sequence[tuple[Path, int, int, bool]]) -> tuple[int, str] | None:
    for k, (path, width, height, decode) in enumerate(items):
        problem = image_problem(path, width, height, decode)
        if problem is not None:
            return k, problem
    return None


def first_image_problem(paths: Sequence[Path], images: Sequence[dict], *, decode: bool = True,
                        num_proc: int = 1) -> tuple[int, str] | None:
    """The index (in ``paths`` order) and reason of the first unfit image, or ``None`` if all are fine.

    ``images`` are the COCO entries of ``paths``, in the same order. ``num_proc`` worker processes share the
    work; the answer is the same for any value.
    """
    items = [(Path(path), int(image["width"]), int(image["height"]), decode) for path, image in zip(paths, images)]
    chunks = [items[start:start + _CHUNK] for start in range(0, len(items), _CHUNK)]
    if num_proc > 1 and len(chunks) > 1:
        with worker_pool(min(num_proc, len(chunks))) as pool:
            for c, found in enumerate(pool.imap(_check_chunk, chunks)):
                if found is not None:
                    return c * _CHUNK + found[0], found[1]
        return None
    for c, chunk in enumerate(chunks):
        found = _check_chunk(chunk)
        if found is not None:
            return c * _CHUNK + found[0], found[1]
    return None
