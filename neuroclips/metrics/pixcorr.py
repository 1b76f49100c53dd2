"""PixCorr (MindEye): Pearson correlation between the flattened pixels of GT and reconstruction after a bilinear
resize to 425x425. NeuroClips uses it only to select PR checkpoints; it is not in the paper's Table 1."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuroclips.metrics.frames import as_frames_nchw

PIXCORR_SIZE = 425  # MindEye resizes both images to 425x425 before correlating


def pixcorr(
    pred, gt, size: int | None = PIXCORR_SIZE, chunk_size: int = 8, device: str | torch.device | None = None
) -> torch.Tensor:
    """Per-frame Pearson r (N,) float64 between RGB uint8 frames; ``size=None`` skips the resize. A constant frame
    (either side) gives NaN, as ``np.corrcoef`` does; the evaluation leaves those out (``nanmean``, as NeuroClips)
    and counts them."""
    pred = as_frames_nchw(pred, "pred")
    gt = as_frames_nchw(gt, "gt")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(
            f"PixCorr: expected the same number of frames, found {pred.shape[0]} and {gt.shape[0]}."
        )
    out = []
    for start in range(0, pred.shape[0], chunk_size):
        p_raw = pred[start : start + chunk_size].to(device or pred.device)
        g_raw = gt[start : start + chunk_size].to(device or pred.device)
        p, g = _prepare(p_raw, size), _prepare(g_raw, size)
        p = p - p.mean(1, keepdim=True)
        g = g - g.mean(1, keepdim=True)
        # float32 sums of centred values (torch sums pairwise): relative error ~1e-6, far below the metric's noise
        r = (p * g).sum(1) / (p.square().sum(1) * g.square().sum(1)).sqrt()
        # a constant frame has no correlation (numpy gives nan); after resampling its centred float32 values are
        # rounding noise, not zeros, so decide on the uint8 input
        r[_constant(p_raw) | _constant(g_raw)] = float("nan")
        out.append(r.to(torch.float64))
    if not out:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat(out).cpu()


def _constant(frames: torch.Tensor) -> torch.Tensor:
    flat = frames.flatten(1)
    return flat.amin(1) == flat.amax(1)


def _prepare(frames: torch.Tensor, size: int | None) -> torch.Tensor:
    # float32: resampling in float64 is several times slower on CPU
    x = frames.to(torch.float32) / 255.0
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.flatten(1)
