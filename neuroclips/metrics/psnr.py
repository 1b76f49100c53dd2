"""PSNR per frame, two published formulas.

* ``skimage`` -- NEURONS: ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=255)`` on RGB uint8 per frame:
  10*log10(255^2 / MSE) with the MSE over all pixels and channels in float64; identical frames give +inf.
* ``mind_animator`` -- Mind-Animator's ``PSNR.py``: 20*log10(255 / sqrt(MSE)) per frame, and 100 when MSE < 1e-10.
  The value is the same as ``skimage`` except for (near-)identical frames. Mind-Animator also averages per clip
  first and reports the std over clips; that aggregation lives in the evaluation task, not here.
"""

from __future__ import annotations

import torch

from neuroclips.metrics.frames import as_frames_nchw

PSNR_VARIANTS = ("skimage", "mind_animator")
MIND_ANIMATOR_IDENTICAL_PSNR = 100.0  # Mind-Animator returns 100 dB when mse < 1e-10
MIND_ANIMATOR_MSE_FLOOR = 1e-10
EXACT_ROW = 256  # 256 * 255^2 < 2^24: float32 sums of 256 squared uint8 differences are exact


def frame_mse(pred, gt, chunk_size: int = 2, device: str | torch.device | None = None) -> torch.Tensor:
    """Per-frame mean squared error (N,) float64 on the 0..255 scale, exact.

    Squared differences of uint8 values are integers <= 65025, exact in float32; sums of 256 of them stay below
    2^24, so float32 row sums are exact too, and the rows are added in float64 (fast and exact, like
    scikit-image's float64 mean up to its own rounding).
    """
    pred = as_frames_nchw(pred, "pred")
    gt = as_frames_nchw(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(
            f"PSNR: pred and gt must have the same shape, found {tuple(pred.shape)} vs {tuple(gt.shape)}."
        )
    numel = pred[0].numel()
    row = EXACT_ROW if numel % EXACT_ROW == 0 else None
    out = []
    for start in range(0, pred.shape[0], chunk_size):
        dtype = torch.float32 if row else torch.float64
        p = pred[start : start + chunk_size].to(device or pred.device)
        g = gt[start : start + chunk_size].to(device or pred.device)
        diff = p.to(dtype) - g.to(dtype)
        sq = (diff * diff).flatten(1)
        if row:
            sq = sq.view(sq.shape[0], -1, row).sum(2).to(torch.float64)
        out.append(sq.sum(1) / numel)
    if not out:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat(out).cpu()


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
