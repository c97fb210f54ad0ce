"""Class losses for Mask2Former under label noise: cross-entropy or Symmetric Cross-Entropy.

Symmetric Cross-Entropy (Wang et al., ICCV 2019, "Symmetric Cross Entropy for Robust Learning with Noisy
Labels") is ``alpha * CE + beta * RCE``. The reverse cross-entropy swaps prediction and label,
``RCE = -sum_k p_k log q_k``, with ``p`` the softmax prediction and ``q`` the one-hot label; ``log 0`` is
clipped to ``A`` (``-4`` in the paper), so ``RCE = -A * (1 - p_y)``: bounded, hence robust to wrong labels.

Mask2Former's class head has ``C + 1`` outputs (the last one is "no object"). Queries the Hungarian matcher
leaves unmatched are trained towards "no object" with the per-class weight ``no_object_weight`` (0.1 by
default). :func:`symmetric_cross_entropy` weights the RCE term exactly as the CE term: each query's loss is
multiplied by the weight of its target class and the sum is divided by the sum of those weights (what
``torch.nn.functional.cross_entropy(weight=...)`` does for CE).

:class:`NoisyLabelLoss` is transformers' ``Mask2FormerLoss`` with this class loss (its result keeps the key
``loss_cross_entropy``, so the model's ``class_weight`` and the auxiliary-layer losses apply unchanged) and
with the mask-count normalisation of the original Mask2Former (the mean number of masks per process:
``all_reduce(sum) / world_size``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

ClassLoss = Literal["ce", "sce"]


def symmetric_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None, *,
                            alpha: float = 1.0, beta: float = 1.0, log_floor: float = -4.0) -> torch.Tensor:
    """``alpha * CE + beta * RCE``, weighted means over all rows.

    Args:
        logits: ``(N, K)`` class logits.
        targets: ``(N,)`` class indices in ``[0, K)``.
        weight: ``(K,)`` per-class weights (``None``: all 1); each row counts with its target's weight.
        alpha, beta: weights of the forward and reverse terms.
        log_floor: ``A``, the value that replaces ``log 0`` in the reverse term (``< 0``).
    """
    weight = torch.ones(logits.shape[-1], dtype=logits.dtype, device=logits.device) if weight is None else weight
    row_weight = weight.to(logits.dtype)[targets]
    forward = F.cross_entropy(logits, targets, weight=weight.to(logits.dtype))
    probs = logits.softmax(-1)
    # -sum_k p_k * clip(log q_k, A) with q one-hot: log q_y = 0, log q_k = log 0 -> A for k != y
    reverse_rows = -log_floor * (1.0 - probs.gather(-1, targets[:, None])[:, 0])
    reverse = (row_weight * reverse_rows).sum() / row_weight.sum()
    return alpha * forward + beta * reverse


class NoisyLabelLoss(Mask2FormerLoss):
    """``Mask2FormerLoss`` with a choice of class loss (``"ce"`` or ``"sce"``); see the module docstring."""

    def __init__(self, config, weight_dict: dict[str, float], *, class_loss: ClassLoss = "ce",
                 sce_alpha: float = 1.0, sce_beta: float = 1.0, sce_log_floor: float = -4.0) -> None:
        super().__init__(config=config, weight_dict=weight_dict)
        if class_loss not in ("ce", "sce"):
            raise ValueError(f"class_loss must be 'ce' or 'sce', got {class_loss!r}")
        self.class_loss, self.sce_alpha, self.sce_beta, self.sce_log_floor = class_loss, sce_alpha, sce_beta, sce_log_floor

    def loss_labels(self, class_queries_logits: torch.Tensor, class_labels: list[torch.Tensor],
                    indices: tuple) -> dict[str, torch.Tensor]:
        batch_size, num_queries, num_outputs = class_queries_logits.shape
        targets = torch.full((batch_size, num_queries), self.num_labels, dtype=torch.int64,
                             device=class_queries_logits.device)
        batch_idx, query_idx = self._get_predictions_permutation_indices(indices)
        targets[batch_idx, query_idx] = torch.cat([labels[j] for labels, (_, j) in zip(class_labels, indices)])
        logits = class_queries_logits.float().reshape(-1, num_outputs)
        weight = self.empty_weight.float()
        if self.class_loss == "ce":
            loss = F.cross_entropy(logits, targets.reshape(-1), weight=weight)
        else:
            loss = symmetric_cross_entropy(logits, targets.reshape(-1), weight, alpha=self.sce_alpha,
                                           beta=self.sce_beta, log_floor=self.sce_log_floor)
        return {"loss_cross_entropy": loss}

    def get_num_masks(self, class_labels: list[torch.Tensor], device: torch.device) -> torch.Tensor:
        num_masks = torch.as_tensor(float(sum(len(labels) for labels in class_labels)), device=device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(num_masks)
            num_masks = num_masks / torch.distributed.get_world_size()
        return torch.clamp(num_masks, min=1)


def install_class_loss(model, class_loss: ClassLoss = "ce", *, sce_alpha: float = 1.0, sce_beta: float = 1.0) -> None:
    """Replace ``model.criterion`` (a ``Mask2FormerForUniversalSegmentation``) by :class:`NoisyLabelLoss`.

    The state dict does not change (the criterion's only buffer, ``empty_weight``, is rebuilt from the config).
    """
    criterion = NoisyLabelLoss(model.config, model.weight_dict, class_loss=class_loss, sce_alpha=sce_alpha,
                               sce_beta=sce_beta)
    model.criterion = criterion.to(model.criterion.empty_weight.device)
