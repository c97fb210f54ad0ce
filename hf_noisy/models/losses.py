"""Class losses for Mask2Former under label noise: cross-entropy, Symmetric Cross-Entropy, generalized
cross-entropy or soft bootstrapping; and the per-instance losses of the Hungarian-matched queries.

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

Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, "Generalized Cross Entropy Loss for Training Deep
Neural Networks with Noisy Labels") is ``(1 - p_y^q) / q`` with ``q`` in ``(0, 1]``: CE as ``q -> 0``, MAE-like
(bounded) at ``q = 1``. Soft bootstrapping (Reed et al., ICLR 2015 workshop, "Training Deep Neural Networks on
Noisy Labels with Bootstrapping") is ``-sum_k (beta * t_k + (1 - beta) * p_k) log p_k``: the label ``t`` mixed
with the model's own prediction ``p`` (not detached, so the ``1 - beta`` part is the paper's entropy term); CE at
``beta = 1``. Both are weighted like CE (each row by its target's class weight, divided by the weights' sum).

Per-instance losses (``NoisyLabelLoss(record_instances=True)``, what ``--log-instance-losses`` reads): for the
last decoder layer, each matched ``(query, target)`` pair's class loss (the configured class loss of that
row, unweighted), and its mask sigmoid cross-entropy and dice loss over every pixel of the target (the query's
mask logits upsampled bilinearly to the target's size), not over the training loss's random points: recording
draws no random numbers, so it does not change the run.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

from ..errors import HfNoisyError
from .train_config import CHOICES

__all__ = ["CLASS_LOSSES", "NoisyLabelLoss", "generalized_cross_entropy", "generalized_cross_entropy_rows",
           "install_class_loss", "soft_bootstrapping", "soft_bootstrapping_rows", "symmetric_cross_entropy"]

ClassLoss = Literal["ce", "sce", "gce", "bootstrap"]
CLASS_LOSSES = CHOICES["class_loss"]


def symmetric_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None, *,
                            alpha: float = 1.0, beta: float = 1.0, log_floor: float = -4.0) -> torch.Tensor:
    """``alpha * CE + beta * RCE``, weighted means over all rows.

    Args:
        logits: ``(N, K)`` class logits.
        targets: ``(N,)`` class indices in ``[0, K)``.
        weight: ``(K,)`` per-class weights (``None``: all 1); each row counts with its target's weight.
        alpha: weight of the forward term (CE).
        beta: weight of the reverse term (RCE).
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


def _weighted_mean(rows: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return rows.mean()
    row_weight = weight.to(rows.dtype)[targets]
    return (row_weight * rows).sum() / row_weight.sum()


def generalized_cross_entropy_rows(logits: torch.Tensor, targets: torch.Tensor, *, q: float = 0.7) -> torch.Tensor:
    """Per-row GCE ``(1 - p_y^q) / q`` of ``(N, K)`` logits and ``(N,)`` targets; ``q`` in ``(0, 1]``."""
    if not 0 < q <= 1:
        raise HfNoisyError(f"gce q must be in (0, 1], got {q}")
    log_p = logits.log_softmax(-1).gather(-1, targets[:, None])[:, 0]
    return -torch.expm1(q * log_p) / q  # (1 - exp(q log p)) / q, exact for small q


def generalized_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None, *,
                              q: float = 0.7) -> torch.Tensor:
    """Weighted mean of :func:`generalized_cross_entropy_rows` (``weight``: ``(K,)`` per-class, as in CE)."""
    return _weighted_mean(generalized_cross_entropy_rows(logits, targets, q=q), targets, weight)


def soft_bootstrapping_rows(logits: torch.Tensor, targets: torch.Tensor, *, beta: float = 0.95) -> torch.Tensor:
    """Per-row soft bootstrapping ``-sum_k (beta t_k + (1 - beta) p_k) log p_k``; ``beta`` in ``[0, 1]``."""
    if not 0 <= beta <= 1:
        raise HfNoisyError(f"bootstrap beta must be in [0, 1], got {beta}")
    log_p = logits.log_softmax(-1)
    ce = -log_p.gather(-1, targets[:, None])[:, 0]
    entropy = -(log_p.exp() * log_p).sum(-1)
    return beta * ce + (1 - beta) * entropy


def soft_bootstrapping(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None, *,
                       beta: float = 0.95) -> torch.Tensor:
    """Weighted mean of :func:`soft_bootstrapping_rows` (``weight``: ``(K,)`` per-class, as in CE)."""
    return _weighted_mean(soft_bootstrapping_rows(logits, targets, beta=beta), targets, weight)


class NoisyLabelLoss(Mask2FormerLoss):
    """``Mask2FormerLoss`` with a choice of class loss (see :data:`CLASS_LOSSES` and the module docstring).

    With ``record_instances`` set, each forward leaves the last layer's per-instance losses in
    ``last_instances``: one dict of 1-D CPU tensors per image (``target``: index into that image's targets,
    ``query``, ``class_loss``, ``mask_bce``, ``mask_dice``).
    """

    def __init__(self, config, weight_dict: dict[str, float], *, class_loss: ClassLoss = "ce",
                 sce_alpha: float = 1.0, sce_beta: float = 1.0, sce_log_floor: float = -4.0,
                 gce_q: float = 0.7, bootstrap_beta: float = 0.95) -> None:
        super().__init__(config=config, weight_dict=weight_dict)
        if class_loss not in CLASS_LOSSES:
            raise HfNoisyError(f"class_loss must be one of {', '.join(CLASS_LOSSES)}, got {class_loss!r}")
        self.class_loss, self.sce_alpha, self.sce_beta, self.sce_log_floor = class_loss, sce_alpha, sce_beta, sce_log_floor
        self.gce_q, self.bootstrap_beta = gce_q, bootstrap_beta
        self.record_instances = False
        self.last_instances: list[dict[str, torch.Tensor]] = []

    def class_loss_rows(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The configured class loss of each row, unweighted (``(N, K)`` logits, ``(N,)`` targets)."""
        if self.class_loss == "ce":
            return F.cross_entropy(logits, targets, reduction="none")
        if self.class_loss == "gce":
            return generalized_cross_entropy_rows(logits, targets, q=self.gce_q)
        if self.class_loss == "bootstrap":
            return soft_bootstrapping_rows(logits, targets, beta=self.bootstrap_beta)
        ce = F.cross_entropy(logits, targets, reduction="none")
        reverse = -self.sce_log_floor * (1.0 - logits.softmax(-1).gather(-1, targets[:, None])[:, 0])
        return self.sce_alpha * ce + self.sce_beta * reverse

    def forward(self, masks_queries_logits: torch.Tensor, class_queries_logits: torch.Tensor,
                mask_labels: list[torch.Tensor], class_labels: list[torch.Tensor],
                auxiliary_predictions: list[dict[str, torch.Tensor]] | None = None) -> dict[str, torch.Tensor]:
        """transformers' loss (the same matcher calls in the same order, so the same random points), plus the
        last layer's per-instance losses when ``record_instances`` is set."""
        indices = self.matcher(masks_queries_logits, class_queries_logits, mask_labels, class_labels)
        num_masks = self.get_num_masks(class_labels, device=class_labels[0].device)
        losses = {**self.loss_masks(masks_queries_logits, mask_labels, indices, num_masks),
                  **self.loss_labels(class_queries_logits, class_labels, indices)}
        if self.record_instances:
            self.last_instances = self.instance_losses(masks_queries_logits, class_queries_logits, mask_labels,
                                                       class_labels, indices)
        for idx, aux in enumerate(auxiliary_predictions or []):
            aux_indices = self.matcher(aux["masks_queries_logits"], aux["class_queries_logits"], mask_labels, class_labels)
            aux_num = self.get_num_masks(class_labels, device=class_labels[0].device)
            layer = {**self.loss_masks(aux["masks_queries_logits"], mask_labels, aux_indices, aux_num),
                     **self.loss_labels(aux["class_queries_logits"], class_labels, aux_indices)}
            losses.update({f"{key}_{idx}": value for key, value in layer.items()})
        return losses

    @torch.no_grad()
    def instance_losses(self, masks_queries_logits: torch.Tensor, class_queries_logits: torch.Tensor,
                        mask_labels: list[torch.Tensor], class_labels: list[torch.Tensor],
                        indices: list) -> list[dict[str, torch.Tensor]]:
        """Per matched pair of each image: class loss, and mask BCE / dice over all target pixels."""
        out = []
        for b, (queries, targets) in enumerate(indices):
            queries, targets = torch.as_tensor(queries, dtype=torch.int64), torch.as_tensor(targets, dtype=torch.int64)
            logits = class_queries_logits[b, queries].float()
            class_rows = self.class_loss_rows(logits, class_labels[b][targets].to(logits.device))
            target = mask_labels[b][targets].float()
            if len(queries):
                pred = F.interpolate(masks_queries_logits[b, queries].float()[None], size=target.shape[-2:],
                                     mode="bilinear", align_corners=False)[0]
            else:
                pred = target.clone()
            pred, target = pred.flatten(1), target.flatten(1)
            bce = F.binary_cross_entropy_with_logits(pred, target, reduction="none").mean(1)
            prob = pred.sigmoid()
            dice = 1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)
            out.append({"target": targets.cpu(), "query": queries.cpu(), "class_loss": class_rows.cpu(),
                        "mask_bce": bce.cpu(), "mask_dice": dice.cpu()})
        return out

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
        elif self.class_loss == "gce":
            loss = generalized_cross_entropy(logits, targets.reshape(-1), weight, q=self.gce_q)
        elif self.class_loss == "bootstrap":
            loss = soft_bootstrapping(logits, targets.reshape(-1), weight, beta=self.bootstrap_beta)
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


def install_class_loss(model, class_loss: ClassLoss = "ce", *, sce_alpha: float = 1.0, sce_beta: float = 1.0,
                       gce_q: float = 0.7, bootstrap_beta: float = 0.95) -> None:
    """Replace ``model.criterion`` (a ``Mask2FormerForUniversalSegmentation``) by :class:`NoisyLabelLoss`.

    The state dict does not change (the criterion's only buffer, ``empty_weight``, is rebuilt from the config).
    """
    criterion = NoisyLabelLoss(model.config, model.weight_dict, class_loss=class_loss, sce_alpha=sce_alpha,
                               sce_beta=sce_beta, gce_q=gce_q, bootstrap_beta=bootstrap_beta)
    model.criterion = criterion.to(model.criterion.empty_weight.device)
