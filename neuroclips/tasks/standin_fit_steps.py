"""The optimisation loop the diffusion stand-ins share (tasks/standin_unclip.py, tasks/standin_video_fit.py):
AdamW with a OneCycle schedule over exactly `steps` steps (never time-bounded), the loss logged ten times."""

from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger("neuroclips")


class FixedStepFit:
    def __init__(self, params, *, lr: float, steps: int, what: str) -> None:
        # fused: one kernel for all parameters instead of ~10 per tensor; 8 % off a tiny video-UNet step on CPU
        # (experiments/benchmarks/standin_parallel.md)
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
        # 5 % warm-up; longer for short fits, whose 5 % would be 1 step
        warmup = min(0.3, max(0.05, 2.5 / steps))
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=lr, total_steps=steps, pct_start=warmup
        )
        self.steps, self.what = steps, what
        self.start, self.loss = time.time(), torch.tensor(float("nan"))

    def step(self, step: int, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss`` (the ``step``-th, from 0)."""
        self.loss = loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        if (step + 1) % max(1, self.steps // 10) == 0:
            log.info(
                "standins: %s step %d/%d, ε MSE %.4f (%.0f s)",
                self.what,
                step + 1,
                self.steps,
                loss.item(),
                time.time() - self.start,
            )

    def summary(self) -> dict:
        return {
            "steps": self.steps,
            "eps_mse": self.loss.item(),
            "seconds": round(time.time() - self.start, 1),
        }
