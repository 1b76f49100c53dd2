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


def mean_frame_val_pixcorr(data_file: str | Path, data_cfg: dict) -> float:
    """Mean over validation frames of PixCorr(mean training frame, frame); ``data_cfg`` holds the ``data`` group's
    ``val_fraction``, ``val_block`` and ``val_seed`` (the split the PR validates on)."""
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"]
        val = np.sort(
            validation_rows(
                frames.shape[0], data_cfg["val_fraction"], data_cfg["val_block"], data_cfg["val_seed"]
            )
        )
        train = np.setdiff1d(np.arange(frames.shape[0]), val)
        mean = np.zeros(frames.shape[2:], np.float64)
        for start in range(0, len(train), 64):
            mean += frames[train[start : start + 64]].astype(np.float64).sum(axis=(0, 1))
        mean /= len(train) * frames.shape[1]
        truth = torch.from_numpy(frames[val].reshape(-1, *frames.shape[2:]))
    baseline = torch.from_numpy(np.rint(mean).astype(np.uint8)).expand_as(truth).contiguous()
    return float(pixcorr(baseline, truth).mean())
