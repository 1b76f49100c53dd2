"""PR loss terms: soft contrastive (known values), reference combination, paper Eq. 1, BiMixCo mixing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroclips.losses.perceptual import (
    frame_fmri_infonce,
    mix_like,
    mixco_mix,
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


def test_mixco_mix_and_mix_like():
    torch.manual_seed(0)
    voxels = torch.randn(8, 5)
    mixed, perm, lambdas = mixco_mix(voxels, select_prob=0.5)
    expected = voxels * lambdas[:, None] + voxels[perm] * (1 - lambdas[:, None])
    torch.testing.assert_close(mixed, expected)
    assert ((lambdas > 0) & (lambdas <= 1)).all()
    latents = torch.randn(8, 6, 4, 2, 2)
    torch.testing.assert_close(
        mix_like(latents, perm, lambdas)[0], lambdas[0] * latents[0] + (1 - lambdas[0]) * latents[perm[0]]
    )
    _, _, none_selected = mixco_mix(voxels, select_prob=-1.0)
    assert torch.equal(none_selected, torch.ones(8))
