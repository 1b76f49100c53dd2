"""PSNR per frame, two published formulas.

* ``skimage`` -- NEURONS: ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=255)`` on RGB uint8 per frame:
  10*log10(255^2 / MSE) with the MSE over all pixels and channels in float64; identical frames give +inf.
* ``mind_animator`` -- Mind-Animator's ``PSNR.py``: 20*log10(255 / sqrt(MSE)) per frame, and 100 when MSE < 1e-10.
  The value is the same as ``skimage`` except for (near-)identical frames. Mind-Animator also averages per clip
  first and reports the std over clips; that aggregation lives in the evaluation task, not here.
"""

from __future__ import annotations

import numpy as np
import torch

from neuroclips.metrics.frames import as_frames_nchw

PSNR_VARIANTS = ("skimage", "mind_animator")
MIND_ANIMATOR_IDENTICAL_PSNR = 100.0  # Mind-Animator returns 100 dB when mse < 1e-10
MIND_ANIMATOR_MSE_FLOOR = 1e-10


def frame_mse(pred, gt, device: str | torch.device | None = None) -> torch.Tensor:
    """Per-frame mean squared error (N,) float64 on the 0..255 scale, exact.

    On CPU a fused kernel sums the squared integer differences exactly in int64 (``pixel_cpu.squared_error_sums``,
    one read of each byte); on an accelerator, batched float64 squares (exact too: integers below 2^53).
    """
    pred = as_frames_nchw(pred, "pred")
    gt = as_frames_nchw(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(
            f"PSNR: pred and gt must have the same shape, found {tuple(pred.shape)} vs {tuple(gt.shape)}."
        )
    dev = torch.device(device) if device is not None else pred.device
    numel = pred[0].numel()
    if dev.type != "cpu":
        return squared_error_sums_torch(pred, gt, dev) / numel
    from neuroclips.metrics.pixel_cpu import squared_error_sums  # numba is imported only where it runs

    sums = np.empty(pred.shape[0], dtype=np.int64)
    squared_error_sums(pred.cpu().flatten(1).numpy(), gt.cpu().flatten(1).numpy(), sums)
    return torch.from_numpy(sums).to(torch.float64) / numel


def squared_error_sums_torch(pred: torch.Tensor, gt: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Per-frame sums of squared differences as batched float64 squares (accelerators: no per-frame host sync)."""
    sums = [
        (pred[s : s + 64].to(device).double() - gt[s : s + 64].to(device).double()).square().flatten(1).sum(1)
        for s in range(0, pred.shape[0], 64)
    ]
    return torch.cat(sums).cpu() if sums else torch.zeros(0, dtype=torch.float64)


def psnr(
    pred, gt, variant: str = "skimage", data_range: float = 255.0, device: str | torch.device | None = None
) -> torch.Tensor:
    """Per-frame PSNR (N,) float64 between RGB uint8 frames (N, 3, H, W) or (N, H, W, 3)."""
    if variant not in PSNR_VARIANTS:
        raise ValueError(f"PSNR variant: expected one of {PSNR_VARIANTS}, found {variant!r}.")
    mse = frame_mse(pred, gt, device=device)
    if variant == "skimage":
        with torch.no_grad():
            return 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 gives +inf, as scikit-image does
    value = 20.0 * torch.log10(data_range / torch.sqrt(mse.clamp_min(MIND_ANIMATOR_MSE_FLOOR)))
    return torch.where(
        mse < MIND_ANIMATOR_MSE_FLOOR, torch.full_like(value, MIND_ANIMATOR_IDENTICAL_PSNR), value
    )
