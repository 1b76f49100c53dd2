"""The mean-training-frame baseline: its rows and its frame, against a direct numpy computation."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from neuroclips.metrics.mean_frame import (
    mean_frame_val_pixcorr,
    mean_training_frame,
    validation_and_training_rows,
)
from neuroclips.metrics.pixcorr import pixcorr

DATA = {"val_fraction": 0.25, "val_block": 10, "val_seed": 3}


def test_rows_partition_the_training_split_and_validation_is_sorted_blocks():
    val, train = validation_and_training_rows(200, DATA)
    assert len(val) == 50 and (np.diff(val) > 0).all()
    assert sorted(np.concatenate([val, train]).tolist()) == list(range(200))
    assert set((val // 10).tolist()) == set((val[::10] // 10).tolist()), "whole blocks of 10 are held out"


def test_mean_frame_is_the_rounded_pixel_mean_over_every_frame_of_the_rows():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (150, 6, 3, 4, 5), dtype=np.uint8)  # more than one 64-clip chunk
    rows = np.sort(rng.choice(150, 97, replace=False))
    want = np.rint(frames[rows].astype(np.float64).mean(axis=(0, 1))).astype(np.uint8)
    got = mean_training_frame(frames, rows)
    assert got.dtype == torch.uint8 and got.shape == (3, 4, 5)
    assert np.array_equal(got.numpy(), want)


def test_val_pixcorr_of_the_mean_frame(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (40, 6, 3, 8, 8), dtype=np.uint8)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["stimuli/train/frames"] = frames
    val, train = validation_and_training_rows(40, DATA)
    mean = np.rint(frames[train].astype(np.float64).mean(axis=(0, 1))).astype(np.uint8)
    truth = torch.from_numpy(frames[val].reshape(-1, 3, 8, 8))
    want = float(pixcorr(torch.from_numpy(mean).expand_as(truth).contiguous(), truth).mean())
    assert mean_frame_val_pixcorr(path, DATA) == want
