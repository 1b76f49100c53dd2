"""Contrastive losses and temperature schedules of the Semantic Reconstructor (method.md §3.2).

All functions are pure: inputs are already flattened and (by the caller) L2-normalised embeddings (B, D):
``preds`` from fMRI, ``target_embeds`` from the frozen encoder (the cached targets of docs/contracts.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_clip_loss(preds: Tensor, target_embeds: Tensor, temperature: float) -> Tensor:
    """SoftCLIP: soft labels softmax(t t^T / tau) for log_softmax(p t^T / tau), both directions, averaged.

    The backward direction uses the same (symmetric) soft labels on the transposed logits, as upstream.
    """
    target_logits = target_embeds @ target_embeds.T / temperature
    logits = preds @ target_embeds.T / temperature
    soft = target_logits.softmax(-1)
    forward = -(logits.log_softmax(-1) * soft).sum(-1).mean()
    backward = -(logits.T.log_softmax(-1) * soft).sum(-1).mean()
    return (forward + backward) / 2


def info_nce(
    preds: Tensor, target_embeds: Tensor, temperature: float = 0.1, bidirectional: bool = True
) -> Tensor:
    """Symmetric InfoNCE with the diagonal as positives (upstream ``mixco_nce`` without mixing)."""
    logits = preds @ target_embeds.T / temperature
    labels = torch.arange(len(logits), device=logits.device)
    loss = F.cross_entropy(logits, labels)
    if bidirectional:
        loss = (loss + F.cross_entropy(logits.T, labels)) / 2
    return loss


@dataclass
class MixCoDraw:
    """One BiMixCo draw: ``mixed = beta * x + (1 - beta) * x[perm]`` for selected rows (beta = 1 elsewhere)."""

    perm: Tensor  # (B,) long
    betas: Tensor  # (B,) float, 1 where not selected
    select: Tensor  # (B,) bool


def draw_mixco(
    batch: int, beta: float = 0.15, select_prob: float = 0.5, device: torch.device | str = "cpu"
) -> MixCoDraw:
    """perm ~ random permutation, beta ~ Beta(beta, beta), select ~ Bernoulli (rand <= p), from the global RNG
    in upstream's order (perm, betas, select)."""
    perm = torch.randperm(batch)
    betas = torch.distributions.Beta(beta, beta).sample((batch,))
    select = torch.rand(batch) <= select_prob
    betas = torch.where(select, betas, torch.ones_like(betas))
    return MixCoDraw(perm.to(device), betas.to(device), select.to(device))


def apply_mixco(x: Tensor, draw: MixCoDraw) -> Tensor:
    """Mix the inputs (voxels, before the ridge). Unselected rows are unchanged."""
    shape = [-1] + [1] * (x.dim() - 1)
    betas = draw.betas.to(x.dtype).reshape(shape)
    return betas * x + (1 - betas) * x[draw.perm]


def mixco_soft_labels(draw: MixCoDraw, fixed_point: str = "overwrite") -> Tensor:
    """Soft label matrix: diagonal = beta, (i, perm[i]) = 1 - beta.

    ``fixed_point`` decides what happens when perm[i] == i. ``overwrite`` (reference): the second assignment wins,
    so the row holds 1 - beta (0 for unselected rows, which then drop out of the loss). ``add``: the row sums to 1.
    """
    b = len(draw.betas)
    rows = torch.arange(b, device=draw.betas.device)
    probs = torch.diag(draw.betas)
    if fixed_point == "overwrite":
        probs[rows, draw.perm] = 1 - draw.betas
    elif fixed_point == "add":
        probs[rows, draw.perm] += 1 - draw.betas
    else:
        raise ValueError(f"mixco fixed_point: expected 'overwrite' or 'add', found {fixed_point!r}")
    return probs


def mixco_nce(
    preds: Tensor,
    target_embeds: Tensor,
    soft_labels: Tensor,
    temperature: float = 0.006,
    bidirectional: bool = True,
) -> Tensor:
    """BiMixCo: cross-entropy of softmax(p t^T / tau) against the soft labels, both directions averaged."""
    logits = preds @ target_embeds.T / temperature
    soft_labels = soft_labels.to(logits.dtype)
    loss = -(logits.log_softmax(-1) * soft_labels).sum(-1).mean()
    if bidirectional:
        backward = -(logits.T.log_softmax(-1) * soft_labels.T).sum(-1).mean()
        loss = (loss + backward) / 2
    return loss


def cosine_anneal(start: float, end: float, steps: int, step: int) -> float:
    """Value at ``step`` of upstream's cosine ramp from ``start`` (step 0) to ``end`` (step ``steps - 1``).

    Upstream divides by (steps - 1) and produces NaN for steps == 1; we return ``start`` there.
    """
    if steps <= 1:
        return start
    step = min(max(step, 0), steps - 1)
    return end + (start - end) / 2 * (1 + math.cos(math.pi * step / (steps - 1)))


def mixco_epochs(mixup_pct: float, epochs: int) -> int:
    """Number of leading epochs that use BiMixCo: int(mixup_pct * epochs), as upstream."""
    return int(mixup_pct * epochs)


def softclip_temperature(
    epoch: int, epochs: int, mixup_pct: float, start: float = 0.004, end: float = 0.0075
) -> float:
    """SoftCLIP tau for ``epoch``: a cosine from start to end over the epochs after the MixCo phase."""
    first = mixco_epochs(mixup_pct, epochs)
    return cosine_anneal(start, end, epochs - first, epoch - first)
