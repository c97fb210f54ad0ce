"""Dataset rows -> Mask2Former inputs: decoding, augmentation, collation and the per-rank batch order (the input
pipeline of ``train/train_mask2former.py``).

Conventions:

* Rows are COCO-N rows (``image``, ``image_id``, ``width``, ``height``, ``objects`` with an RLE
  ``segmentation``, a ``category_id`` ClassLabel index and ``iscrowd``); only those columns are read.
* **Training targets.** Crowd regions (``iscrowd=1``) are not targets: they are ignore regions in COCO
  evaluation, and Mask2Former (like detectron2's COCO mapper) drops them, so their pixels are simply not
  supervised by any matched query. Instances whose mask is empty (noise can erode a thin object to nothing)
  are dropped too: an empty mask cannot be matched and its class has no support. After augmentation, an
  instance with no pixel left in the crop is dropped as well.
* **Large-scale jitter** (Mask2Former's COCO recipe): scale the image so that its longer side is
  ``size * s`` with ``s ~ U(min_scale, max_scale)``, take a random ``size x size`` crop (or the whole image
  when smaller), flip horizontally with probability ``flip_prob``, pad to ``size x size``. The image and its
  masks go through the same affine map (pixel centres at ``+0.5``); images are resampled bilinearly (area
  averaging when shrinking), masks by nearest neighbour.
* **Randomness** is a pure function of ``(seed, epoch, dataset index)``: each sample draws from its own
  ``numpy.random.Generator``, so crops and flips do not depend on the number of workers or processes.
* **Order**: :class:`EpochBatchSampler` permutes the dataset with a generator seeded by ``(seed, epoch)``
  and deals the permutation round-robin to the ranks; it can start mid-epoch (resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import torch

from ..errors import HfNoisyError
from ..masks import decode

__all__ = ["COLUMNS", "PIXEL_MEAN", "PIXEL_STD", "EpochBatchSampler", "Jitter", "TrainDataset", "class_names_of",
           "collate", "decode_image", "eval_resize", "fold_indices", "instance_targets", "large_scale_jitter",
           "pad_batch", "sample_rng", "to_pixel_values", "train_batches"]

#: ImageNet statistics in 0-255 pixel units (Mask2Former's image processor uses the same).
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
#: The columns the pipeline reads; extra columns of other benchmarks are ignored.
COLUMNS = ["image", "image_id", "width", "height", "objects"]


@dataclass(frozen=True)
class Jitter:
    """Large-scale jitter parameters. ``size``: output side in pixels; scales relative to ``size`` over the
    image's longer side; ``min_scale == max_scale == 1`` and ``flip_prob == 0`` give a plain resize + pad."""

    size: int
    min_scale: float = 0.1
    max_scale: float = 2.0
    flip_prob: float = 0.5


def class_names_of(rows: Any) -> list[str]:
    """The class names of a built benchmark's rows, by ClassLabel index (the model's label ``i`` is name ``i``)."""
    objects = rows.features["objects"]
    inner = getattr(objects, "feature", objects)
    return list(inner["category_id"].names)


def fold_indices(count: int, fold: tuple[int, int] | None) -> tuple[list[int], list[int]]:
    """Row indices ``(training, held out)`` of a split of ``count`` rows for cross-fitting: fold ``K`` of ``N``
    is every row ``i`` with ``i % N == K``; without a fold, everything trains and nothing is held out."""
    if fold is None:
        return list(range(count)), []
    k, n = fold
    return [i for i in range(count) if i % n != k], [i for i in range(count) if i % n == k]


def decode_image(image: Any, height: int, width: int) -> np.ndarray:
    """An ``Image`` cell (undecoded ``{"bytes", "path"}`` or a PIL image) as ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied, as ``datasets`` does; the result must have the row's ``height x width``.
    """
    if isinstance(image, dict):
        data = image.get("bytes")
        if data is None:
            with open(image["path"], "rb") as handle:
                data = handle.read()
        rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if rgb is None else rgb)
        if array is None:
            raise HfNoisyError(f"cannot decode image {image.get('path') or '<bytes>'}")
        if rgb is None:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    else:
        array = np.asarray(image.convert("RGB"))
    if array.shape[:2] != (height, width):
        raise HfNoisyError(f"image is {array.shape[1]}x{array.shape[0]} but its row says {width}x{height}")
    return array


def instance_targets(row: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets of one row: ``(masks (N, H, W) uint8, labels (N,) int64 ClassLabel indices,
    annotation ids (N,) int64)``, without crowd regions and empty masks (rows without ``id``: -1)."""
    height, width = int(row["height"]), int(row["width"])
    masks, labels, ids = [], [], []
    for obj in row["objects"]:
        if obj["iscrowd"]:
            continue
        mask = decode(obj["segmentation"])
        if mask.any():
            masks.append(mask)
            labels.append(obj["category_id"])
            ids.append(obj.get("id", -1))
    if not masks:
        return np.zeros((0, height, width), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.stack(masks), np.asarray(labels, np.int64), np.asarray(ids, np.int64)


def large_scale_jitter(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator,
                       jitter: Jitter) -> tuple[np.ndarray, np.ndarray]:
    """Scale, crop, flip and pad ``image`` ``(H, W, 3)`` uint8 and ``masks`` ``(N, H, W)`` uint8 together.

    Returns ``(image (size, size, 3) uint8, masks (N, size, size) uint8)``; padding is 0 in both (the caller
    normalises, so padded pixels become the mean colour). Draws, in order: scale, crop y, crop x, flip.
    """
    height, width = image.shape[:2]
    size = jitter.size
    scale = rng.uniform(jitter.min_scale, jitter.max_scale) * size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    top = int(rng.integers(0, max(new_h - size, 0) + 1))
    left = int(rng.integers(0, max(new_w - size, 0) + 1))
    flip = bool(rng.random() < jitter.flip_prob)
    crop_h, crop_w = min(size, new_h), min(size, new_w)
    sy, sx = new_h / height, new_w / width
    # output pixel (x, y) samples input ((x + left + 0.5) / sx - 0.5, (y + top + 0.5) / sy - 0.5)
    affine = np.array([[1 / sx, 0, (left + 0.5) / sx - 0.5], [0, 1 / sy, (top + 0.5) / sy - 0.5]], np.float64)
    if scale < 1:
        crop = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)[top:top + crop_h, left:left + crop_w]
    else:
        crop = cv2.warpAffine(image, affine, (crop_w, crop_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    out_image = np.zeros((size, size, 3), np.uint8)
    out_image[:crop_h, :crop_w] = crop[:, ::-1] if flip else crop
    out_masks = np.zeros((len(masks), size, size), np.uint8)
    for start in range(0, len(masks), 256):  # OpenCV handles at most 512 channels per call
        chunk = np.ascontiguousarray(masks[start:start + 256].transpose(1, 2, 0))
        warped = cv2.warpAffine(chunk, affine, (crop_w, crop_h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        warped = warped.reshape(crop_h, crop_w, -1).transpose(2, 0, 1)
        out_masks[start:start + 256, :crop_h, :crop_w] = warped[:, :, ::-1] if flip else warped
    return out_image, out_masks


def to_pixel_values(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> normalised ``(3, H, W)`` float32 tensor."""
    return torch.from_numpy(((image.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1).copy())


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of one sample: a pure function of ``(seed, epoch, index)``."""
    return np.random.default_rng([seed, epoch, index])


class TrainDataset(torch.utils.data.Dataset):
    """Rows -> ``{"pixel_values", "mask_labels", "class_labels", "annotation_ids", "image_id"}``, indexed by
    ``(epoch, index)`` pairs (``annotation_ids``: the source annotation id of each target, in target order)."""

    def __init__(self, rows: Any, jitter: Jitter, seed: int) -> None:
        from datasets import Image

        self.rows = rows.select_columns(COLUMNS).cast_column("image", Image(decode=False))
        self.jitter, self.seed = jitter, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        row = self.rows[index]
        image = decode_image(row["image"], int(row["height"]), int(row["width"]))
        masks, labels, ids = instance_targets(row)
        image, masks = large_scale_jitter(image, masks, sample_rng(self.seed, epoch, index), self.jitter)
        keep = masks.any(axis=(1, 2))  # also for an image whose instances noise emptied, all of them
        return {
            "pixel_values": to_pixel_values(image),
            "mask_labels": torch.from_numpy(masks[keep]).float(),
            "class_labels": torch.from_numpy(labels[keep]),
            "annotation_ids": torch.from_numpy(ids[keep]),
            "image_id": int(row["image_id"]),
        }


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Stack pixel values (all ``size x size``); targets stay lists (one entry per image)."""
    return {
        "pixel_values": torch.stack([s["pixel_values"] for s in samples]),
        "mask_labels": [s["mask_labels"] for s in samples],
        "class_labels": [s["class_labels"] for s in samples],
        "annotation_ids": [s["annotation_ids"] for s in samples],
        "image_ids": [s["image_id"] for s in samples],
    }


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of ``(epoch, index)`` for one rank, in a deterministic per-epoch order.

    The epoch's permutation comes from ``default_rng([seed, epoch])``; it is padded by wrapping around to a
    multiple of ``world_size * batch_size`` (every rank gets the same number of full batches) and rank ``r``
    takes positions ``r, r + W, ...``. ``start_batch`` skips the first batches of this rank (resume).
    """

    def __init__(self, num_rows: int, batch_size: int, *, seed: int, epoch: int, rank: int, world_size: int,
                 start_batch: int = 0) -> None:
        if num_rows < 1:
            raise HfNoisyError("the training split has no rows")
        self.num_rows, self.batch_size, self.seed, self.epoch = num_rows, batch_size, seed, epoch
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch

    def batches_per_epoch(self) -> int:
        """Full batches per rank and epoch."""
        step = self.world_size * self.batch_size
        return -(-self.num_rows // step)

    def indices(self) -> list[int]:
        """This rank's dataset indices for the whole epoch, in order."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_rows)
        total = self.batches_per_epoch() * self.world_size * self.batch_size
        order = np.resize(order, total)  # wraps around
        return [int(i) for i in order[self.rank::self.world_size]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        mine = self.indices()
        for b in range(self.start_batch, self.batches_per_epoch()):
            yield [(self.epoch, i) for i in mine[b * self.batch_size:(b + 1) * self.batch_size]]

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start_batch


def train_batches(dataset: TrainDataset, batch_size: int, *, seed: int, rank: int, world_size: int, epoch: int = 0,
                  start_batch: int = 0, num_workers: int = 0) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(epoch, micro-batches of that epoch consumed by this rank, collated batch)`` forever, epoch after epoch,
    starting at ``start_batch`` of ``epoch`` (resume). Each epoch's loader has its own generator: creating it
    draws nothing from the global RNG, so a resumed run continues exactly."""
    while True:
        sampler = EpochBatchSampler(len(dataset), batch_size, seed=seed, epoch=epoch, rank=rank,
                                    world_size=world_size, start_batch=start_batch)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=num_workers,
                                             generator=torch.Generator().manual_seed(seed + epoch))
        for i, batch in enumerate(loader, start=start_batch):
            yield epoch, i + 1, batch
        epoch, start_batch = epoch + 1, 0


def eval_resize(image: np.ndarray, short_edge: int, max_size: int) -> np.ndarray:
    """Resize so that the shorter side is ``short_edge`` and the longer at most ``max_size`` (bilinear)."""
    height, width = image.shape[:2]
    scale = min(short_edge / min(height, width), max_size / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def pad_batch(images: Sequence[torch.Tensor], divisor: int = 32) -> torch.Tensor:
    """Pad ``(3, h, w)`` tensors with zeros (the mean colour) to one size divisible by ``divisor``."""
    height = -(-max(t.shape[1] for t in images) // divisor) * divisor
    width = -(-max(t.shape[2] for t in images) // divisor) * divisor
    out = torch.zeros(len(images), 3, height, width)
    for i, t in enumerate(images):
        out[i, :, : t.shape[1], : t.shape[2]] = t
    return out
