"""Pixel metrics at 256x256: neuroclips.metrics vs the per-frame scikit-image loop, and the default eval suite's
pixel metrics on the 7,200 frames of a paper run (1,200 clips x 6).

Usage (from the repo root)::

    python experiments/benchmarks/pixel_metrics_bench.py [--frames 240] [--repeats 3] [--threads N] [--suite 7200]

For each metric it times the scikit-image loop the published runners use (one call per frame, single-threaded)
and ours (the fused CPU kernels, on the threads the evaluation uses unless --threads says otherwise) on the same
frames, interleaved over --repeats rounds, and prints the medians, the max |difference| and a Markdown table.
Frames: smooth random RGB images and a noisy, shifted copy of each (uint8), generated with a fixed seed.
PixCorr has no scikit-image counterpart (MindEye: torchvision resize + np.corrcoef); it is timed in --suite only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numba
import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray, rgb2hsv
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from neuroclips.metrics.hue import hue_pcc
from neuroclips.metrics.jit import kernel_threads
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
    """(gt, pred) uint8 (n, size, size, 3): `unique` smooth images tiled to n, pred = noisy shifted copy (all distinct).

    Built `unique` frames at a time, so 7,200 frames need ~3 GB (the uint8 result), not 3x that in int16."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.normal(0, 1, (unique, size // 4, size // 4, 3)), (0, 1.5, 1.5, 0))
    base = np.kron(base, np.ones((1, 4, 4, 1)))  # upsample to size
    base = np.clip(128 + 400 * base, 0, 255).astype(np.uint8)
    gt = base[np.arange(n) % unique]
    pred = np.empty_like(gt)
    for s in range(0, n, unique):
        g = gt[s : s + unique]
        noise = rng.integers(-40, 41, g.shape, dtype=np.int16)
        pred[s : s + unique] = np.clip(np.roll(g, 2, axis=2).astype(np.int16) + noise, 0, 255)
    return gt, pred


def nchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # our layout: (N, 3, H, W)


def side_by_side(names: list[str], gt: np.ndarray, pred: np.ndarray, repeats: int) -> list[tuple]:
    """Each round times every metric's scikit-image loop and then ours on the same frames; medians over rounds
    (the machine is shared, so single timings swing by tens of percent)."""
    gt_t, pred_t = nchw(gt), nchw(pred)
    for name in names:  # load/compile the kernels (numba's on-disk cache) outside the timings
        OURS[name](gt_t[:2], pred_t[:2])
    times = {name: ([], []) for name in names}
    ref, ours = {}, {}
    for r in range(repeats):
        for name in names:
            t0 = time.perf_counter()
            ref[name] = np.array([SKIMAGE[name](g, p) for g, p in zip(gt, pred)])
            t1 = time.perf_counter()
            ours[name] = OURS[name](gt_t, pred_t).numpy()
            t2 = time.perf_counter()
            times[name][0].append(t1 - t0)
            times[name][1].append(t2 - t1)
            print(f"  round {r + 1} {name}: scikit-image {t1 - t0:.2f}s, ours {t2 - t1:.3f}s", flush=True)
    rows = []
    for name in names:
        t_sk, t_ours = (float(np.median(t)) for t in times[name])
        diff = float(np.abs(ours[name] - ref[name]).max())
        rows.append((name, t_sk, t_ours, t_sk / t_ours, diff, float(ref[name].mean())))
    return rows


def suite_pixel_metrics(n_frames: int, size: int) -> tuple[float, float]:
    """(wall, CPU) seconds for the pixel metrics of the default eval suite (conf/stage/eval.yaml) on n_frames at size x size,
    as clips of 6 frames, through the Scorer's own pixel-metric step."""
    from omegaconf import OmegaConf

    from neuroclips.evaluation.suite import EvalModels, NWaySettings, Scorer

    task = OmegaConf.load(Path(__file__).parents[2] / "conf/stage/eval.yaml").task
    scorer = Scorer(
        EvalModels(),
        NWaySettings(),
        ssim_variants=list(task.ssim),
        psnr_variants=list(task.psnr),
        clip_pcc_variants=[],
        with_pixcorr=bool(task.pixcorr),
        extra_metrics=[m for m in task.extra_metrics if m in ("mse", "hue_pcc")],  # the pixel ones
    )
    gt, pred = make_frames(n_frames, size)
    clips = nchw(gt).view(-1, 6, 3, size, size)
    preds = nchw(pred).view(-1, 6, 3, size, size)
    del gt, pred
    print(
        f"suite: SSIM {list(task.ssim)}, PSNR {list(task.psnr)}, PixCorr {bool(task.pixcorr)}, "
        f"{[m for m in task.extra_metrics if m in ('mse', 'hue_pcc')]}",
        flush=True,
    )
    scorer._clips = clips[:1]  # warm-up (numba cache) on one clip, outside the timing
    scorer._pixel_metrics(clips[:1], preds[:1])
    scorer._clips = clips
    t0, c0 = time.perf_counter(), time.process_time()
    scorer._pixel_metrics(clips, preds)  # what Scorer.score runs first: every pixel metric of the suite
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the table shows medians")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for our side (numba's pool and torch); default: what the evaluation uses (every core)",
    )
    ap.add_argument("--metrics", nargs="+", default=list(OURS), choices=list(OURS))
    ap.add_argument(
        "--suite",
        type=int,
        default=0,
        metavar="N",
        help="also time the default suite's pixel metrics on N frames",
    )
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    import skimage

    print(
        f"{args.frames} frames at {args.size}x{args.size}, {args.repeats} rounds; ours: {kernel_threads()} numba "
        f"threads, {torch.get_num_threads()} torch threads; scikit-image loop: 1 thread; torch {torch.__version__}, "
        f"numba {numba.__version__}, scikit-image {skimage.__version__}; load average "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs",
        flush=True,
    )
    if args.metrics and args.frames:
        gt, pred = make_frames(args.frames, args.size)
        rows = side_by_side(args.metrics, gt, pred, args.repeats)
        print("\n| metric | scikit-image loop (s) | neuroclips (s) | speed-up | max abs diff | mean value |")
        print("|---|---|---|---|---|---|")
        for name, t_sk, t_ours, speed, diff, mean in rows:
            print(f"| {name} | {t_sk:.2f} | {t_ours:.3f} | {speed:.1f}x | {diff:.1e} | {mean:.4f} |")
    if args.suite:
        wall, cpu = suite_pixel_metrics(args.suite, args.size)
        # CPU seconds / threads is what the wall time would be on an idle machine (shared cores inflate it, so it
        # is an upper bound there too)
        print(
            f"\ndefault suite pixel metrics, {args.suite} frames at {args.size}x{args.size}: {wall:.1f} s wall, "
            f"{cpu:.1f} s CPU on {kernel_threads()} threads ({cpu / kernel_threads():.1f} s per thread)"
        )
    print(f"load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
