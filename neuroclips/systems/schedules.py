"""The one OneCycle schedule of the training systems (SR, SR + prior, PR): the reference's, over optimizer steps."""

from __future__ import annotations

import torch


def reference_pct_start(pct_start_epochs: float, epochs: int) -> float:
    """The reference's ``pct_start = pct_start_epochs / epochs`` (2 / epochs), capped at 0.5 so that runs of under
    four epochs still have a decay phase; ``epochs`` below 1 count as 1."""
    return min(pct_start_epochs / max(int(epochs), 1), 0.5)


def one_cycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
) -> torch.optim.lr_scheduler.OneCycleLR:
    """OneCycleLR up to each parameter group's ``lr`` and down again over ``total_steps`` optimizer steps.

    Very short runs (smoke tests) are padded, never refused: OneCycle needs at least 2 steps in each phase or it
    divides by zero, so the schedule spans at least 8 steps and ``pct_start`` is kept within [2/total, 1 - 2/total]
    (a no-op for any real run, where the reference's pct_start = 2 / epochs lies well inside).
    """
    total = max(int(total_steps), 8)
    pct = min(max(pct_start, 2.0 / total), 1.0 - 2.0 / total)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total,
        pct_start=pct,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
