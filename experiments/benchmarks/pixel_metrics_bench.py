"""Pixel metrics on 7,200 frames (1,200 clips x 6) at 256x256: neuroclips.metrics vs a scikit-image loop.

Usage (from the repo root)::

    OMP_NUM_THREADS=1 python experiments/benchmarks/pixel_metrics_bench.py [--frames 7200] [--size 256] [--threads 1]

For each metric it times the scikit-image loop the published runners use (one call per frame) and our torch
implementation on the same frames, side by side in one run, checks that the values agree (max |difference|), and prints a Markdown
table. Frames: smooth random RGB images and a noisy, shifted copy of each (uint8), generated with a fixed seed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray, rgb2hsv
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from neuroclips.metrics.hue import hue_pcc
from neuroclips.metrics.mse import mse
from neuroclips.metrics.psnr import psnr
from neuroclips.metrics.ssim import ssim

GRAY_KW = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
SKIMAGE = {
    "ssim_rgb255": lambda g, p: structural_similarity(g, p, data_range=255, channel_axis=-1),
    "ssim_gray_gauss": lambda g, p: structural_similarity(rgb2gray(g), rgb2gray(p), **GRAY_KW),
    "ssim_gray_gauss_columns": lambda g, p: structural_similarity(
        rgb2gray(g), rgb2gray(p), channel_axis=-1, **GRAY_KW
    ),
    "psnr_skimage": lambda g, p: peak_signal_noise_ratio(g, p, data_range=255),
    "mse": lambda g, p: mean_squared_error(g, p),
    # Hue-pcc with continuous hue (skimage's rgb2hsv, hue in [0, 1)): Pearson's r is scale-free, so it equals ours
    # with quantize=False; the suite's default rounds hue to OpenCV's 8-bit units as Mind-Animator's cv2 call does
    "hue_pcc": lambda g, p: np.corrcoef(rgb2hsv(g)[..., 0].ravel(), rgb2hsv(p)[..., 0].ravel())[0, 1],
}
OURS = {
    "ssim_rgb255": lambda g, p: ssim(p, g, "rgb255"),
    "ssim_gray_gauss": lambda g, p: ssim(p, g, "gray_gauss"),
    "ssim_gray_gauss_columns": lambda g, p: ssim(p, g, "gray_gauss_columns"),
    "psnr_skimage": lambda g, p: psnr(p, g, "skimage"),
    "mse": lambda g, p: mse(p, g, scale=255.0),
    "hue_pcc": lambda g, p: hue_pcc(p, g, quantize=False),
}


def make_frames(n: int, size: int, unique: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred) uint8 (n, size, size, 3): `unique` smooth images tiled to n, pred = noisy shifted copy (all distinct)."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.normal(0, 1, (unique, size // 4, size // 4, 3)), (0, 1.5, 1.5, 0))
    base = np.kron(base, np.ones((1, 4, 4, 1)))  # upsample to size
    base = np.clip(128 + 400 * base, 0, 255).astype(np.uint8)
    gt = base[np.arange(n) % unique]
    noise = rng.integers(-40, 41, gt.shape, dtype=np.int16)
    pred = np.clip(np.roll(gt, 2, axis=2).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return gt, pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=7200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (the scikit-image loop is single-threaded)"
    )
    ap.add_argument("--metrics", nargs="+", default=list(OURS), choices=list(OURS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gt, pred = make_frames(args.frames, args.size)
    gt_t = torch.from_numpy(gt).permute(0, 3, 1, 2).contiguous()  # our layout: (N, 3, H, W)
    pred_t = torch.from_numpy(pred).permute(0, 3, 1, 2).contiguous()
    import os

    import skimage

    print(
        f"{args.frames} frames at {args.size}x{args.size}, torch threads {args.threads}, torch {torch.__version__}, "
        f"scikit-image {skimage.__version__}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows = []
    total_sk = total_ours = 0.0
    for name in args.metrics:
        t0 = time.perf_counter()
        ref = np.array([SKIMAGE[name](g, p) for g, p in zip(gt, pred)])
        t_sk = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = OURS[name](gt_t, pred_t).numpy()
        t_ours = time.perf_counter() - t0
        total_sk, total_ours = total_sk + t_sk, total_ours + t_ours
        diff = float(np.abs(ours - ref).max())
        rows.append((name, t_sk, t_ours, t_sk / t_ours, diff, float(ref.mean())))
        print(
            f"  {name}: scikit-image {t_sk:.1f}s, ours {t_ours:.1f}s, x{t_sk / t_ours:.2f}, max|diff| {diff:.1e}",
            flush=True,
        )
    print("\n| metric | scikit-image loop (s) | neuroclips (s) | speed-up | max abs diff | mean value |")
    print("|---|---|---|---|---|---|")
    for name, t_sk, t_ours, speed, diff, mean in rows:
        print(f"| {name} | {t_sk:.1f} | {t_ours:.1f} | {speed:.2f}x | {diff:.1e} | {mean:.4f} |")
    print(f"| **all** | {total_sk:.1f} | {total_ours:.1f} | {total_sk / total_ours:.2f}x | | |")


if __name__ == "__main__":
    main()
