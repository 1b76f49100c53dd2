"""The one OneCycle schedule of the SR, SR + prior and PR systems (neuroclips.systems.schedules.one_cycle)."""

from __future__ import annotations

import pytest
import torch

from neuroclips.systems.schedules import one_cycle, reference_pct_start


def _lrs(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def _optimizer(lr=3e-4):
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_a_real_run_follows_the_references_onecycle():
    """The reference: OneCycleLR(max_lr, total_steps = epochs x steps, pct_start = 2 / epochs, final_div 1000)."""
    epochs, steps = 10, 30
    ours = _optimizer()
    theirs = _optimizer()
    reference = torch.optim.lr_scheduler.OneCycleLR(
        theirs, max_lr=3e-4, total_steps=epochs * steps, pct_start=2 / epochs, final_div_factor=1000
    )
    ours_lrs = _lrs(one_cycle(ours, epochs * steps, 2 / epochs, 25.0, 1000.0), ours, epochs * steps)
    assert ours_lrs == _lrs(reference, theirs, epochs * steps)
    assert max(ours_lrs) == pytest.approx(3e-4) and ours_lrs.index(max(ours_lrs)) == 2 * steps - 1


def test_each_parameter_group_peaks_at_its_own_lr():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 1e-2}], lr=1e-3)
    sched = one_cycle(opt, 100, 0.3, 25.0, 1000.0)
    assert [g["max_lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    assert sched.total_steps == 100


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_smoke_runs_are_padded_not_refused(steps):
    opt = _optimizer()
    sched = one_cycle(opt, steps, 0.5, 25.0, 1000.0)
    assert sched.total_steps == max(steps, 8)
    lrs = _lrs(sched, opt, steps)  # would divide by zero with a phase of fewer than 2 steps
    assert all(lr > 0 for lr in lrs)


def test_pct_start_is_kept_inside_the_run():
    sched = one_cycle(_optimizer(), 10, 0.01, 25.0, 1000.0)
    assert sched._schedule_phases[0]["end_step"] == pytest.approx(2.0 / 10 * 10 - 1)
    sched = one_cycle(_optimizer(), 10, 0.99, 25.0, 1000.0)
    assert sched._schedule_phases[0]["end_step"] == pytest.approx((1 - 2.0 / 10) * 10 - 1)


@pytest.mark.parametrize(
    ("pct_start_epochs", "epochs", "expected"),
    [
        (2.0, 10, 0.2),
        (2, 30, 2 / 30),
        (2.0, 4, 0.5),
        (2.0, 3, 0.5),
        (2.0, 1, 0.5),
        (2.0, 0, 0.5),
        (1.0, 5, 0.2),
    ],
)
def test_reference_pct_start_is_pct_start_epochs_over_epochs_capped_at_a_half(
    pct_start_epochs, epochs, expected
):
    """The reference's pct_start = 2 / epochs, capped at 0.5 (runs under 4 epochs still decay); SR and PR share it."""
    assert reference_pct_start(pct_start_epochs, epochs) == expected
