"""MSE per frame (MinD-Video ``eval_metrics.py`` computes it; no other cc2017 peer reports it).

MinD-Video's ``mse_metric(img1, img2)`` is ``np.square(img1 - img2).mean()`` over all pixels and channels of one
frame pair, on frames scaled to [0, 1] (its metric functions receive float frames; an uint8 subtraction in numpy
would wrap around). We compute it exactly from the uint8 frames (``psnr.frame_mse``, 0..255 scale) and divide by
255^2: ``scale=255`` reports the 0..255 value instead.
"""

from __future__ import annotations

import torch

from neuroclips.metrics.psnr import frame_mse


def mse(pred, gt, scale: float = 1.0, device: str | torch.device | None = None) -> torch.Tensor:
    """Per-frame mean squared error (N,) float64 between RGB uint8 frames, on frames scaled to [0, ``scale``]."""
    return frame_mse(pred, gt, device=device) * (scale / 255.0) ** 2
