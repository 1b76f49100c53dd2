"""The no-fMRI baseline of the PR's validation PixCorr: the mean training frame scored against every validation frame.

A PR that ignores its input predicts (about) the mean latent, whose decoding is close to the mean frame; a run whose
val PixCorr is not above this baseline is on the predict-the-mean plateau (experiments/simulated_benchmark/
pr_plateau.md).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from neuroclips.data.sampler import validation_rows
from neuroclips.metrics.pixcorr import pixcorr


def validation_and_training_rows(n_train: int, data_cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """Sorted rows of the training split held out for validation, and the rest; ``data_cfg`` holds the ``data``
    group's ``val_fraction``, ``val_block`` and ``val_seed`` (the split the fit stages validate on)."""
    val = np.sort(
        validation_rows(n_train, data_cfg["val_fraction"], data_cfg["val_block"], data_cfg["val_seed"])
    )
    return val, np.setdiff1d(np.arange(n_train), val)


def mean_training_frame(frames, rows: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """The pixel mean over every frame of the clips ``rows`` of ``frames`` (N, F, 3, H, W) uint8, an HDF5 dataset or
    an array, rounded to uint8 (3, H, W); read ``chunk`` clips at a time so a large split never sits in memory."""
    total = np.zeros(frames.shape[2:], np.float64)
    for start in range(0, len(rows), chunk):
        total += frames[rows[start : start + chunk]].astype(np.float64).sum(axis=(0, 1))
    total /= len(rows) * frames.shape[1]
    return torch.from_numpy(np.rint(total).astype(np.uint8))


def mean_frame_val_pixcorr(data_file: str | Path, data_cfg: dict) -> float:
    """Mean over validation frames of PixCorr(mean training frame, frame)."""
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"]
        val, train = validation_and_training_rows(frames.shape[0], data_cfg)
        baseline = mean_training_frame(frames, train)
        truth = torch.from_numpy(frames[val].reshape(-1, *frames.shape[2:]))
    return float(pixcorr(baseline.expand_as(truth).contiguous(), truth).mean())
