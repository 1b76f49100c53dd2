"""Contrastive losses and schedules of the SR: known small cases, symmetry, BiMixCo soft targets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuroclips.losses import contrastive as C


def unit(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_info_nce_known_value_and_symmetry():
    eye = torch.eye(3)
    # logits = I / tau: each row's CE = -log(e^{1/tau} / (e^{1/tau} + 2))
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert C.info_nce(eye, eye, temperature=0.5).item() == pytest.approx(expected, rel=1e-5)
    p, t = unit(5, 8, 1), unit(5, 8, 2)
    assert C.info_nce(p, t).item() == pytest.approx(
        C.info_nce(t, p).item(), rel=1e-6
    )  # bidirectional symmetric


def test_soft_clip_loss_known_value_and_minimum():
    t = unit(4, 6)
    tau = 0.5
    soft = (t @ t.T / tau).softmax(-1)
    entropy = -(soft * soft.log()).sum(-1).mean()
    # preds == targets: both directions equal the entropy of the soft labels (the minimum of the cross-entropy)
    assert C.soft_clip_loss(t, t, tau).item() == pytest.approx(entropy.item(), rel=1e-5)
    assert C.soft_clip_loss(unit(4, 6, 3), t, tau) > C.soft_clip_loss(t, t, tau)


def test_mixco_soft_target_matrix():
    draw = C.MixCoDraw(
        perm=torch.tensor([1, 0, 3, 2]),
        betas=torch.tensor([0.7, 1.0, 0.2, 0.9]),
        select=torch.tensor([True, False, True, True]),
    )
    soft = C.mixco_soft_labels(draw)
    expected = torch.tensor([[0.7, 0.3, 0, 0], [0, 1.0, 0, 0], [0, 0, 0.2, 0.8], [0, 0, 0.1, 0.9]])
    assert torch.allclose(soft, expected)
    assert torch.allclose(soft.sum(-1), torch.ones(4))


def test_mixco_fixed_point_quirk_and_option():
    draw = C.MixCoDraw(
        perm=torch.tensor([0, 1]), betas=torch.tensor([0.6, 1.0]), select=torch.tensor([True, False])
    )
    # reference: the (i, perm[i]) write overwrites the diagonal -> rows hold 1 - beta (0 for unselected)
    assert torch.allclose(C.mixco_soft_labels(draw, "overwrite"), torch.tensor([[0.4, 0.0], [0.0, 0.0]]))
    assert torch.allclose(C.mixco_soft_labels(draw, "add"), torch.eye(2))
    with pytest.raises(ValueError, match="fixed_point"):
        C.mixco_soft_labels(draw, "other")


def test_mixco_nce_reduces_to_info_nce_without_mixing():
    p, t = unit(6, 5, 4), unit(6, 5, 5)
    draw = C.MixCoDraw(torch.arange(6), torch.ones(6), torch.zeros(6, dtype=torch.bool))
    soft = C.mixco_soft_labels(draw, "add")
    assert C.mixco_nce(p, t, soft, 0.1).item() == pytest.approx(C.info_nce(p, t, 0.1).item(), rel=1e-5)


def test_apply_and_draw_mixco():
    torch.manual_seed(0)
    draw = C.draw_mixco(64, beta=0.15, select_prob=0.5)
    assert sorted(draw.perm.tolist()) == list(range(64))
    assert torch.all(draw.betas[~draw.select] == 1) and torch.all((draw.betas >= 0) & (draw.betas <= 1))
    assert 10 < int(draw.select.sum()) < 54
    # Beta(0.15, 0.15) is U-shaped: most selected betas are near 0 or 1
    sel = draw.betas[draw.select]
    assert ((sel < 0.1) | (sel > 0.9)).float().mean() > 0.5
    x = torch.randn(64, 7)
    mixed = C.apply_mixco(x, draw)
    assert torch.equal(mixed[~draw.select], x[~draw.select])
    i = int(torch.nonzero(draw.select)[0])
    b = draw.betas[i]
    assert torch.allclose(mixed[i], b * x[i] + (1 - b) * x[draw.perm[i]])


def test_temperature_schedules():
    # NeuroClips stage 2: 150 epochs, mixup_pct 0 -> cosine 0.004 (epoch 0) to 0.0075 (epoch 149)
    assert C.softclip_temperature(0, 150, 0.0) == pytest.approx(0.004)
    assert C.softclip_temperature(149, 150, 0.0) == pytest.approx(0.0075)
    mid = C.softclip_temperature(74, 150, 0.0)
    assert 0.004 < mid < 0.0075
    # after a MixCo phase the ramp starts at the first SoftCLIP epoch
    assert C.mixco_epochs(0.5, 10) == 5
    assert C.softclip_temperature(5, 10, 0.5) == pytest.approx(0.004)
    assert C.softclip_temperature(9, 10, 0.5) == pytest.approx(0.0075)
    assert C.cosine_anneal(0.004, 0.0075, 1, 0) == 0.004  # upstream gives NaN here
    assert C.mixco_epochs(1.0, 30) == 30
