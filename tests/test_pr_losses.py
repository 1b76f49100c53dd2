"""PR loss terms: soft contrastive (known values), reference combination, paper Eq. 1, the PR's BiMixCo mixing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroclips.losses.contrastive import apply_mixco, draw_mixco
from neuroclips.losses.perceptual import (
    frame_fmri_infonce,
    paper_pr_loss,
    reference_pr_loss,
    soft_cont_loss,
)


def test_soft_cont_loss_known_value():
    # Two orthogonal unit tokens; student = teacher = teacher_aug. Target and prediction rows are both
    # softmax([1/τ, 0]) = [p, 1-p], so the loss is the entropy of that distribution.
    eye = torch.eye(2)
    tau = 0.5
    p = math.exp(1 / tau) / (math.exp(1 / tau) + 1)
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    torch.testing.assert_close(soft_cont_loss(eye, eye, eye, tau), torch.tensor(entropy))


def test_soft_cont_loss_matches_explicit_formula():
    torch.manual_seed(0)
    s, t, a = (F.normalize(torch.randn(5, 4), dim=-1) for _ in range(3))
    tau = 0.2
    forward = -(F.log_softmax(s @ a.T / tau, -1) * F.softmax(t @ a.T / tau, -1)).sum(-1).mean()
    backward = -(F.log_softmax(a @ s.T / tau, -1) * F.softmax(a @ t.T / tau, -1)).sum(-1).mean()
    torch.testing.assert_close(soft_cont_loss(s, t, a, tau), (forward + backward) / 2)


def test_reference_loss_combination():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 6, 4, 3, 3), torch.randn(2, 6, 4, 3, 3)
    tokens = [torch.randn(2, 6, 4, 8) for _ in range(3)]
    parts = reference_pr_loss(pred, target, *tokens)
    l1 = (pred - target).abs().mean()
    torch.testing.assert_close(parts["loss_l1"], l1)
    torch.testing.assert_close(parts["loss"], 0.5 * (l1 + 0.1 * parts["loss_cont"]))
    no_teacher = reference_pr_loss(pred, target, tokens[0], None, None)
    torch.testing.assert_close(no_teacher["loss"], 0.5 * l1)
    assert "loss_cont" not in no_teacher


def test_frame_fmri_infonce_prefers_aligned_frames():
    torch.manual_seed(0)
    frames = torch.randn(3, 6, 4, 2, 2)
    aligned = frame_fmri_infonce(frames, frames, temperature=0.05)
    shuffled = frame_fmri_infonce(frames, frames[:, torch.randperm(6)], temperature=0.05)
    assert aligned < 0.05 < shuffled
    parts = paper_pr_loss(frames, frames, infonce_temperature=0.05)
    torch.testing.assert_close(parts["loss"], parts["loss_l1"] + parts["loss_infonce"])


def test_pr_bimixco_mixes_voxels_and_latents_alike_in_the_references_draw_order():
    """The PR's BiMixCo (system.mixup_pct) is the SR's draw: perm, then Beta(0.15, 0.15), then rand <= p, from the
    global generator; one draw mixes the voxels and the target latents with the same partners and weights."""
    voxels, latents = torch.randn(8, 5), torch.randn(8, 6, 4, 2, 2)
    torch.manual_seed(0)
    draw = draw_mixco(8, 0.15, 0.5)
    torch.manual_seed(0)
    perm = torch.randperm(8)
    lambdas = torch.distributions.Beta(0.15, 0.15).sample((8,))
    lambdas = torch.where(torch.rand(8) <= 0.5, lambdas, torch.ones(8))
    assert torch.equal(draw.perm, perm) and torch.equal(draw.betas, lambdas)
    assert torch.equal(
        apply_mixco(voxels, draw), lambdas[:, None] * voxels + (1 - lambdas[:, None]) * voxels[perm]
    )
    w = lambdas.reshape(-1, 1, 1, 1, 1)
    assert torch.equal(apply_mixco(latents, draw), w * latents + (1 - w) * latents[perm])
    assert ((draw.betas > 0) & (draw.betas <= 1)).all()
    assert torch.equal(draw_mixco(8, 0.15, -1.0).betas, torch.ones(8))  # nothing selected
