"""PixCorr (MindEye): Pearson correlation between the flattened pixels of GT and reconstruction after a bilinear
resize to 425x425. NeuroClips uses it only to select PR checkpoints; it is not in the paper's Table 1."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from neuroclips.metrics.frames import as_frames_nchw

PIXCORR_SIZE = 425  # MindEye resizes both images to 425x425 before correlating


def pixcorr(
    pred, gt, size: int | None = PIXCORR_SIZE, chunk_size: int = 8, device: str | torch.device | None = None
) -> torch.Tensor:
    """Per-frame Pearson r (N,) float64 between RGB uint8 frames; ``size=None`` skips the resize. A constant frame
    (either side) gives NaN, as ``np.corrcoef`` does; the evaluation leaves those out (``nanmean``, as NeuroClips)
    and counts them. On CPU a fused float64 kernel computes it (``_pixcorr_cpu``); the torch code below (float32,
    relative error ~1e-6) runs on accelerators."""
    pred = as_frames_nchw(pred, "pred")
    gt = as_frames_nchw(gt, "gt")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(
            f"PixCorr: expected the same number of frames, found {pred.shape[0]} and {gt.shape[0]}."
        )
    dev = torch.device(device) if device is not None else pred.device
    if dev.type == "cpu" and pred.shape == gt.shape:
        return _pixcorr_cpu(pred.cpu(), gt.cpu(), size)
    return pixcorr_torch(pred, gt, size, chunk_size, dev)


def pixcorr_torch(pred, gt, size: int | None, chunk_size: int, device: torch.device) -> torch.Tensor:
    """The batched float32 torch version (for accelerators; the CPU kernel's reference in the tests)."""
    out = []
    for start in range(0, pred.shape[0], chunk_size):
        p_raw = pred[start : start + chunk_size].to(device)
        g_raw = gt[start : start + chunk_size].to(device)
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


def bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, l0, l1): output index k of a 1-D bilinear resize is l0[k] * x[i0[k]] + l1[k] * x[i1[k]], with
    torch's ``align_corners=False`` source index max(0, (k + 0.5) * n_in / n_out - 0.5), in float64."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = src.astype(np.int64)  # floor (src >= 0)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = src - i0
    return i0, i1, 1.0 - l1, l1


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of a 1-D bilinear resize (``bilinear_taps``), float64."""
    i0, i1, l0, l1 = bilinear_taps(n_in, n_out)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), l0)
    np.add.at(m, (np.arange(n_out), i1), l1)
    return m


# Cached per (size in, size out): every PixCorr call (each PR validation batch) reuses them.
@functools.lru_cache(maxsize=8)
def _gram_bands(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal, off-diagonal (padded with 0 at both ends) of R^T R, tridiagonal for bilinear weights, and the
    column sums of R."""
    r = resize_matrix(n_in, n_out)
    gram = r.T @ r
    diag, off = np.diag(gram).copy(), np.diag(gram, 1).copy()
    assert np.allclose(gram, np.diag(diag) + np.diag(off, 1) + np.diag(off, -1), atol=0)  # band of width 1
    return diag, np.concatenate([[0.0], off, [0.0]]), r.sum(0)


def _pixcorr_cpu(pred: torch.Tensor, gt: torch.Tensor, size: int | None) -> torch.Tensor:
    """The fused kernel ``pixel_cpu.pixcorr_frames_quadratic`` (float64, one frame per thread): the correlation of
    the resized frames from quadratic forms of the inputs, without resampling them; same value as resampling."""
    from neuroclips.metrics.pixel_cpu import pixcorr_frames_quadratic  # numba is imported only where it runs

    n_ch, h, w = pred.shape[-3:]
    ho, wo = size or h, size or w
    ad, ao, ry = _gram_bands(h, ho)
    bd, bo, rx = _gram_bands(w, wo)
    out = np.empty(pred.shape[0], dtype=np.float64)
    pixcorr_frames_quadratic(pred.numpy(), gt.numpy(), ad, ao, bd, bo, ry, rx, float(n_ch * ho * wo), out)
    return torch.from_numpy(out)


def _constant(frames: torch.Tensor) -> torch.Tensor:
    flat = frames.flatten(1)
    return flat.amin(1) == flat.amax(1)


def _prepare(frames: torch.Tensor, size: int | None) -> torch.Tensor:
    # float32: resampling in float64 is several times slower on CPU
    x = frames.to(torch.float32) / 255.0
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.flatten(1)
