"""How per-pair scores become the reported value and +-: the three aggregations the peers use, by name.

Every metric is first computed per *pair*: a (clip, frame position) pair of ground-truth and reconstructed frames
for the pixel metrics, a pair of frames of one reconstruction for CLIP-pcc, one clip for video-level scores. The
values form a (clips, pairs per clip) array; undefined values (PixCorr of a constant frame) are NaN and left out.

* ``per_position`` -- MinD-Video ``eval_metrics.py``: per pair position, mean and std over clips; the reported
  value and +- are those means and stds averaged over the positions.
* ``per_clip`` -- Mind-Animator (``PSNR.py``, ``SSIM.py``, ``CLIP_consist.py``): per clip, the mean over its pairs;
  reported: mean and std over clips.
* ``all_pairs`` -- NEURONS (``compute_clip_pcc``, and its runner's SSIM/PSNR lists): mean and std over every pair
  of every clip pooled together.

With the same number of defined pairs per clip all three give the same mean; the +- differs (per-clip stds are
smaller than per-pair ones). Stds are population stds (numpy's default ``ddof=0``, as all three peers use).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

AGGREGATIONS = ("per_position", "per_clip", "all_pairs")


def _as_2d(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"aggregate: expected values (clips, pairs per clip), found shape {v.shape}.")
    return v


def check_aggregation(how: str) -> str:
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation: expected one of {AGGREGATIONS}, found {how!r}.")
    return how


def aggregate(values, how: str) -> tuple[float, float]:
    """(reported value, reported +-) of per-pair values (clips, pairs) under aggregation ``how``."""
    check_aggregation(how)
    v = _as_2d(values)
    with _quiet():
        if how == "per_position":
            return float(np.nanmean(np.nanmean(v, 0))), float(np.nanmean(np.nanstd(v, 0)))
        if how == "per_clip":
            c = np.nanmean(v, 1)
            return float(np.nanmean(c)), float(np.nanstd(c))
        return float(np.nanmean(v)), float(np.nanstd(v))


def aggregate_mean_resampled(values, clip_draws: np.ndarray, how: str) -> np.ndarray:
    """The reported value for each row of clip indices ``clip_draws`` (R, clips): the bootstrap's statistic,
    vectorised over the R resamples."""
    check_aggregation(how)
    v = _as_2d(values)[clip_draws]  # (R, N, P)
    with _quiet():
        if how == "per_position":
            return np.nanmean(np.nanmean(v, 1), 1)
        if how == "per_clip":
            return np.nanmean(np.nanmean(v, 2), 1)
        return np.nanmean(v.reshape(v.shape[0], -1), 1)


def per_clip_values(values) -> np.ndarray:
    """(clips,) mean over each clip's defined pairs (NaN where a clip has none)."""
    with _quiet():
        return np.nanmean(_as_2d(values), 1)


@contextmanager
def _quiet():
    """All-NaN slices are reported as NaN on purpose: silence numpy's warnings about them."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
