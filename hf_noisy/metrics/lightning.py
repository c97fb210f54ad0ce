"""Mask AP, Boundary AP and box AP as a ``torchmetrics.Metric`` (extra ``hf-noisy[torchmetrics]``), so that a
Lightning module can ``self.log`` Boundary AP.

>>> from hf_noisy.metrics.lightning import MaskBoundaryAP                  # doctest: +SKIP
>>> self.val_ap = MaskBoundaryAP(iou_types=("segm", "boundary"))          # in the LightningModule's __init__
>>> self.val_ap.update(preds, target)                                     # validation_step
>>> self.log_dict(self.val_ap.compute())                                  # on_validation_epoch_end: segm_AP, ...

Inputs are those of :class:`hf_noisy.metrics.InstanceSegmentationAP` (torchmetrics' ``MeanAveragePrecision``
segm format works as is: ``preds`` dicts with ``masks``, ``scores``, ``labels``; ``target`` dicts with
``masks``, ``labels``, optional ``iscrowd`` and ``area``; ``boxes``, when given, are COCO ``[x, y, w, h]``).
Each update matches its images and keeps only their compact match records as torchmetrics list states
(concatenated across processes by torchmetrics' own sync), never the masks. A target without ``image_id`` gets
``rank * 2**40 + its position on that rank``, so processes never collide and images are ordered rank by rank,
as torchmetrics orders them. ``compute`` returns ``{f"{iou_type}_{stat}": tensor}`` (``segm_AP``,
``boundary_AP50``, ...; stats as :data:`hf_noisy.metrics.STAT_NAMES` or, under LVIS,
:data:`~hf_noisy.metrics.LVIS_STAT_NAMES`); on ``segm`` they equal ``MeanAveragePrecision(iou_type="segm",
backend="pycocotools")``'s ``map``, ``map_50``, ..., ``mar_large`` on the same inputs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torchmetrics import Metric

from .boundary import DEFAULT_DILATION_RATIO
from .driver import flatten
from .protocol import IOU_TYPES, Protocol
from .stateful import InstanceSegmentationAP

__all__ = ["MaskBoundaryAP"]

_RANK_STRIDE = 2**40


class MaskBoundaryAP(Metric):
    """:class:`~hf_noisy.metrics.InstanceSegmentationAP` as a ``torchmetrics.Metric`` (module docstring); the
    arguments are that class's."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, iou_types: Iterable[str] = IOU_TYPES, *, protocol: str | Protocol = "coco",
                 categories: Sequence[Mapping] | None = None, dilation_ratio: float = DEFAULT_DILATION_RATIO,
                 max_dets: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._core = InstanceSegmentationAP(iou_types, protocol=protocol, categories=categories,
                                            dilation_ratio=dilation_ratio, max_dets=max_dets)
        self._names = list(self._core.state_dict()["arrays"])
        for name in self._names:
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self._local_images = 0

    def update(self, preds: Sequence[Mapping], target: Sequence[Mapping]) -> None:
        """Validate and match a batch of images (see :meth:`hf_noisy.metrics.InstanceSegmentationAP.update`)."""
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and \
            torch.distributed.is_initialized() else 0
        target = [dict(t) for t in target]
        for k, item in enumerate(target):
            item.setdefault("image_id", rank * _RANK_STRIDE + self._local_images + k)
        batch = type(self._core)(**self._core.arguments())
        batch.update(preds, target)
        self._local_images += len(target)
        for name, array in batch.state_dict()["arrays"].items():
            getattr(self, name).append(torch.from_numpy(np.ascontiguousarray(array)))

    def compute(self) -> dict[str, torch.Tensor]:
        """``{f"{iou_type}_{stat}": tensor}`` over every image of every process."""
        metric = type(self._core)(**self._core.arguments())
        arrays = {}
        for name in self._names:
            parts = getattr(self, name)
            parts = parts if isinstance(parts, list) else [parts]
            arrays[name] = torch.cat(parts).cpu().numpy() if parts else metric.state_dict()["arrays"][name]
        metric.merge({"settings": metric.state_dict()["settings"], "auto": False, "box_area": None,
                      "arrays": arrays})
        return {name: torch.tensor(value, dtype=torch.float64) for name, value in flatten(metric.compute()).items()}

    def reset(self) -> None:
        super().reset()
        self._local_images = 0
