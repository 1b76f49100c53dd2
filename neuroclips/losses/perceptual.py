"""Losses of the Perceptual Reconstructor (method.md §4.2). Pure functions.

* `soft_cont_loss`: MindEye2's soft contrastive loss. Soft targets come from teacher·teacher_aug similarities,
  predictions from student·teacher_aug similarities, both directions averaged (τ = 0.2 in PR).
* `reference_pr_loss`: the code's objective, total_scale × (L1(latents) + cont_weight × soft_cont).
* `frame_fmri_infonce`: the paper's Eq. 1 contrastive term, a symmetric InfoNCE between the frame latents and
  the fMRI (predicted) latents over the frames of each clip.
BiMixCo mixing (system.mixup_pct; the reference PR script intends it but crashes on it) is the SR's:
`neuroclips.losses.contrastive.draw_mixco` / `apply_mixco`, applied alike to the voxels and the target latents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_cont_loss(student: Tensor, teacher: Tensor, teacher_aug: Tensor, temperature: float = 0.2) -> Tensor:
    """Soft contrastive loss between L2-normalised token sets (N, D) that share a row order.

    target_ij = softmax_j(teacher_i · teacher_aug_j / τ); loss = CE(softmax(student_i · teacher_aug_j / τ), target),
    averaged with the transposed problem (teacher_aug_i vs teacher_j / student_j).
    """
    teacher_logits = teacher @ teacher_aug.T / temperature
    student_logits = student @ teacher_aug.T / temperature
    forward = -(student_logits.log_softmax(-1) * teacher_logits.softmax(-1)).sum(-1).mean()
    backward = -(student_logits.T.log_softmax(-1) * teacher_logits.T.softmax(-1)).sum(-1).mean()
    return (forward + backward) / 2


def flatten_normalized_tokens(tokens: Tensor) -> Tensor:
    """(..., D) tokens -> (N, D) rows with unit L2 norm (the reference flattens batch, frames and positions)."""
    return F.normalize(tokens.reshape(-1, tokens.shape[-1]).float(), dim=-1)


def latent_l1(predicted: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(predicted.float(), target.float())


def reference_pr_loss(
    predicted_latents: Tensor,
    target_latents: Tensor,
    student_tokens: Tensor | None,
    teacher_tokens: Tensor | None,
    teacher_aug_tokens: Tensor | None,
    *,
    l1_weight: float = 1.0,
    cont_weight: float = 0.1,
    cont_temperature: float = 0.2,
    total_scale: float = 0.5,
) -> dict[str, Tensor]:
    """total_scale × (l1_weight × L1 + cont_weight × soft_cont); the contrastive term is skipped when
    `cont_weight` is 0 or no teacher tokens are given. Returns the total and its parts."""
    l1 = latent_l1(predicted_latents, target_latents)
    total = l1_weight * l1
    parts = {"loss_l1": l1}
    if (
        cont_weight
        and student_tokens is not None
        and teacher_tokens is not None
        and teacher_aug_tokens is not None
    ):
        cont = soft_cont_loss(
            flatten_normalized_tokens(student_tokens),
            flatten_normalized_tokens(teacher_tokens),
            flatten_normalized_tokens(teacher_aug_tokens),
            temperature=cont_temperature,
        )
        total = total + cont_weight * cont
        parts["loss_cont"] = cont
    parts["loss"] = total_scale * total
    return parts


def frame_fmri_infonce(frame_latents: Tensor, fmri_latents: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE over the F frames of each clip (paper Eq. 1): frame j's positive is the fMRI latent j.

    frame_latents, fmri_latents: (B, F, ...) ; each frame flattened and L2-normalised.
    """
    frames = F.normalize(frame_latents.flatten(2).float(), dim=-1)
    fmri = F.normalize(fmri_latents.flatten(2).float(), dim=-1)
    logits = torch.einsum("bfd,bgd->bfg", fmri, frames) / temperature  # (B, F, F)
    labels = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
    forward = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    backward = F.cross_entropy(logits.transpose(1, 2).flatten(0, 1), labels.flatten())
    return (forward + backward) / 2


def paper_pr_loss(
    predicted_latents: Tensor,
    target_latents: Tensor,
    *,
    infonce_weight: float = 1.0,
    infonce_temperature: float = 0.1,
) -> dict[str, Tensor]:
    """Paper Eq. 1: MAE over the frame latents + weight × frame/fMRI InfoNCE (τ is not given in the paper)."""
    mae = latent_l1(predicted_latents, target_latents)
    infonce = frame_fmri_infonce(target_latents, predicted_latents, infonce_temperature)
    return {"loss_l1": mae, "loss_infonce": infonce, "loss": mae + infonce_weight * infonce}
