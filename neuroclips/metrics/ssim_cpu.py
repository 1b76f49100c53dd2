"""The SSIM variants of ``ssim.py`` as fused CPU kernels (numba), one frame per thread; same formulas, same values.

Each kernel works one output row at a time: the window sums of s = x + y, d = x - y, s^2 and d^2 for that row live
in a few row buffers (in cache) instead of four full-frame tensors, and the SSIM of each pixel is summed as soon as
it is known. ``rgb255`` keeps the exact integer window sums of the torch version (sliding down the rows, 7-tap sums
along them) and takes the final ratio in float64; the Gaussian variants filter in float64 in the same order as the
torch version (along H, then along W, tap by tap), so the values agree with it to ~1e-15.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from neuroclips.metrics.jit import cpu_helper, cpu_kernel


@cpu_kernel
def ssim_rgb255_frames(pred, gt, k1, k2, out):  # pragma: no cover - compiled
    """out[f] = rgb255 SSIM of frame f; pred, gt uint8 (N, C, H, W), 7x7 uniform window, sample covariance."""
    n_frames, n_ch, h, w = gt.shape
    win = 7
    ho, wo = h - win + 1, w - win + 1
    n = win * win
    cov_norm = n / (n - 1)
    # every term below is n^2 times scikit-image's (the ratio is unchanged): so are the constants
    c1 = (k1 * 255.0) ** 2 * n * n
    c2 = (k2 * 255.0) ** 2 * n * n
    for f in prange(n_frames):
        col = np.zeros((4, w), np.int32)  # sums over 7 rows of s, d, s^2, d^2, per column
        box = np.empty((4, wo), np.int32)  # and over 7 columns of those
        total = 0.0
        for c in range(n_ch):
            col[:] = 0
            for i in range(h):
                for j in range(w):  # add row i
                    a = np.int32(gt[f, c, i, j]) + np.int32(pred[f, c, i, j])
                    b = np.int32(gt[f, c, i, j]) - np.int32(pred[f, c, i, j])
                    col[0, j] += a
                    col[1, j] += b
                    col[2, j] += a * a
                    col[3, j] += b * b
                if i >= win:
                    for j in range(w):  # drop row i - 7
                        a = np.int32(gt[f, c, i - win, j]) + np.int32(pred[f, c, i - win, j])
                        b = np.int32(gt[f, c, i - win, j]) - np.int32(pred[f, c, i - win, j])
                        col[0, j] -= a
                        col[1, j] -= b
                        col[2, j] -= a * a
                        col[3, j] -= b * b
                if i < win - 1:
                    continue
                for q in range(4):
                    for j in range(wo):
                        box[q, j] = col[q, j]
                    for t in range(1, win):
                        for j in range(wo):
                            box[q, j] += col[q, j + t]
                row = 0.0
                for j in range(wo):
                    sq0 = np.int64(box[0, j]) * box[0, j]  # (sum s)^2, (sum d)^2: exact integers
                    sq1 = np.int64(box[1, j]) * box[1, j]
                    var0 = n * np.int64(box[2, j]) - sq0  # n^2 * biased local variances of s and d
                    var1 = n * np.int64(box[3, j]) - sq1
                    f0 = 0.5 * (sq0 - sq1) + c1  # 2 mu_x mu_y + C1
                    f1 = 0.5 * cov_norm * (var0 - var1) + c2  # 2 cov_xy + C2
                    f2 = 0.5 * (sq0 + sq1) + c1  # mu_x^2 + mu_y^2 + C1
                    f3 = 0.5 * cov_norm * (var0 + var1) + c2  # var_x + var_y + C2
                    row += (f0 * f1) / (f2 * f3)
                total += row
        out[f] = total / (n_ch * ho * wo)


@cpu_helper
def _gauss_ssim(mu_s, mu_d, ss, dd, c1, c2):  # pragma: no cover - compiled
    """SSIM of one pixel from the local means of s, d, s^2, d^2 (the identities of ``ssim._ssim_gaussian``)."""
    mu_s2 = mu_s * mu_s
    mu_d2 = mu_d * mu_d
    var_s = ss - mu_s2
    var_d = dd - mu_d2
    a1 = 0.5 * (mu_s2 - mu_d2) + c1
    b1 = 0.5 * (mu_s2 + mu_d2) + c1
    a2 = 0.5 * (var_s - var_d) + c2
    b2 = 0.5 * (var_s + var_d) + c2
    return (a1 * a2) / (b1 * b2)


@cpu_kernel
def ssim_gaussian_frames(
    pred, gt, gray_weights, kernel, c1, c2, out_2d, out_columns
):  # pragma: no cover - compiled
    """Gaussian-window SSIM of the gray frames (no sample covariance), valid region: out_2d[f] filtered along H and
    W (``gray_gauss``), out_columns[f] along H only (each column a 1-D signal: ``gray_gauss_columns``). Both share
    the gray frames and the pass along H, so asking for both costs little more than one; an empty out is skipped."""
    n_frames, n_ch, h, w = gt.shape
    k = kernel.size
    ho, wo = h - k + 1, w - k + 1
    want_2d, want_columns = out_2d.size > 0, out_columns.size > 0
    # value / 255 * weight of every uint8 value per channel: the same float64 terms as rgb_to_gray, looked up
    # instead of divided (a division costs ~10 multiplications)
    lut = np.empty((n_ch, 256))
    for c in range(n_ch):
        for v in range(256):
            lut[c, v] = v / 255.0 * gray_weights[c]
    for f in prange(n_frames):
        sd = np.empty((4, h, w))  # s, d, s^2, d^2
        for i in range(h):
            for j in range(w):
                x = 0.0
                y = 0.0
                for c in range(n_ch):
                    x += lut[c, gt[f, c, i, j]]
                    y += lut[c, pred[f, c, i, j]]
                sd[0, i, j] = x + y
                sd[1, i, j] = x - y
            for j in range(w):
                sd[2, i, j] = sd[0, i, j] * sd[0, i, j]
                sd[3, i, j] = sd[1, i, j] * sd[1, i, j]
        col = np.empty((4, w))  # Gaussian means along H of s, d, s^2, d^2 for one output row
        row = np.empty((4, wo))  # then along W
        acc_2d = np.zeros(
            wo
        )  # SSIM summed per output column: no loop-carried float sum, so the loops vectorise
        acc_columns = np.zeros(w)
        for i in range(ho):
            for q in range(4):  # one quantity at a time: simple loops over a row, which vectorise
                for j in range(w):
                    col[q, j] = sd[q, i, j] * kernel[0]
                for t in range(1, k):
                    wt = kernel[t]
                    for j in range(w):
                        col[q, j] += sd[q, i + t, j] * wt
            if want_columns:
                for j in range(w):
                    acc_columns[j] += _gauss_ssim(col[0, j], col[1, j], col[2, j], col[3, j], c1, c2)
            if want_2d:
                for q in range(4):
                    for j in range(wo):
                        row[q, j] = col[q, j] * kernel[0]
                    for t in range(1, k):
                        wt = kernel[t]
                        for j in range(wo):
                            row[q, j] += col[q, j + t] * wt
                for j in range(wo):
                    acc_2d[j] += _gauss_ssim(row[0, j], row[1, j], row[2, j], row[3, j], c1, c2)
        if want_2d:
            out_2d[f] = acc_2d.sum() / (ho * wo)
        if want_columns:
            out_columns[f] = acc_columns.sum() / (ho * w)
