"""torchmetrics wrappers: per-sample scores accumulated across batches and gathered across DDP ranks.

The metric math lives in the pure functions (ssim.py, psnr.py); these classes only batch and sync, so
a Lightning system or a multi-GPU evaluation can ``update`` per batch and ``compute`` once. ``compute`` returns the
per-sample values (N,) so the caller aggregates the way its protocol says (per frame position, per clip, ...).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from neuroclips.metrics.psnr import psnr
from neuroclips.metrics.ssim import ssim


class PerFrameScore(Metric):
    """Collects a per-frame score of (pred, gt) RGB uint8 frames (N, 3, H, W); ``compute`` -> float64 (N,)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def score(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        if pred.ndim == 5:  # (B, T, 3, H, W) videos: score every frame
            pred, gt = pred.flatten(0, 1), gt.flatten(0, 1)
        self.scores.append(self.score(pred, gt).to(self.device))

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.scores) if self.scores else torch.zeros(0, dtype=torch.float64)


class FrameSSIM(PerFrameScore):
    def __init__(self, variant: str = "rgb255", **kwargs):
        super().__init__(**kwargs)
        self.variant = variant

    def score(self, pred, gt):
        return ssim(pred, gt, variant=self.variant, device=pred.device)


class FramePSNR(PerFrameScore):
    def __init__(self, variant: str = "skimage", **kwargs):
        super().__init__(**kwargs)
        self.variant = variant

    def score(self, pred, gt):
        return psnr(pred, gt, variant=self.variant)
