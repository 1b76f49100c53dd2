"""Fused CPU kernels (numba) for the per-frame sums behind MSE/PSNR, Hue-pcc and PixCorr; one frame per thread.

Same formulas as the torch code next to each metric (which stays for accelerators); only the float sums run in
a different order (sequential per row, then over rows), which moves the values by ~1e-15.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from neuroclips.metrics.jit import cpu_helper, cpu_kernel


@cpu_kernel
def squared_error_sums(pred, gt, out):  # pragma: no cover - compiled
    """out[f] = exact sum of squared differences of frame f; pred, gt uint8 (N, M) (frames flattened)."""
    n, m = gt.shape
    for f in prange(n):
        acc = np.int64(0)
        for k in range(m):
            e = np.int32(pred[f, k]) - np.int32(gt[f, k])
            acc += e * e
        out[f] = acc


@cpu_helper
def _hue(r, g, b, quantize):  # pragma: no cover - compiled
    """OpenCV's 8-bit RGB2HSV hue of one pixel (see hue.py), degrees or OpenCV units; same operations as torch."""
    v = max(r, g, b)
    delta = v - min(r, g, b)
    if delta == 0:
        return 0.0
    if v == r:
        h = 60.0 * (g - b) / delta
    elif v == g:
        h = 120.0 + 60.0 * (b - r) / delta
    else:
        h = 240.0 + 60.0 * (r - g) / delta
    if h < 0:
        h += 360.0
    if quantize:
        h = np.floor(h / 2.0 + 0.5)  # 0..180 for h in [0, 360): only 180 wraps (torch: remainder(180))
        if h >= 180.0:
            h -= 180.0
    return h


@cpu_kernel
def hue_pcc_frames(pred, gt, quantize, out):  # pragma: no cover - compiled
    """out[f] = Pearson r of the hue maps of frame f; pred, gt uint8 (N, 3, H, W); NaN where a hue map is constant."""
    n, _, h, w = gt.shape
    for f in prange(n):
        hp = np.empty((h, w))
        hg = np.empty((h, w))
        sp = 0.0
        sg = 0.0
        lo_p, hi_p, lo_g, hi_g = np.inf, -np.inf, np.inf, -np.inf
        for i in range(h):
            rp = 0.0
            rg = 0.0
            for j in range(w):
                hp[i, j] = _hue(
                    float(pred[f, 0, i, j]), float(pred[f, 1, i, j]), float(pred[f, 2, i, j]), quantize
                )
                hg[i, j] = _hue(float(gt[f, 0, i, j]), float(gt[f, 1, i, j]), float(gt[f, 2, i, j]), quantize)
                rp += hp[i, j]
                rg += hg[i, j]
                lo_p, hi_p = min(lo_p, hp[i, j]), max(hi_p, hp[i, j])
                lo_g, hi_g = min(lo_g, hg[i, j]), max(hi_g, hg[i, j])
            sp += rp
            sg += rg
        mp = sp / (h * w)
        mg = sg / (h * w)
        spg = 0.0
        spp = 0.0
        sgg = 0.0
        for i in range(h):
            rpg = 0.0
            rpp = 0.0
            rgg = 0.0
            for j in range(w):
                a = hp[i, j] - mp
                b = hg[i, j] - mg
                rpg += a * b
                rpp += a * a
                rgg += b * b
            spg += rpg
            spp += rpp
            sgg += rgg
        # a constant hue map has no correlation; decided exactly (its centred sum can be rounding noise, not 0)
        out[f] = np.nan if lo_p == hi_p or lo_g == hi_g else spg / np.sqrt(spp * sgg)


@cpu_kernel
def pixcorr_frames_quadratic(pred, gt, ad, ao, bd, bo, ry, rx, count, out):  # pragma: no cover - compiled
    """out[f] = Pearson r over all channels and pixels of the bilinearly resized frames f (values x / 255, float64;
    torch's ``interpolate(mode="bilinear", align_corners=False)`` weights), NaN where either input frame is
    constant (decided on the uint8 input), computed without resampling: the sums over the resized frame X' = Ry X Rx^T are quadratic forms of
    the input, Σ X' = ry^T X rx and Σ X' ⊙ Y' = Σ Y ⊙ (A X B), with A = Ry^T Ry and B = Rx^T Rx, which are
    tridiagonal for bilinear weights (an output row mixes two adjacent input rows): ``ad``/``bd`` their diagonals,
    ``ao``/``bo`` their first off-diagonals padded with a 0 at both ends (so edges need no branch), ``ry``/``rx``
    the column sums of Ry/Rx, ``count`` the resized pixels (channels x H' x W'). Same value as resampling first
    (float64, ~1e-15), with less work at 256 -> 425.
    """
    n, n_ch, h, w = gt.shape
    for f in prange(n):
        sum_p = 0
        sum_g = 0
        lo_p, hi_p, lo_g, hi_g = 255, 0, 255, 0
        for c in range(n_ch):
            for i in range(h):
                for j in range(w):
                    a, b = pred[f, c, i, j], gt[f, c, i, j]
                    sum_p += a
                    sum_g += b
                    lo_p, hi_p, lo_g, hi_g = min(lo_p, a), max(hi_p, a), min(lo_g, b), max(hi_g, b)
        if lo_p == hi_p or lo_g == hi_g:
            out[f] = np.nan
            continue
        # shift by the input means (resampling commutes with a constant shift: bilinear weights sum to 1)
        shift_p = sum_p / (n_ch * h * w) / 255.0
        shift_g = sum_g / (n_ch * h * w) / 255.0
        u, v = np.zeros((h, w + 2)), np.zeros((h, w + 2))  # one zero column each side
        tu, tv = np.zeros((h + 2, w)), np.zeros((h + 2, w))  # one zero row each side
        ap, ag, app, agg, apg = np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w)
        for c in range(n_ch):
            for i in range(h):
                for j in range(w):
                    u[i, j + 1] = pred[f, c, i, j] / 255.0 - shift_p
                    v[i, j + 1] = gt[f, c, i, j] / 255.0 - shift_g
                ui, vi, tui, tvi = u[i], v[i], tu[i + 1], tv[i + 1]
                for j in range(w):  # T = X B (along W)
                    tui[j] = bo[j] * ui[j] + bd[j] * ui[j + 1] + bo[j + 1] * ui[j + 2]
                    tvi[j] = bo[j] * vi[j] + bd[j] * vi[j + 1] + bo[j + 1] * vi[j + 2]
            for i in range(h):  # Z = A T (along H), summed against the inputs at once
                lo, mid, hi_ = ao[i], ad[i], ao[i + 1]
                ui, vi, wy = u[i], v[i], ry[i]
                t0u, t1u, t2u, t0v, t1v, t2v = tu[i], tu[i + 1], tu[i + 2], tv[i], tv[i + 1], tv[i + 2]
                for j in range(w):
                    zu = lo * t0u[j] + mid * t1u[j] + hi_ * t2u[j]
                    zv = lo * t0v[j] + mid * t1v[j] + hi_ * t2v[j]
                    x, y = ui[j + 1], vi[j + 1]
                    ap[j] += wy * rx[j] * x
                    ag[j] += wy * rx[j] * y
                    app[j] += x * zu
                    agg[j] += y * zv
                    apg[j] += y * zu
        sp, sg, spp, sgg, spg = ap.sum(), ag.sum(), app.sum(), agg.sum(), apg.sum()
        cov = spg - sp * sg / count
        out[f] = cov / np.sqrt((spp - sp * sp / count) * (sgg - sg * sg / count))
