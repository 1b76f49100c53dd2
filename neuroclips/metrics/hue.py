"""Hue-pcc (Mind-Animator ``Hue_pcc.py``; SemVideo reuses it): per frame, the Pearson correlation between the hue
channel of the ground truth and that of the reconstruction, over all pixels.

Hue follows OpenCV's ``cvtColor(RGB2HSV)`` for 8-bit images, which Mind-Animator calls: with V = max(R, G, B) and
delta = V - min(R, G, B), H = 60 (G - B)/delta if V = R, 120 + 60 (B - R)/delta if V = G, 240 + 60 (R - G)/delta
otherwise, H += 360 if negative, and H = 0 for grey pixels (delta = 0). 8-bit OpenCV stores round(H / 2) in 0..179;
``quantize=True`` (default) does the same rounding (180 wraps to 0), ``False`` keeps the continuous degrees. Pearson's
r is scale-free, so degrees and OpenCV units give the same value up to that rounding. A frame whose hue is constant
(e.g. entirely grey) has no correlation: NaN, left out of the averages and counted (as PixCorr).
"""

from __future__ import annotations

import numpy as np
import torch

from neuroclips.metrics.frames import as_frames_nchw


def rgb_to_hue(frames: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> hue (N, H, W) float64: OpenCV 8-bit units 0..179 (``quantize``) or degrees."""
    x = frames.to(torch.float64)
    r, g, b = x.unbind(1)
    v = x.amax(1)
    delta = v - x.amin(1)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(
        v == r,
        60.0 * (g - b) / safe,
        torch.where(v == g, 120.0 + 60.0 * (b - r) / safe, 240.0 + 60.0 * (r - g) / safe),
    )
    h = torch.where(h < 0, h + 360.0, h)
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    if quantize:
        h = torch.floor(h / 2.0 + 0.5).remainder(180.0)
    return h


def hue_pcc(pred, gt, quantize: bool = True, chunk_size: int = 16) -> torch.Tensor:
    """Per-frame Pearson r of the hue channels (N,) float64; NaN where either hue map is constant.

    CPU tensors go through the fused kernel ``pixel_cpu.hue_pcc_frames`` (same formulas, one frame per thread)."""
    pred = as_frames_nchw(pred, "pred")
    gt = as_frames_nchw(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(
            f"Hue-pcc: pred and gt must have the same shape, found {tuple(pred.shape)} vs {tuple(gt.shape)}."
        )
    if pred.device.type == "cpu":
        from neuroclips.metrics.pixel_cpu import hue_pcc_frames  # numba is imported only where it runs

        out = np.empty(pred.shape[0], dtype=np.float64)
        hue_pcc_frames(pred.numpy(), gt.numpy(), quantize, out)
        return torch.from_numpy(out)
    return hue_pcc_torch(pred, gt, quantize, chunk_size)


def hue_pcc_torch(pred: torch.Tensor, gt: torch.Tensor, quantize: bool, chunk_size: int = 16) -> torch.Tensor:
    """The batched torch version (for accelerators; the CPU kernel's reference in the tests)."""
    out = []
    for s in range(0, pred.shape[0], chunk_size):
        p = rgb_to_hue(pred[s : s + chunk_size], quantize).flatten(1)
        g = rgb_to_hue(gt[s : s + chunk_size], quantize).flatten(1)
        p = p - p.mean(1, keepdim=True)
        g = g - g.mean(1, keepdim=True)
        out.append((p * g).sum(1) / (p.square().sum(1) * g.square().sum(1)).sqrt())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
